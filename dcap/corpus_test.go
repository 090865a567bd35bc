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
