package dcap_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
)

// TestCacheEntryBytes measures what one cached platform (PCK chain) and
// one cached collateral set hold on the heap, and checks that the
// verifier's estimates — which its byte bounds count — are not below
// them. The figures are logged (go test -v -run TestCacheEntryBytes).
func TestCacheEntryBytes(t *testing.T) {
	const n = 60
	var cases []*sim.Case
	for i := range n {
		c, err := sim.NewCase(sim.Options{FMSPC: fmt.Sprintf("00906ED5%04X", i)})
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	root := cases[0].Root
	colJSON := make([][]byte, n)
	for i, c := range cases {
		b, err := c.Collateral.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		colJSON[i] = b
	}
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}

	// Platforms: only the PCK-chain cache fills.
	v := dcap.NewVerifier(dcap.WithTrustAnchors(root))
	h0 := heap()
	for _, c := range cases {
		q, err := dcap.ParseQuote(c.Quote)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.CheckPCKChain(q, c.At); err != nil {
			t.Fatal(err)
		}
	}
	perChain := (heap() - h0) / n
	s := v.Stats()
	if s.Chain.Entries != n {
		t.Fatalf("%d chains cached, want %d", s.Chain.Entries, n)
	}
	estChain := s.Chain.Bytes / int64(n)
	t.Logf("per cached platform: %d bytes measured, %d estimated", perChain, estChain)
	if perChain > estChain {
		t.Errorf("a cached platform holds %d bytes, more than the %d the bound counts", perChain, estChain)
	}

	// Collateral sets: verified once each, the caller keeping nothing.
	v2 := dcap.NewVerifier(dcap.WithTrustAnchors(root))
	h1 := heap()
	for i, c := range cases {
		col, err := dcap.ParseCollateralJSON(colJSON[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v2.Verify(c.Quote, col, c.At); err != nil {
			t.Fatal(err)
		}
	}
	v2.ForgetPlatforms()
	perCol := (heap() - h1) / n
	s2 := v2.Stats()
	estCol := s2.Collateral.Bytes / int64(n)
	t.Logf("per cached collateral set: %d bytes measured, %d estimated (%d sets)", perCol, estCol, s2.Collateral.Entries)
	if perCol > estCol {
		t.Errorf("a cached collateral set holds %d bytes, more than the %d the bound counts", perCol, estCol)
	}
	runtime.KeepAlive(v)
	runtime.KeepAlive(v2)
	runtime.KeepAlive(cases)
	runtime.KeepAlive(colJSON)
}
