package dcap

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
// exposes consistent fields: the signed region is a prefix of the input,
// only zeros follow the quote, and the quote without them parses to the
// same signed region.
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
		if len(q.SignedData) > len(b) || !bytes.Equal(q.SignedData, b[:len(q.SignedData)]) {
			t.Fatal("the signed region is not a prefix of the input")
		}
		if q.Len() > len(b) || q.Len() < len(q.SignedData) || q.Len()+q.Trailing != len(b) {
			t.Fatalf("quote length %d, padding %d, input %d", q.Len(), q.Trailing, len(b))
		}
		for _, c := range b[q.Len():] {
			if c != 0 {
				t.Fatal("a non-zero byte after the quote was accepted")
			}
		}
		q2, err := ParseQuote(b[:q.Len()])
		if err != nil || q2.Trailing != 0 || !bytes.Equal(q2.SignedData, q.SignedData) {
			t.Fatalf("the quote without its padding: %v", err)
		}
	})
}

// FuzzVerifyChain: verification of arbitrary quotes never panics, and an
// accepted input has the signed bytes of a seed that verifies: no
// mutation of a signed region is accepted, and the claims are the seed's.
func FuzzVerifyChain(f *testing.F) {
	v := NewVerifier()
	at := time.Date(2025, 7, 4, 0, 0, 0, 0, time.UTC)
	seeds := map[string]string{} // signed region → report data
	for _, b := range corpusFiles(f, "quote.bin") {
		f.Add(b)
		if res, err := v.VerifyChain(b, nil, at); err == nil {
			seeds[string(res.Quote.SignedData)] = res.ReportData.String()
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := v.VerifyChain(b, nil, at)
		if err != nil {
			if ReasonOf(err) == nil {
				t.Fatalf("a rejection without a reason: %v", err)
			}
			return
		}
		rd, ok := seeds[string(res.Quote.SignedData)]
		if !ok {
			t.Fatal("accepted a quote whose signed region is no seed's")
		}
		if res.ReportData.String() != rd {
			t.Fatal("claims differ from the seed's")
		}
	})
}

// FuzzSplitPEMChain: the strict PCK certification data parser accepts
// only PEM certificate blocks with whitespace around them (and NULs at
// the end), and the chain it returns re-encodes to input it accepts with
// the same certificates.
func FuzzSplitPEMChain(f *testing.F) {
	for _, b := range corpusFiles(f, "quote.bin") {
		if q, err := ParseQuote(bytes.TrimSuffix(b, []byte("\nextra bytes(only for testing purpose)\n"))); err == nil {
			f.Add(q.CertData.PCKCertChain)
			f.Add(append([]byte("x"), q.CertData.PCKCertChain...))
		}
	}
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ders, err := splitPEMChain(b, "f")
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("not malformed: %v", err)
			}
			return
		}
		// Outside the blocks: whitespace, then NULs only at the end.
		rest := b
		for range ders {
			i := bytes.Index(rest, []byte(pemBegin))
			if strings.Trim(string(rest[:i]), " \t\r\n") != "" {
				t.Fatalf("accepted junk %q before a block", rest[:i])
			}
			j := bytes.Index(rest, []byte(pemEnd))
			rest = rest[j+len(pemEnd):]
		}
		if strings.TrimRight(strings.Trim(string(rest), " \t\r\n"), "\x00") != "" {
			t.Fatalf("accepted junk %q after the chain", rest)
		}
		var canon []byte
		for _, d := range ders {
			canon = append(canon, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
		}
		again, err := splitPEMChain(canon, "f")
		if err != nil || len(again) != len(ders) {
			t.Fatalf("the canonical form: %v", err)
		}
		for i := range ders {
			if !bytes.Equal(again[i], ders[i]) {
				t.Fatal("the canonical form holds other certificates")
			}
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
		m, err := c.MarshalJSON()
		if err != nil {
			t.Fatalf("parsed collateral does not marshal: %v", err)
		}
		c2, err := ParseCollateralJSON(m)
		if err != nil {
			t.Fatalf("marshalled collateral does not parse: %v", err)
		}
		if !bytes.Equal(c2.TCBInfoBody, c.TCBInfoBody) || !bytes.Equal(c2.QEIdentityBody, c.QEIdentityBody) ||
			!bytes.Equal(c2.TCBInfoSignature, c.TCBInfoSignature) || !bytes.Equal(c2.QEIdentitySignature, c.QEIdentitySignature) {
			t.Fatal("a signed body or signature changed through marshal and parse")
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
		if ti, err := ParseTCBInfo(b); err == nil {
			if len(ti.FMSPC) != 12 || ti.FMSPC != strings.ToUpper(ti.FMSPC) || len(ti.TCBLevels) == 0 {
				t.Fatalf("accepted TCB info with FMSPC %q, %d levels", ti.FMSPC, len(ti.TCBLevels))
			}
			for i := 1; i < len(ti.TCBLevels); i++ {
				if compareTCB(&ti.TCBLevels[i-1].TCB, &ti.TCBLevels[i].TCB) < 0 {
					t.Fatal("TCB levels not sorted from the highest down")
				}
			}
		}
		if qi, err := ParseQEIdentity(b); err == nil && (len(qi.MrSigner) != 32 || len(qi.TCBLevels) == 0) {
			t.Fatal("accepted QE identity without mrsigner or levels")
		}
	})
}
