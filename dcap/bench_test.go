package dcap_test

import (
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/internal/testdata"
)

// Benchmarks in three tiers, on the accepted real quotes of the corpus and
// on simulated SGX v3, TDX v4 and TDX v5 quotes (issue 12):
//
//	go test ./dcap -run '^$' -bench . -benchmem
//
// cold: collateral parsed once outside the loop (as dcap-qvl is given it),
// nothing verified remembered: every signature, CRL and chain is checked
// per quote (about 9 ECDSA verifications); the pinned root certificate is
// configuration, its self-signature is not checked per quote.
//
// new-platform: the collateral already verified, the quote's PCK
// certificate and QE report seen for the first time (3 verifications:
// PCK certificate, QE report, quote).
//
// warm: the platform known; one quote signature per quote.
//
// Each also runs on all cores (-parallel suffix).
func BenchmarkVerify(b *testing.B) {
	for _, c := range benchCases(b) {
		for _, tier := range []string{"cold", "new-platform", "warm"} {
			b.Run(c.name+"/"+tier, func(b *testing.B) {
				v := c.verifier(tier)
				c.prime(b, v, tier)
				b.ResetTimer()
				for b.Loop() {
					if tier == "new-platform" {
						v.ForgetPlatforms()
					}
					if _, err := v.Verify(c.quote, c.col, c.at); err != nil {
						b.Fatal(err)
					}
				}
			})
			if tier == "new-platform" {
				continue // ForgetPlatforms under parallel load measures the clearing, not new platforms
			}
			b.Run(c.name+"/"+tier+"-parallel", func(b *testing.B) {
				v := c.verifier(tier)
				c.prime(b, v, tier)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := v.Verify(c.quote, c.col, c.at); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

type benchCase struct {
	name    string
	quote   []byte
	col     *dcap.Collateral
	at      time.Time
	anchors []dcap.Option
}

func (c *benchCase) verifier(tier string) *dcap.Verifier {
	opts := append([]dcap.Option{}, c.anchors...)
	if tier == "cold" {
		opts = append(opts, dcap.WithCacheBytes(0, 0))
	}
	return dcap.NewVerifier(opts...)
}

func (c *benchCase) prime(b *testing.B, v *dcap.Verifier, tier string) {
	if _, err := v.Verify(c.quote, c.col, c.at); err != nil {
		b.Fatal(err)
	}
}

func benchCases(b *testing.B) []benchCase {
	var out []benchCase
	for _, tc := range testdata.DCAPCases(b) {
		if !tc.Expected.Accepted {
			continue
		}
		col, err := dcap.ParseCollateralJSON(tc.CollateralJSON)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, benchCase{name: tc.Name, quote: tc.Quote, col: col, at: tc.Expected.VerifyAt})
	}
	for _, k := range []struct {
		name    string
		tee     claims.TEE
		version int
	}{{"sim-sgx-v3", claims.SGX, 3}, {"sim-tdx-v4", claims.TDX, 4}, {"sim-tdx-v5", claims.TDX, 5}} {
		c, err := sim.NewCase(sim.Options{TEE: k.tee, QuoteVersion: k.version})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, benchCase{name: k.name, quote: c.Quote, col: c.Collateral, at: c.At, anchors: []dcap.Option{dcap.WithTrustAnchors(c.Root)}})
	}
	return out
}

func BenchmarkParseQuote(b *testing.B) {
	for _, c := range benchCases(b) {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := dcap.ParseQuote(c.quote); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
