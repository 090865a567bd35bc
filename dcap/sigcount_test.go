package dcap

import "testing"

// TestSignaturesPerTier: each signature is verified once per tier (issue
// 12). Cold — nothing remembered — checks the PCK CA and the PCK
// certificate, the QE report, the quote, the TCB signing certificate, the
// TCB info, the QE identity and both CRLs: 9, with the pinned root's
// self-signature never checked and the certificates that appear in
// several chains checked once. A new platform costs the PCK certificate,
// the QE report and the quote: 3. A known one, the quote: 1.
func TestSignaturesPerTier(t *testing.T) {
	for _, c := range acceptedCases(t) {
		t.Run(c.name, func(t *testing.T) {
			count := func(v *Verifier) int64 {
				t.Helper()
				n := signatureChecks.Load()
				if _, err := v.Verify(c.quote, c.collateral, c.exp.VerifyAt); err != nil {
					t.Fatal(err)
				}
				return signatureChecks.Load() - n
			}
			cold := NewVerifier(WithCacheBytes(0, 0))
			for range 2 {
				if n := count(cold); n != 9 {
					t.Errorf("cold: %d signature checks, want 9", n)
				}
			}
			v := NewVerifier()
			if n := count(v); n != 9 {
				t.Errorf("first quote: %d signature checks, want 9", n)
			}
			if n := count(v); n != 1 {
				t.Errorf("warm: %d signature checks, want 1", n)
			}
			v.ForgetPlatforms()
			if n := count(v); n != 3 {
				t.Errorf("new platform: %d signature checks, want 3", n)
			}
		})
	}
}
