package dcap

import (
	"testing"
)

// Benchmarks over the real accepted samples (SGX v3 and TDX v4).
//
//	go test ./dcap -run '^$' -bench . -benchmem
//
// Cold: a fresh verifier with nothing cached, collateral parsed from JSON.
// Warm: the steady state of a server, collateral and PCK chain seen before.
func BenchmarkVerify(b *testing.B) {
	for _, c := range acceptedCasesB(b) {
		b.Run(c.name+"/cold", func(b *testing.B) {
			colJSON, err := c.collateral.MarshalJSON()
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				col, err := ParseCollateralJSON(colJSON)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := NewVerifier().Verify(c.quote, col, c.exp.VerifyAt); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/warm", func(b *testing.B) {
			v := NewVerifier()
			if _, err := v.Verify(c.quote, c.collateral, c.exp.VerifyAt); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := v.Verify(c.quote, c.collateral, c.exp.VerifyAt); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/warm-parallel", func(b *testing.B) {
			v := NewVerifier()
			if _, err := v.Verify(c.quote, c.collateral, c.exp.VerifyAt); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(c.quote, c.collateral, c.exp.VerifyAt); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkParseQuote(b *testing.B) {
	for _, c := range acceptedCasesB(b) {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := ParseQuote(c.quote); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func acceptedCasesB(b *testing.B) []corpusCase {
	var out []corpusCase
	for _, c := range loadCorpus(b) {
		if c.exp.Accepted {
			out = append(out, c)
		}
	}
	return out
}
