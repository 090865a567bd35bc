package testdata

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// DCAPCase is one case of the corpus's dcap/ folder: a real quote, its
// collateral in dcap-qvl's JSON layout, and the independent verdict.
type DCAPCase struct {
	Name string
	Dir  string
	// Quote is the case's quote.bin without the text its publisher
	// appended after the quote (see DCAPQuote).
	Quote          []byte
	CollateralJSON []byte
	Expected       DCAPExpected
}

// DCAPExpected is a case's expected.json.
type DCAPExpected struct {
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

// DCAPCases reads every case of the corpus's dcap/ folder.
func DCAPCases(t testing.TB) []DCAPCase {
	t.Helper()
	exps, err := filepath.Glob(Path(t, "dcap", "*", "expected.json"))
	if err != nil || len(exps) == 0 {
		t.Fatalf("no cases in the corpus: %v", err)
	}
	var out []DCAPCase
	for _, e := range exps {
		dir := filepath.Dir(e)
		c := DCAPCase{Name: filepath.Base(dir), Dir: dir}
		if err := json.Unmarshal(Read(t, "dcap", c.Name, "expected.json"), &c.Expected); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		c.Quote = DCAPQuote(t, c.Name)
		c.CollateralJSON = Read(t, "dcap", c.Name, "collateral.json")
		out = append(out, c)
	}
	return out
}

// publisherTrailer is what google/go-tdx-guest appended to one of its
// quotes (tdx-v4-no-tcb-level) "for testing purpose": non-zero bytes after
// the quote, which verifiers refuse as malformed. The independent verdict
// in expected.json is the quote's own.
const publisherTrailer = "\nextra bytes(only for testing purpose)\n"

// DCAPQuote returns a case's quote.bin without its publisher's test
// trailer, if it has one.
func DCAPQuote(t testing.TB, name string) []byte {
	t.Helper()
	b := Read(t, "dcap", name, "quote.bin")
	return bytes.TrimSuffix(b, []byte(publisherTrailer))
}

// DCAPQuoteFile returns the path of a case's quote as DCAPQuote gives it:
// the corpus file itself, or a copy without the trailer.
func DCAPQuoteFile(t testing.TB, name string) string {
	t.Helper()
	p := Path(t, "dcap", name, "quote.bin")
	b := DCAPQuote(t, name)
	if raw := Read(t, "dcap", name, "quote.bin"); len(raw) == len(b) {
		return p
	}
	out := filepath.Join(t.TempDir(), name+".quote.bin")
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}
