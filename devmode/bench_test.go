package devmode

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/server"
)

// BenchmarkProvision: one provision (a new TLS connection with the
// client's RA-TLS certificate, then GetSecrets) against a dev server on
// loopback, client and server in this process.
//
//	go test ./devmode -run '^$' -bench Provision
func BenchmarkProvision(b *testing.B) { benchProvision(b, false) }

// BenchmarkProvisionFresh: one provision with fresh evidence (a new key
// pair, quote and certificate, then a new TLS connection and
// GetSecrets): the whole path on both sides.
//
//	go test ./devmode -run '^$' -bench ProvisionFresh -cpuprofile cpu.out
func BenchmarkProvisionFresh(b *testing.B) { benchProvision(b, true) }

func benchProvision(b *testing.B, fresh bool) {
	ctx := context.Background()
	env, err := Start(ctx, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Stop()
	a, err := Attester(env.PKI, claims.SGX, DemoIdentity(claims.SGX))
	if err != nil {
		b.Fatal(err)
	}
	o := BenchOptions{Addr: env.Addr, ServerAuth: ratls.ServerByPin(env.ServerPin), Attester: a, Names: []string{"demo-key"}, Duration: time.Minute}
	var c *ratlsCert // nil: a new certificate per provision
	if !fresh {
		if c, err = newRATLSCert(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := provisionOnce(ctx, o, c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestRunBenchVerdictCounts: a run reports how many provisions the
// server answered from its verdict cache. With fresh evidence none is:
// every provision's quote is verified in full. With reused certificates
// only each client's first is verified. Both load generators, and the
// server's counters read in-process or scraped from its /metrics.
func TestRunBenchVerdictCounts(t *testing.T) {
	ctx := context.Background()
	env, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	a, err := Attester(env.PKI, claims.SGX, DemoIdentity(claims.SGX))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	server.NewMetrics(reg, env.DCAP).ObserveVerdictCache(env.RATLS)
	ts := httptest.NewServer(server.MetricsHandler(reg))
	defer ts.Close()

	const clients, provisions = 2, 8
	for _, tc := range []struct {
		client string
		fresh  bool
		remote bool
	}{
		{BenchClientGRPC, true, false}, {BenchClientGRPC, false, false},
		{BenchClientHTTP2, true, false}, {BenchClientHTTP2, false, false},
		{BenchClientHTTP2, true, true}, {BenchClientGRPC, false, true},
	} {
		name := fmt.Sprintf("%s fresh=%v remote=%v", tc.client, tc.fresh, tc.remote)
		t.Run(name, func(t *testing.T) {
			o := BenchOptions{Addr: env.Addr, ServerAuth: ratls.ServerByPin(env.ServerPin), Attester: a, Clients: clients,
				Duration: time.Minute, MaxProvisions: provisions, FreshEvidence: tc.fresh, Client: tc.client,
				Server: InProcessServer{Verifier: env.RATLS}}
			if tc.remote {
				o.Server = RemoteServer{MetricsURL: ts.URL, PID: os.Getpid()}
			}
			r, err := RunBench(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Provisions != provisions || r.Errors != 0 || r.Client != tc.client {
				t.Fatalf("%+v", r)
			}
			if r.VerdictCacheAnswers == nil || r.FreshQuotesVerified == nil {
				t.Fatalf("no server counts: %+v", r)
			}
			answers, verified := *r.VerdictCacheAnswers, *r.FreshQuotesVerified
			want, wantVerified := uint64(0), uint64(provisions)
			if !tc.fresh {
				want, wantVerified = provisions-clients, clients
			}
			if answers != want || verified != wantVerified {
				t.Fatalf("verdict cache answered %d, %d verified; want %d and %d", answers, verified, want, wantVerified)
			}
			if tc.remote && !strings.Contains(r.CPUSplit, "/proc") {
				t.Fatalf("server CPU not read from its process: %q", r.CPUSplit)
			}
		})
	}
}

// TestRunBenchRemoteWithoutVerdictMetrics: scraping a server that does
// not export the verdict cache is an error, not a silent zero.
func TestRunBenchRemoteWithoutVerdictMetrics(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, `asps_verifier_cache_total{cache="pck_chain",result="hit"} 3`)
	}))
	defer ts.Close()
	_, err := RemoteServer{MetricsURL: ts.URL}.Counters(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no verdict-cache metrics") {
		t.Fatalf("got %v", err)
	}
}

// TestCPUByLabel: the profile reader sums CPU by goroutine label.
func TestCPUByLabel(t *testing.T) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skip("a CPU profile is already running:", err)
	}
	done := make(chan struct{})
	go pprof.Do(context.Background(), pprof.Labels(BenchRoleLabel, "client"), func(context.Context) {
		defer close(done)
		// Burn CPU until the profiler has had time for samples (the count
		// of work, not a time bound, decides the end).
		x := sha256.Sum256(nil)
		for range 400_000 {
			x = sha256.Sum256(x[:])
		}
	})
	<-done
	pprof.StopCPUProfile()
	by, err := cpuByLabel(buf.Bytes(), BenchRoleLabel)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CPU by label: %v", by)
	for k := range by {
		if k != "client" && k != "" {
			t.Fatalf("label value %q was never set", k)
		}
	}
	if _, err := cpuByLabel([]byte("not a profile"), BenchRoleLabel); err == nil {
		t.Fatal("garbage parsed as a profile")
	}
}

// FuzzParseMetrics: the metrics text reader never panics, and every key
// it returns is a line's text before its value.
func FuzzParseMetrics(f *testing.F) {
	f.Add("# HELP x y\nasps_verifier_cache_total{cache=\"verdict\",result=\"hit\"} 12\nasps_certificate_verifications_total 3\n")
	f.Add("a 1\n b  2 \n\nc{d=\"e f\"} +Inf\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMetrics(strings.NewReader(s))
		if err != nil {
			return
		}
		for k := range m {
			if !strings.Contains(s, k) || strings.HasPrefix(k, "#") {
				t.Fatalf("key %q not a metric line of the input", k)
			}
		}
	})
}

// FuzzCPUByLabel: the profile reader never panics on any input, and
// never reports negative CPU for a gzipped stream of arbitrary fields.
func FuzzCPUByLabel(f *testing.F) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err == nil {
		pprof.StopCPUProfile()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		by, err := cpuByLabel(b, BenchRoleLabel)
		if err != nil {
			return
		}
		for k, d := range by {
			if d < 0 {
				t.Fatalf("label %q: negative CPU %v", k, d)
			}
		}
	})
}
