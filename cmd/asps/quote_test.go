package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/asps-project/asps/internal/testdata"
)

// TestBenchVerifyTiers: `asps bench verify --json` reports the three tiers
// with their samples (dcap-qvl left out: it is timed by the script).
func TestBenchVerifyTiers(t *testing.T) {
	var c testdata.DCAPCase
	for _, tc := range testdata.DCAPCases(t) {
		if tc.Name == "tdx-v4-up-to-date" {
			c = tc
		}
	}
	code, out, stderr := run(t, "bench", "verify", filepath.Join(c.Dir, "quote.bin"), "--collateral", filepath.Join(c.Dir, "collateral.json"),
		"--at", c.Expected.VerifyAt.Format("2006-01-02T15:04:05Z07:00"), "--workers", "1", "--duration", "300ms", "--samples", "3", "--dcap-qvl", "no", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, out)
	}
	for _, k := range []string{"cold_quotes_per_sec", "new_platform_quotes_per_sec", "warm_quotes_per_sec"} {
		if v, _ := got[k].(float64); v <= 0 {
			t.Errorf("%s = %v", k, got[k])
		}
	}
	if got["samples"] != 3.0 || got["workers"] != 1.0 || len(got["cold_samples"].([]any)) != 3 {
		t.Errorf("samples/workers: %v %v %v", got["samples"], got["workers"], got["cold_samples"])
	}
	if _, ok := got["cold_vs_dcap_qvl"]; ok {
		t.Error("a ratio to dcap-qvl without timing it")
	}
}

// TestQuoteInspectLengths: a quote padded with zeros reports its own
// length, its signed length and the padding; non-zero bytes after it are
// refused.
func TestQuoteInspectLengths(t *testing.T) {
	q := testdata.DCAPQuote(t, "sgx-v3-config-sw-hardening")
	dir := t.TempDir()
	padded := filepath.Join(dir, "padded.bin")
	os.WriteFile(padded, append(append([]byte{}, q...), make([]byte, 8000-len(q))...), 0o600)
	code, out, stderr := run(t, "quote", "inspect", padded, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got map[string]any
	json.Unmarshal([]byte(out), &got)
	if got["quote_len"] != float64(len(q)) || got["signed_len"] != 432.0 || got["zero_padding"] != float64(8000-len(q)) {
		t.Fatalf("quote_len %v signed_len %v zero_padding %v; want %d 432 %d", got["quote_len"], got["signed_len"], got["zero_padding"], len(q), 8000-len(q))
	}
	junk := filepath.Join(dir, "junk.bin")
	os.WriteFile(junk, append(append([]byte{}, q...), "junk"...), 0o600)
	if code, _, stderr := run(t, "quote", "inspect", junk, "--json"); code == 0 {
		t.Fatalf("non-zero bytes after the quote accepted: %s", stderr)
	}
}
