package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	p := mustParse(t, string(docExample(t)), "yaml")
	p.Source = "/etc/asps/policy.yaml"
	var out bytes.Buffer
	if err := p.Describe(&out); err != nil {
		t.Fatal(err)
	}
	s := squash(out.String())
	t.Log("\n" + out.String())
	for _, want := range []string{
		"policy /etc/asps/policy.yaml", "sha256 " + p.Digest, "2 app(s)", "simulated evidence: refused",
		`app "web" (sgx)`, "runtime:          gramine", "mr_enclave:       " + hexE1, "mr_signer:        " + hexS1,
		"isv_prod_id:      1", "min_isv_svn:      2", "tcb_statuses:     UpToDate, SWHardeningNeeded",
		"advisory_ids:     INTEL-SA-00615", "debug:            refused", "secrets:          db_password, tls_key",
		`app "batch" (tdx)`, "mr_td:            " + hexT1, "rtmr1:            " + hexR1, "advisory_ids:     none tolerated",
		"store_token:      set (not shown)", "secrets:          image_key",
	} {
		if !strings.Contains(s, squash(want)) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, leak := range []string{exampleToken, "kv/web/tls_key", "kv/web/db", "occlum/1/image_key", "warning"} {
		if strings.Contains(s, leak) {
			t.Errorf("output contains %q", leak)
		}
	}
}

func TestDescribeWarns(t *testing.T) {
	p := mustParse(t, "allow_simulated: true\n"+sgxApp+`    allow_debug: true
    advisory_ids: ["*"]
    tcb_statuses: [UpToDate, OutOfDate, Unknown]
`, "yaml")
	var out bytes.Buffer
	if err := p.Describe(&out); err != nil {
		t.Fatal(err)
	}
	s := squash(out.String())
	for _, want := range []string{"simulated evidence: ACCEPTED", "warning: allow_simulated", "debug:            ALLOWED",
		"warning: allow_debug", "advisory_ids:     ANY (*)", `warning: advisory_ids "*"`, "warning: accepts OutOfDate", "warning: accepts Unknown"} {
		if !strings.Contains(s, squash(want)) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// squash collapses runs of blanks, so tests do not depend on column widths.
func squash(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }

func TestDescribeWriteError(t *testing.T) {
	if err := mustParse(t, sgxApp, "yaml").Describe(failWriter{}); err == nil {
		t.Error("write error lost")
	}
}

// A store token prints as [redacted] however an app or a reference is printed.
func TestTokenNeverPrinted(t *testing.T) {
	p := mustParse(t, string(docExample(t)), "yaml")
	app := p.App("batch")
	refs, err := app.Authorize([]string{"image_key"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, v := range []any{app, *app, refs, refs[0], app.StoreToken} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
	}
	slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "app", app, "ref", refs[0], "token", app.StoreToken)
	slog.New(slog.NewTextHandler(&out, nil)).Info("x", "app", app, "ref", refs[0], "token", app.StoreToken)
	if strings.Contains(out.String(), exampleToken) || strings.Contains(out.String(), fmt.Sprintf("%x", exampleToken)) {
		t.Errorf("token printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "[redacted]") {
		t.Error("no redaction marker")
	}
	if (Token{}).String() != "" || NewToken("x").String() != "[redacted]" {
		t.Error("String")
	}
}
