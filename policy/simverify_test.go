package policy_test

import (
	"context"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
)

// simClaims quotes with a simulated attester of o (under o.PKI) and returns
// the claims the real verifier derives from that quote and its collateral.
func simClaims(t *testing.T, o sim.Options) *claims.Claims {
	t.Helper()
	a, err := sim.NewAttester(o)
	if err != nil {
		t.Fatal(err)
	}
	q, err := a.Quote(context.Background(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	col, err := a.Collateral(now)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dcap.NewVerifier(dcap.WithTrustAnchors(o.PKI.Root)).Verify(q, col, now)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Claims
	return &c
}
