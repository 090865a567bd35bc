package sim

import (
	"bytes"
	"testing"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// TestTamper: SetReportData and ReplaceCertData change exactly what they
// say, in SGX v3 and TDX v4/v5 quotes, and the result still parses.
func TestTamper(t *testing.T) {
	for _, tc := range []struct {
		tee claims.TEE
		ver int
	}{{claims.SGX, 3}, {claims.TDX, 4}, {claims.TDX, 5}} {
		a, err := NewAttester(Options{TEE: tc.tee, QuoteVersion: tc.ver})
		if err != nil {
			t.Fatal(err)
		}
		quote, err := a.Quote(t.Context(), [64]byte{1})
		if err != nil {
			t.Fatal(err)
		}
		rd := [64]byte{0xaa, 63: 0xbb}
		got, err := SetReportData(quote, rd)
		if err != nil {
			t.Fatal(err)
		}
		q, err := dcap.ParseQuote(got)
		if err != nil || q.ReportData() != rd {
			t.Fatalf("%s v%d: set report data: %v %x", tc.tee, tc.ver, err, q.ReportData())
		}
		q0, _ := dcap.ParseQuote(quote)
		chain := append([]byte("pad\n"), q0.CertData.PCKCertChain...)
		got, err = ReplaceCertData(quote, chain)
		if err != nil {
			t.Fatal(err)
		}
		q, err = dcap.ParseQuote(got)
		if err != nil || !bytes.Equal(q.CertData.PCKCertChain, chain) {
			t.Fatalf("%s v%d: replace certification data: %v", tc.tee, tc.ver, err)
		}
	}
}
