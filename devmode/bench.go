package devmode

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/attest"
	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/ratls"
)

// BenchOptions configure a provisioning load run.
type BenchOptions struct {
	Addr       string           // the server
	ServerAuth ratls.ServerAuth // how to trust it
	Attester   attest.Attester  // the simulated enclave every client is
	Names      []string         // the secrets each provision asks for
	Clients    int              // concurrent clients
	Duration   time.Duration    // how long to run (bounded)
	// FreshEvidence makes every provision use a new key pair and a new
	// quote; otherwise each client makes its RA-TLS certificate once, as
	// a workload process does, and every provision is a new TLS
	// connection (full handshake) and a GetSecrets call.
	FreshEvidence bool
	// Client is how provisions reach the server: BenchClientGRPC
	// (default) or BenchClientHTTP2. Several addresses in Addr need the
	// gRPC client.
	Client string
	// MaxProvisions bounds the run's request count (default 1,000,000).
	MaxProvisions int
	// Server, when set, is read before and after the run: how many
	// provisions the server answered from its verdict cache, how many
	// quotes it verified, and its CPU time when it is another process.
	Server BenchServer
	// CPUProfile, when set, receives a CPU profile of the run. When the
	// server runs in this process (its counters carry no CPU time), the
	// run is profiled anyway and its CPU split between the load
	// generator's goroutines and the server's by their pprof labels (see
	// InProcessServerLabels).
	CPUProfile io.Writer
}

// BenchResult is what a run measured.
type BenchResult struct {
	Provisions       int     `json:"provisions"`
	Errors           int     `json:"errors"`
	Seconds          float64 `json:"seconds"`
	ProvisionsPerSec float64 `json:"provisions_per_sec"`
	P50ms            float64 `json:"p50_ms"`
	P99ms            float64 `json:"p99_ms"`
	Clients          int     `json:"clients"`
	FreshEvidence    bool    `json:"fresh_evidence"`
	Client           string  `json:"client"`
	FirstError       string  `json:"first_error,omitempty"`

	// What the server did (when BenchOptions.Server is set): provisions
	// whose certificate the verdict cache answered, and certificates it
	// verified in full (new key, new quote: the whole path).
	VerdictCacheAnswers *uint64 `json:"verdict_cache_answers,omitempty"`
	FreshQuotesVerified *uint64 `json:"fresh_quotes_verified,omitempty"`

	// CPU seconds used during the run: by the load generator (client), by
	// the server, and, with an in-process server, by neither (the Go
	// runtime's own goroutines: GC workers, timers; other_cpu_s).
	// ProcessCPUSeconds is the bench process's total (getrusage).
	// ClientCPUShare is the client's part of all of it. CPUSplit says how
	// the split was measured.
	ClientCPUSeconds  float64 `json:"client_cpu_s"`
	ServerCPUSeconds  float64 `json:"server_cpu_s,omitempty"`
	OtherCPUSeconds   float64 `json:"other_cpu_s,omitempty"`
	ProcessCPUSeconds float64 `json:"process_cpu_s"`
	ClientCPUShare    float64 `json:"client_cpu_share,omitempty"`
	CPUSplit          string  `json:"cpu_split"`
	// CPU milliseconds per provision completed, of each side.
	ClientCPUPerProvisionMs float64 `json:"client_cpu_ms_per_provision"`
	ServerCPUPerProvisionMs float64 `json:"server_cpu_ms_per_provision,omitempty"`
}

// RunBench runs N concurrent simulated enclaves against a server, each
// provision a full RA-TLS handshake and a GetSecrets call.
func RunBench(ctx context.Context, o BenchOptions) (*BenchResult, error) {
	if o.Clients <= 0 {
		o.Clients = 1
	}
	if o.MaxProvisions <= 0 {
		o.MaxProvisions = 1_000_000
	}
	if len(o.Names) == 0 {
		o.Names = []string{"demo-key"}
	}
	switch o.Client {
	case "":
		o.Client = BenchClientGRPC
	case BenchClientGRPC:
	case BenchClientHTTP2:
		if strings.Contains(o.Addr, ",") || strings.Contains(o.Addr, "://") || strings.HasPrefix(o.Addr, "dns:") {
			return nil, fmt.Errorf("bench: the %s client takes one host:port, not %q", BenchClientHTTP2, o.Addr)
		}
	default:
		return nil, fmt.Errorf("bench: client %q: want %s or %s", o.Client, BenchClientGRPC, BenchClientHTTP2)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()

	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		firstErr error
		budget   = o.MaxProvisions
		wg       sync.WaitGroup
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if budget == 0 {
			return false
		}
		budget--
		return true
	}
	// Certificates made before the clock starts (unless fresh per call).
	certs := make([]*ratlsCert, o.Clients)
	if !o.FreshEvidence {
		for i := range certs {
			c, err := newRATLSCert(ctx, o.Attester)
			if err != nil {
				return nil, err
			}
			certs[i] = c
		}
	}
	var before ServerCounters
	if o.Server != nil {
		var err error
		if before, err = o.Server.Counters(ctx); err != nil {
			return nil, err
		}
	}
	// Profile the run when asked to, or to split an in-process server's CPU
	// from the load generator's.
	var prof bytes.Buffer
	profiling := false
	if o.CPUProfile != nil || o.Server != nil && !before.HasCPU {
		err := pprof.StartCPUProfile(&prof)
		if err != nil && o.CPUProfile != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		profiling = err == nil
	}
	cpu0 := selfCPU()
	start := time.Now()
	end, _ := ctx.Deadline()
	for i := range o.Clients {
		wg.Add(1)
		go pprof.Do(ctx, pprof.Labels(BenchRoleLabel, "client"), func(ctx context.Context) {
			defer wg.Done()
			for ctx.Err() == nil && take() {
				t0 := time.Now()
				err := provisionOnce(ctx, o, certs[i])
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					// A provision cut off by the end of the run is no error
					// (a dial reports the deadline as an I/O timeout, as it
					// passes: before ctx says so).
					if ctx.Err() == nil && time.Now().Before(end) {
						errs++
						if firstErr == nil {
							firstErr = err
						}
					}
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// The rate is over the run's window: provisions still in flight at its
	// end are cut off and not counted, and the time they take to stop is
	// not the run's.
	el := min(time.Since(start), o.Duration)
	procCPU := selfCPU() - cpu0
	if profiling {
		pprof.StopCPUProfile()
	}
	r := &BenchResult{Provisions: len(lat), Errors: errs, Seconds: el.Seconds(), Clients: o.Clients, FreshEvidence: o.FreshEvidence,
		Client: o.Client, ProcessCPUSeconds: procCPU.Seconds()}
	if err := r.serverSide(context.WithoutCancel(ctx), o, before, procCPU, prof.Bytes(), profiling); err != nil {
		return r, err
	}
	if o.CPUProfile != nil && profiling {
		if _, err := o.CPUProfile.Write(prof.Bytes()); err != nil {
			return r, fmt.Errorf("cpu profile: %w", err)
		}
	}
	if firstErr != nil {
		r.FirstError = firstErr.Error()
	}
	if len(lat) == 0 {
		if firstErr != nil {
			return r, fmt.Errorf("no provision succeeded: %w", firstErr)
		}
		return r, errors.New("no provision completed")
	}
	r.ClientCPUPerProvisionMs = 1000 * r.ClientCPUSeconds / float64(len(lat))
	r.ServerCPUPerProvisionMs = 1000 * r.ServerCPUSeconds / float64(len(lat))
	slices.Sort(lat)
	r.ProvisionsPerSec = float64(len(lat)) / el.Seconds()
	r.P50ms = ms(lat[len(lat)/2])
	r.P99ms = ms(lat[min(len(lat)-1, len(lat)*99/100)])
	return r, nil
}

// serverSide fills in the server's counts and the CPU split.
func (r *BenchResult) serverSide(ctx context.Context, o BenchOptions, before ServerCounters, procCPU time.Duration, prof []byte, profiled bool) error {
	r.ClientCPUSeconds, r.CPUSplit = procCPU.Seconds(), "client: this process (getrusage); server CPU not measured"
	if o.Server == nil {
		return nil
	}
	after, err := o.Server.Counters(ctx)
	if err != nil {
		return err
	}
	answers, verified := after.VerdictCacheAnswers-before.VerdictCacheAnswers, after.Verifications-before.Verifications
	r.VerdictCacheAnswers, r.FreshQuotesVerified = &answers, &verified
	switch {
	case after.HasCPU:
		r.ServerCPUSeconds = (after.CPU - before.CPU).Seconds()
		r.CPUSplit = "client: this process (getrusage); server: its process (/proc/PID/stat)"
	case profiled:
		by, err := cpuByLabel(prof, BenchRoleLabel)
		if err != nil {
			return err
		}
		// The profile samples at 100 Hz; the split is the profile's, scaled
		// to the process's measured total.
		var sampled time.Duration
		for _, d := range by {
			sampled += d
		}
		if sampled == 0 {
			r.CPUSplit = "in-process server: no CPU samples"
			return nil
		}
		scale := procCPU.Seconds() / sampled.Seconds()
		r.ClientCPUSeconds = by["client"].Seconds() * scale
		r.ServerCPUSeconds = by["server"].Seconds() * scale
		r.OtherCPUSeconds = max(procCPU.Seconds()-r.ClientCPUSeconds-r.ServerCPUSeconds, 0)
		r.CPUSplit = "in-process server: CPU profile split by goroutine labels (client, server, other: Go runtime), scaled to getrusage"
	default:
		r.CPUSplit = "in-process server: not split (a CPU profile was already running)"
		r.ClientCPUSeconds = 0
		return nil
	}
	if tot := r.ClientCPUSeconds + r.ServerCPUSeconds + r.OtherCPUSeconds; tot > 0 {
		r.ClientCPUShare = r.ClientCPUSeconds / tot
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type ratlsCert struct{ cert tls.Certificate }

func newRATLSCert(ctx context.Context, a attest.Attester) (*ratlsCert, error) {
	cert, err := ratls.NewCertificate(ctx, a, ratls.CertOptions{})
	if err != nil {
		return nil, fmt.Errorf("RA-TLS certificate: %w", err)
	}
	return &ratlsCert{cert: cert}, nil
}

func provisionOnce(ctx context.Context, o BenchOptions, c *ratlsCert) error {
	if c == nil {
		var err error
		if c, err = newRATLSCert(ctx, o.Attester); err != nil {
			return err
		}
	}
	if o.Client == BenchClientHTTP2 {
		return provisionHTTP2(ctx, o, c.cert)
	}
	creds := credentials.NewTLS(ratls.ClientConfig(c.cert, o.ServerAuth))
	// o.Addr may list several replicas (client.Target).
	tgt, topts, err := client.Target(o.Addr)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(tgt, append(topts, grpc.WithTransportCredentials(creds))...)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := aspsv1.NewSecretsClient(conn).GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: o.Names})
	if err != nil {
		return err
	}
	if len(resp.GetSecrets()) != len(o.Names) {
		return fmt.Errorf("asked for %d secrets, got %d", len(o.Names), len(resp.GetSecrets()))
	}
	return nil
}
