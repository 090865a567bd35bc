package dcap

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asps-project/asps/internal/testdata"
)

// corpusCase is one case of ../shared/testdata/dcap with its expected.json.
type corpusCase struct {
	name       string
	quote      []byte
	collateral *Collateral
	exp        expected
}

type expected struct {
	VerifyAt             time.Time `json:"verify_at"`
	CollateralValidFrom  time.Time `json:"collateral_valid_from"`
	CollateralValidUntil time.Time `json:"collateral_valid_until"`
	Accepted             bool      `json:"accepted"`
	Status               string    `json:"status"`
	AdvisoryIDs          []string  `json:"advisory_ids"`
	Error                string    `json:"error"`
	QuoteVersion         int       `json:"quote_version"`
	TEE                  string    `json:"tee"`
	BodyType             int       `json:"body_type"`
	MrEnclave            string    `json:"mr_enclave"`
	MrSigner             string    `json:"mr_signer"`
	IsvProdID            *int      `json:"isv_prod_id"`
	IsvSvn               *int      `json:"isv_svn"`
	Debug                bool      `json:"debug"`
	ReportData           string    `json:"report_data"`
	FMSPC                string    `json:"fmspc"`
	MrTd                 string    `json:"mr_td"`
	Rtmr0                string    `json:"rtmr0"`
	TdAttributes         string    `json:"td_attributes"`
}

func loadCorpus(t testing.TB) []corpusCase {
	t.Helper()
	dirs, err := filepath.Glob(testdata.Path(t, "dcap", "*", "expected.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases in the corpus: %v", err)
	}
	var out []corpusCase
	for _, e := range dirs {
		dir := filepath.Dir(e)
		c := corpusCase{name: filepath.Base(dir)}
		b, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &c.exp); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		if c.quote, err = os.ReadFile(filepath.Join(dir, "quote.bin")); err != nil {
			t.Fatal(err)
		}
		cb, err := os.ReadFile(filepath.Join(dir, "collateral.json"))
		if err != nil {
			t.Fatal(err)
		}
		if c.collateral, err = ParseCollateralJSON(cb); err != nil {
			t.Fatalf("%s: collateral: %v", c.name, err)
		}
		out = append(out, c)
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
