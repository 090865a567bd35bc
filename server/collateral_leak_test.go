package server_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/collateral"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/server"
)

// TestAttack_CollateralOutageTellsPeersTheUpstream: while the PCCS is
// unreachable, every peer whose quote needs collateral — a stranger on a
// rented TEE included — used to be refused with the collateral error in
// full: the PCCS URL as configured, its internal address and its error
// text. Outside dev mode the peer is told the collateral for its quote is
// unavailable and why, in one reason; the audit record keeps the detail.
func TestAttack_CollateralOutageTellsPeersTheUpstream(t *testing.T) {
	pki, err := sim.DefaultPKI()
	if err != nil {
		t.Fatal(err)
	}
	const upstream = "https://pccs.corp.internal:8081/sgx/certification/v4/tcb?fmspc=00906ED50000"
	outage := func(_ context.Context, q *dcap.Quote) (*dcap.Collateral, ratls.CollateralInfo, error) {
		return nil, ratls.CollateralInfo{}, &collateral.Error{Key: collateral.TCBInfoKey("sgx", "00906ED50000"), URL: upstream,
			Reason: collateral.ErrUnavailable, Attempts: 3, Err: errOutage}
	}
	for _, dev := range []bool{false, true} {
		h := startHardened(t, func(o *server.Options) {
			o.Dev = dev
			o.Verifier = ratls.NewVerifier(&ratls.DCAPVerifier{Verifier: dcap.NewVerifier(dcap.WithTrustAnchors(pki.Root)), Collateral: outage}, ratls.VerifyOptions{})
		})
		c := h.client(t, simOpts{TEE: claims.SGX, Identity: devmode.DemoIdentity(claims.SGX)})
		_, err := c.GetSecrets(context.Background(), "demo-key")
		if want := map[bool]codes.Code{false: codes.Unavailable, true: codes.Unauthenticated}[dev]; status.Code(err) != want {
			t.Fatalf("dev=%v: %v, want code %v", dev, err, want)
		}
		msg := status.Convert(err).Message()
		leaks := strings.Contains(msg, "pccs.corp.internal") || strings.Contains(msg, "10.20.30.40")
		if leaks != dev {
			t.Errorf("dev=%v: the refusal %q shows the upstream: %v", dev, msg, leaks)
		}
		if !strings.Contains(msg, "collateral") || !strings.Contains(msg, collateral.ErrUnavailable.Error()) {
			t.Errorf("dev=%v: the refusal %q does not say why", dev, msg)
		}
		recs := h.audit.records(t)
		if r := recs[len(recs)-1]; !strings.Contains(r.Reason, "pccs.corp.internal") {
			t.Errorf("dev=%v: the audit record lost the detail: %q", dev, r.Reason)
		}
	}
}

type outageErr struct{}

func (outageErr) Error() string { return "dial tcp 10.20.30.40:8081: connect: connection refused" }

var errOutage error = outageErr{}
