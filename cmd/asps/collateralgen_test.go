package main

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/asps-project/asps/dcap/sim"
)

// TestPCCSVerdictsFollowCollateralGeneration: the server's PCCS source
// reports its collateral generation to the RA-TLS verifier (so a newer
// CRL reaches cached verdicts: TestAttack_RevokedPCKServedFromVerdictCache,
// TestAttack_NewerCRLDoesNotReachCachedVerdicts); a fixed bundle has none.
func TestPCCSVerdictsFollowCollateralGeneration(t *testing.T) {
	pki, err := sim.DefaultPKI()
	if err != nil {
		t.Fatal(err)
	}
	f := &collateralFlags{pccs: "http://127.0.0.1:9", allowHTTP: true}
	src, closeSrc, err := f.source([]*x509.Certificate{pki.Root}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSrc()
	g := collateralGeneration(src)
	if g == nil {
		t.Fatal("a PCCS source gives the verifier no collateral generation: cached verdicts outlive a newer CRL")
	}
	if g() != 0 {
		t.Errorf("generation %d before any document, want 0", g())
	}
}
