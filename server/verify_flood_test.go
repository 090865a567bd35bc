package server_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/server"
)

// TestAttack_VerificationFloodStarvesLegitimateClients: per-source limits
// count failures only after a verification has run, and a flood spread
// over many sources (many IPv6 /64s) never reaches any one source's
// limit: every request on a new certificate ran a full verification at
// once, as many at a time as requests arrived, each holding a
// provisioning slot meanwhile. A flood of slow verifications (here: ones
// that block until released) took every CPU and every slot, and a
// workload whose certificate was already verified was shed. Verifications
// of certificates not yet verified now pass a gate (--max-verifications,
// a short bounded queue, then RESOURCE_EXHAUSTED with a retry hint);
// verified certificates skip it.
func TestAttack_VerificationFloodStarvesLegitimateClients(t *testing.T) {
	const (
		gate     = 2
		flood    = 40
		inFlight = 16
	)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()
	var inside, maxInside atomic.Int32
	stranger := devmode.DemoIdentity(claims.SGX)
	stranger.MrEnclave[0] ^= 0xff

	env, err := devmode.Start(context.Background(), devmode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	// The slow verification: a stranger's claims are held until released.
	rv, err := env.ServerVerifierWith(ratls.VerifyOptions{Check: func(c *claims.Claims) error {
		if c.SGX != nil && bytes.Equal(c.SGX.MrEnclave[:], stranger.MrEnclave[:]) {
			n := inside.Add(1)
			for m := maxInside.Load(); n > m && !maxInside.CompareAndSwap(m, n); m = maxInside.Load() {
			}
			defer inside.Add(-1)
			<-release
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h := startHardened(t, func(o *server.Options) {
		o.Verifier, o.Policy, o.Store = rv, env.Policy, env.Store
		o.Metrics = server.NewMetrics(reg, nil)
		o.Limits.MaxVerifications = gate
		o.Limits.MaxInFlight = inFlight
		o.Limits.MaxQueue = 1
	})
	h.env = env

	// A workload verified before the flood.
	legit := h.client(t, demo())
	ctx := context.Background()
	if _, err := legit.GetSecrets(ctx, "demo-key"); err != nil {
		t.Fatalf("before the flood: %v", err)
	}

	// The flood: each request on its own connection and a new certificate.
	a, err := devmode.Attester(env.PKI, claims.SGX, stranger)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		err     error
		trailer metadata.MD
	}
	results := make(chan result, flood)
	var returned atomic.Int32
	for range flood {
		cert, err := ratls.NewCertificate(ctx, a, ratls.CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := aspsv1.NewSecretsClient(dialGRPC(t, h.addr, h.pin, cert))
		go func() {
			var tr metadata.MD
			_, err := c.GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: []string{"demo-key"}}, grpc.Trailer(&tr))
			returned.Add(1)
			results <- result{err, tr}
		}()
	}
	waitFor(t, "every flood request verifying or answered", func() bool { return int(inside.Load()+returned.Load()) == flood })

	if m := maxInside.Load(); m > gate {
		t.Errorf("%d verifications of new certificates ran at once; the bound is %d", m, gate)
	}
	if got := metricValue(t, reg, "asps_attestation_verifications_in_progress", ""); got != float64(inside.Load()) {
		t.Errorf("verifications in progress metric %v, want %d", got, inside.Load())
	}
	// The verified workload is served while the flood holds the gate.
	if s, err := legit.GetSecrets(ctx, "demo-key"); err != nil || !bytes.Equal(s[0].Value, devmode.DemoSecrets()["demo-key"]) {
		t.Fatalf("verified workload during the flood: %v", err)
	}

	// The refused part of the flood was told why, with a retry hint.
	n := int(returned.Load())
	for range n {
		r := <-results
		if status.Code(r.err) != codes.ResourceExhausted || !strings.Contains(status.Convert(r.err).Message(), server.ReasonVerificationBusy) {
			t.Fatalf("flood request: %v, want ResourceExhausted %q", r.err, server.ReasonVerificationBusy)
		}
		if len(r.trailer.Get(server.RetryAfterKey)) != 1 {
			t.Fatalf("no retry hint with %v", r.err)
		}
	}
	if got := metricValue(t, reg, "asps_attestation_verifications_refused_total", "busy"); got != float64(n) {
		t.Errorf("refused metric %v, want %d", got, n)
	}
	t.Logf("flood of %d new certificates: at most %d verifying at once, %d refused (gate %d)", flood, maxInside.Load(), n, gate)
	unblock()
	for range flood - n {
		<-results
	}
}
