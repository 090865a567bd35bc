package dcap

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/asps-project/asps/internal/testdata"
)

// corpusCase is one case of ../shared/testdata/dcap with its expected.json.
type corpusCase struct {
	name       string
	quote      []byte
	collateral *Collateral
	exp        testdata.DCAPExpected
}

func loadCorpus(t testing.TB) []corpusCase {
	t.Helper()
	var out []corpusCase
	for _, tc := range testdata.DCAPCases(t) {
		col, err := ParseCollateralJSON(tc.CollateralJSON)
		if err != nil {
			t.Fatalf("%s: collateral: %v", tc.Name, err)
		}
		out = append(out, corpusCase{name: tc.Name, quote: tc.Quote, collateral: col, exp: tc.Expected})
	}
	return out
}

// TestCorpusVerdicts: every real case reaches exactly its expected verdict
// at its verify_at time.
func TestCorpusVerdicts(t *testing.T) {
	v := NewVerifier()
	for _, c := range loadCorpus(t) {
		t.Run(c.name, func(t *testing.T) {
			res, err := v.Verify(c.quote, c.collateral, c.exp.VerifyAt)
			if !c.exp.Accepted {
				if err == nil {
					t.Fatalf("accepted with status %s; want rejection %q", res.TCBStatus, c.exp.Error)
				}
				if strings.Contains(c.exp.Error, "No matching TCB level") && !errors.Is(err, ErrNoMatchingTCBLevel) {
					t.Fatalf("rejected with %v; want ErrNoMatchingTCBLevel", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if res.TCBStatus != c.exp.Status {
				t.Errorf("status %s, want %s", res.TCBStatus, c.exp.Status)
			}
			got, want := slices.Clone(res.AdvisoryIDs), slices.Clone(c.exp.AdvisoryIDs)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("advisory IDs %v, want %v", res.AdvisoryIDs, c.exp.AdvisoryIDs)
			}
			if res.FMSPC != c.exp.FMSPC {
				t.Errorf("fmspc %s, want %s", res.FMSPC, c.exp.FMSPC)
			}
			if res.Simulated {
				t.Error("a real quote under Intel's root is marked simulated")
			}
			if !res.RevocationChecked {
				t.Error("revocation not checked")
			}
		})
	}
}

func testdataRoot(t testing.TB) []byte { return testdata.Read(t, "dcap", "intel-sgx-root-ca.pem") }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestCorpusPublisherTrailerIsMalformed: one real quote file
// (tdx-v4-no-tcb-level, from go-tdx-guest) ends with text its publisher
// appended "for testing purpose". The independent verifier read past it;
// asps refuses non-zero bytes after the signed quote as malformed (a
// deliberate difference: nothing unsigned rides along with evidence), and
// reaches the independent verdict on the quote without them.
func TestCorpusPublisherTrailerIsMalformed(t *testing.T) {
	const name = "tdx-v4-no-tcb-level"
	raw := testdata.Read(t, "dcap", name, "quote.bin")
	stripped := testdata.DCAPQuote(t, name)
	if len(stripped) >= len(raw) {
		t.Fatalf("%s: no trailer to strip (%d bytes): the corpus changed", name, len(raw))
	}
	var c corpusCase
	for _, x := range loadCorpus(t) {
		if x.name == name {
			c = x
		}
	}
	_, err := NewVerifier().Verify(raw, c.collateral, c.exp.VerifyAt)
	var r *Rejection
	if !errors.As(err, &r) || r.Reason != ErrMalformed || r.Check != CheckParse || !strings.Contains(err.Error(), "39 bytes after the 4935-byte quote") {
		t.Fatalf("the file as published: %v; want %s: %v naming the 39 bytes", err, CheckParse, ErrMalformed)
	}
	if _, err := NewVerifier().Verify(stripped, c.collateral, c.exp.VerifyAt); !errors.Is(err, ErrNoMatchingTCBLevel) {
		t.Fatalf("without the trailer: %v; want the independent verdict, ErrNoMatchingTCBLevel", err)
	}
}
