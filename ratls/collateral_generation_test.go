package ratls

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// revocableVerifier is a fakeQuoteVerifier whose collateral can change:
// after revoke, its PCK CRL lists the platform and the collateral
// generation moves on, as collateral.Cache's does when a newer CRL
// replaces the one in force.
type revocableVerifier struct {
	*fakeQuoteVerifier
	revoked atomic.Bool
	gen     atomic.Uint64
}

func (r *revocableVerifier) Verify(ctx context.Context, b []byte) (*claims.Claims, error) {
	if r.revoked.Load() {
		r.calls.Add(1)
		return nil, &dcap.Rejection{Check: "check PCK certificate revocation", Reason: dcap.ErrPCKRevoked, Detail: "serial on the PCK CRL"}
	}
	return r.fakeQuoteVerifier.Verify(ctx, b)
}

func (r *revocableVerifier) CollateralGeneration() uint64 { return r.gen.Load() }

func (r *revocableVerifier) revoke() {
	r.revoked.Store(true)
	r.gen.Add(1)
}

// TestAttack_RevokedPCKServedFromVerdictCache: a workload's platform is
// revoked (Intel puts its PCK on the CRL; the server's collateral cache
// takes the newer CRL), but the RA-TLS verdict cache keeps answering
// "verified" for its certificate until the cached verdict expires — up to
// the cache TTL (10 minutes) or the old CRL's nextUpdate (weeks). With
// collateral generations, the next connection is verified anew and
// refused for the revocation; the same for a certificate's session
// evidence and for Known (which would let a refused peer past the
// verification gate).
func TestAttack_RevokedPCKServedFromVerdictCache(t *testing.T) {
	tee := newFakeTEE(t, false)
	ctx := context.Background()
	qv := &revocableVerifier{fakeQuoteVerifier: verifierFor(tee)}
	v := NewVerifier(qv, VerifyOptions{})
	cert, err := NewCertificate(ctx, tee, CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := v.Verify(ctx, cert.Leaf); err != nil {
			t.Fatalf("before the revocation: %v", err)
		}
	}
	if n := qv.calls.Load(); n != 1 {
		t.Fatalf("%d quote verifications before the revocation, want 1 (then the verdict cache)", n)
	}
	if !v.Known(cert.Leaf) {
		t.Fatal("Known: the verified certificate is not known")
	}

	qv.revoke()

	if v.Known(cert.Leaf) {
		t.Error("Known: a verdict reached with the replaced collateral still counts as known")
	}
	_, err = v.Verify(ctx, cert.Leaf)
	if !errors.Is(err, ErrQuoteRejected) || !errors.Is(err, dcap.ErrPCKRevoked) {
		t.Fatalf("after the PCK was revoked: %v; want ErrQuoteRejected for ErrPCKRevoked (the cached verdict answered)", err)
	}
	if n := qv.calls.Load(); n != 2 {
		t.Errorf("%d quote verifications, want 2 (the cached verdict dropped once the collateral changed)", n)
	}
	// The refusal is remembered for this generation only.
	if _, err := v.Verify(ctx, cert.Leaf); !errors.Is(err, dcap.ErrPCKRevoked) {
		t.Fatalf("again: %v", err)
	}
	qv.revoked.Store(false)
	qv.gen.Add(1) // e.g. a CRL that no longer lists it (an error by Intel corrected)
	if _, err := v.Verify(ctx, cert.Leaf); err != nil {
		t.Fatalf("after the collateral changed back: %v (a remembered refusal outlived its collateral)", err)
	}
}
