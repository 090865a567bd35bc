package dcap

import (
	"os"
	"path/filepath"
	"testing"
	"time"
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

// FuzzVerifyChain: verification of arbitrary quotes never panics.
func FuzzVerifyChain(f *testing.F) {
	for _, b := range corpusFiles(f, "quote.bin") {
		f.Add(b)
	}
	v := NewVerifier()
	at := time.Date(2025, 7, 4, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = v.VerifyChain(b, nil, at)
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

// FuzzParseTCBInfo: the signed TCB info body parser.
func FuzzParseTCBInfo(f *testing.F) {
	for _, b := range corpusFiles(f, "collateral.json") {
		if c, err := ParseCollateralJSON(b); err == nil {
			f.Add(c.TCBInfoBody)
			f.Add(c.QEIdentityBody)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseTCBInfo(b)
		_, _ = ParseQEIdentity(b)
	})
}
