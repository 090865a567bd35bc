package collateral

import (
	"testing"

	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
)

func simQuote(t testing.TB, fmspc string) *dcap.Quote {
	t.Helper()
	c, err := sim.NewCase(sim.Options{FMSPC: fmspc})
	if err != nil {
		t.Fatal(err)
	}
	q, err := dcap.ParseQuote(c.Quote)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestForQuoteMemo: ForQuote remembers a chain's FMSPC and CA by the
// chain's bytes — the same answer without parsing again, another
// platform's chain its own answer — and holds a bounded number.
func TestForQuoteMemo(t *testing.T) {
	a, b := simQuote(t, "00906ED50000"), simQuote(t, "00A06F000000")
	for range 2 {
		for _, tc := range []struct {
			q     *dcap.Quote
			fmspc string
		}{{a, "00906ED50000"}, {b, "00A06F000000"}} {
			tee, fmspc, ca, err := ForQuote(tc.q)
			if err != nil || tee != "sgx" || fmspc != tc.fmspc || ca != "processor" {
				t.Fatalf("ForQuote = %s %s %s %v, want sgx %s processor", tee, fmspc, ca, err, tc.fmspc)
			}
			if _, ok := forQuoteMemo.get(chainKey(tc.q.CertData.PCKCertChain)); !ok {
				t.Fatal("chain not remembered")
			}
		}
	}
	// A chain that does not parse is not remembered.
	bad := *a
	bad.CertData.PCKCertChain = []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
	if _, _, _, err := ForQuote(&bad); err == nil {
		t.Fatal("a broken chain was read")
	}
	if _, ok := forQuoteMemo.get(chainKey(bad.CertData.PCKCertChain)); ok {
		t.Fatal("a failure was remembered")
	}
	m := &pckMemo{m: map[[32]byte]pckInfo{}}
	for i := range 3 * pckMemoMax {
		m.put(chainKey([]byte{byte(i), byte(i >> 8)}), pckInfo{})
		if m.len() > pckMemoMax {
			t.Fatalf("memo holds %d chains, bound %d", m.len(), pckMemoMax)
		}
	}
}

// BenchmarkForQuote: reading FMSPC and CA from a quote's PCK chain,
// parsed each time (cold) or remembered (warm).
//
//	go test ./dcap/collateral -run '^$' -bench ForQuote
func BenchmarkForQuote(b *testing.B) {
	q := simQuote(b, "00906ED50000")
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			forQuoteMemo.mu.Lock()
			clear(forQuoteMemo.m)
			forQuoteMemo.mu.Unlock()
			if _, _, _, err := ForQuote(q); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			if _, _, _, err := ForQuote(q); err != nil {
				b.Fatal(err)
			}
		}
	})
}
