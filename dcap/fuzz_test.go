package dcap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
)

func corpusFiles(f *testing.F, name string) [][]byte {
	d := os.Getenv("ASPS_TESTDATA")
	if d == "" {
		d = filepath.Join("..", "..", "shared", "testdata")
	}
	paths, _ := filepath.Glob(filepath.Join(d, "dcap", "*", name))
	var out [][]byte
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// FuzzParseQuote: no input panics the quote parser, and what parses
// exposes consistent fields.
func FuzzParseQuote(f *testing.F) {
	for _, b := range corpusFiles(f, "quote.bin") {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{3, 0, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuote(b)
		if err != nil {
			return
		}
		if (q.SGX == nil) == (q.TD == nil) {
			t.Fatal("a parsed quote must have exactly one body")
		}
		_ = q.Claims()
		if len(q.SignedData) > len(b) {
			t.Fatal("signed region beyond the input")
		}
	})
}

// FuzzVerifyChain: verification of arbitrary quotes never panics, every
// rejection has a reason, and what is accepted carries a seed's signed bytes.
func FuzzVerifyChain(f *testing.F) {
	v := NewVerifier()
	at := time.Date(2025, 7, 4, 0, 0, 0, 0, time.UTC)
	// The signed bytes of every seed the chain check accepts, with the
	// identity it asserts.
	accepted := map[string]*claims.Claims{}
	for _, b := range corpusFiles(f, "quote.bin") {
		f.Add(b)
		if r, err := v.VerifyChain(b, nil, at); err == nil {
			accepted[string(r.Quote.SignedData)] = r.Quote.Claims()
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := v.VerifyChain(b, nil, at)
		if err != nil {
			if r != nil {
				t.Fatalf("a result with the error %v", err)
			}
			if ReasonOf(err) == nil {
				t.Fatalf("a rejection without a reason: %v", err)
			}
			return
		}
		// Invariant: what the chain check accepts was signed as it is —
		// an accepted mutated input has the same signed bytes as its
		// seed, and so asserts the same identity.
		seed, ok := accepted[string(r.Quote.SignedData)]
		if !ok {
			t.Fatalf("accepted a quote whose signed bytes are no seed's (%d bytes)", len(r.Quote.SignedData))
		}
		got := r.Quote.Claims()
		if !bytes.Equal(got.ReportData, seed.ReportData) || got.TEE != seed.TEE || got.Debug != seed.Debug ||
			(got.SGX != nil) != (seed.SGX != nil) || got.SGX != nil && !bytes.Equal(got.SGX.MrEnclave, seed.SGX.MrEnclave) ||
			(got.TDX != nil) != (seed.TDX != nil) || got.TDX != nil && !bytes.Equal(got.TDX.MrTd, seed.TDX.MrTd) {
			t.Fatal("an accepted quote asserts another identity than its seed")
		}
		if !bytes.Equal(r.ReportData, seed.ReportData) {
			t.Fatal("the result's report data is not the signed one")
		}
	})
}

// FuzzParseCollateralJSON: no input panics the collateral parser.
func FuzzParseCollateralJSON(f *testing.F) {
	for _, b := range corpusFiles(f, "collateral.json") {
		f.Add(b)
	}
	f.Add([]byte(`{"tcb_info":"{\"id\":\"SGX\",\"version\":3}","tcb_info_signature":"00"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCollateralJSON(b)
		if err != nil {
			return
		}
		if _, err := c.MarshalJSON(); err != nil {
			t.Fatalf("parsed collateral does not marshal: %v", err)
		}
	})
}

// FuzzParseTCBInfo: the signed TCB info and QE identity body parsers.
func FuzzParseTCBInfo(f *testing.F) {
	for _, b := range corpusFiles(f, "collateral.json") {
		if c, err := ParseCollateralJSON(b); err == nil {
			f.Add(c.TCBInfoBody)
			f.Add(c.QEIdentityBody)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Invariants: a refusal is a *FormatError naming the field; what
		// parses holds only what the verifier relies on — a known id and
		// version, a 6-byte FMSPC in upper case, known statuses, levels
		// ordered from the highest TCB down, QE fields of their sizes.
		var fe *FormatError
		ti, err := ParseTCBInfo(b)
		if err != nil {
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("untyped TCB info error: %v", err)
			}
		} else {
			if ti.ID != "SGX" && ti.ID != "TDX" || ti.Version != 2 && ti.Version != 3 || len(ti.TCBLevels) == 0 {
				t.Fatalf("accepted id %q version %d with %d levels", ti.ID, ti.Version, len(ti.TCBLevels))
			}
			if fm, err := hex.DecodeString(ti.FMSPC); err != nil || len(fm) != 6 || ti.FMSPC != strings.ToUpper(ti.FMSPC) {
				t.Fatalf("accepted fmspc %q", ti.FMSPC)
			}
			for i, l := range ti.TCBLevels {
				if !slices.Contains(platformStatuses, l.TCBStatus) {
					t.Fatalf("level %d: status %q", i, l.TCBStatus)
				}
				if i > 0 && compareTCB(&ti.TCBLevels[i-1].TCB, &l.TCB) < 0 {
					t.Fatalf("levels %d and %d are not ordered from the highest TCB down", i-1, i)
				}
			}
		}
		qi, err := ParseQEIdentity(b)
		if err != nil {
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("untyped QE identity error: %v", err)
			}
			return
		}
		if qi.ID != "QE" && qi.ID != "TD_QE" || len(qi.MrSigner) != 32 || len(qi.MiscSelect) != 4 || len(qi.MiscSelectMask) != 4 ||
			len(qi.Attributes) != 16 || len(qi.AttributesMask) != 16 || len(qi.TCBLevels) == 0 {
			t.Fatalf("accepted QE identity %q with fields of the wrong size", qi.ID)
		}
		for i, l := range qi.TCBLevels {
			if !slices.Contains(platformStatuses, l.TCBStatus) {
				t.Fatalf("QE level %d: status %q", i, l.TCBStatus)
			}
		}
	})
}
