package collateral

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
)

// TestSimulatorThroughMirror: simulated SGX and TDX cases (under the
// simulator's root, passed explicitly) go through import, mirror, client
// and cache, and verify; under Intel's root the bundle is refused.
func TestSimulatorThroughMirror(t *testing.T) {
	now := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	for _, tee := range []claims.TEE{claims.SGX, claims.TDX} {
		t.Run(string(tee), func(t *testing.T) {
			c, err := sim.NewCase(sim.Options{TEE: tee, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			roots := []*x509.Certificate{c.Root}
			dir := t.TempDir()
			if _, err := ImportCollateral(dir, c.Collateral, nil, now); !errors.Is(err, dcap.ErrUntrustedRoot) {
				t.Fatalf("simulated collateral under Intel's root: %v", err)
			}
			if _, err := ImportCollateral(dir, c.Collateral, NewChecker(roots...).Check, now); err != nil {
				t.Fatal(err)
			}
			clock := func() time.Time { return c.At }
			b, err := OpenBundle(dir, Options{TrustAnchors: roots, Now: clock, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(NewHandler(b))
			defer srv.Close()
			cache, err := NewCache(Options{Client: testClient(t, srv.URL), TrustAnchors: roots, Now: clock, RefreshInterval: -1, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer cache.Close()
			q, err := dcap.ParseQuote(c.Quote)
			if err != nil {
				t.Fatal(err)
			}
			qtee, fmspc, ca, err := ForQuote(q)
			if err != nil {
				t.Fatal(err)
			}
			if qtee != string(tee) {
				t.Fatalf("ForQuote TEE %s", qtee)
			}
			col, info, err := cache.Get(context.Background(), qtee, fmspc, ca)
			if err != nil {
				t.Fatal(err)
			}
			res, err := dcap.NewVerifier(dcap.WithTrustAnchors(roots...)).VerifyQuote(q, col, info.VerifyAt)
			if err != nil {
				t.Fatal(err)
			}
			if res.TCBStatus != c.Expected.Status || !res.Simulated {
				t.Errorf("status %s (simulated %v), want %s", res.TCBStatus, res.Simulated, c.Expected.Status)
			}
		})
	}
}
