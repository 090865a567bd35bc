package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/asps-project/asps/claims"
)

func TestDocExampleParses(t *testing.T) {
	p := mustParse(t, string(docExample(t)), "yaml")
	if len(p.Apps) != 2 || p.AllowSimulated {
		t.Fatalf("apps = %d, allow_simulated = %v", len(p.Apps), p.AllowSimulated)
	}
	web, batch := p.App("web"), p.App("batch")
	if web == nil || batch == nil {
		t.Fatal("apps web and batch not found")
	}
	if web.TEE != claims.SGX || web.Runtime != "gramine" || web.SGX.MrEnclave.String() != hexE1 ||
		web.SGX.MrSigner.String() != hexS1 || *web.SGX.IsvProdID != 1 || web.SGX.MinIsvSvn != 2 {
		t.Errorf("web = %+v %+v", web, web.SGX)
	}
	if !slices.Equal(web.TCBStatuses, []string{"UpToDate", "SWHardeningNeeded"}) || !slices.Equal(web.AdvisoryIDs, []string{"INTEL-SA-00615"}) {
		t.Errorf("web statuses %v advisories %v", web.TCBStatuses, web.AdvisoryIDs)
	}
	if !slices.Equal(web.SecretNames(), []string{"db_password", "tls_key"}) || web.StoreToken.IsSet() || web.AllowDebug {
		t.Errorf("web secrets %v token set %v debug %v", web.SecretNames(), web.StoreToken.IsSet(), web.AllowDebug)
	}
	if batch.TEE != claims.TDX || batch.TDX.MrTd.String() != hexT1 || batch.TDX.Rtmr[1].String() != hexR1 ||
		batch.TDX.Rtmr[0] != nil || batch.StoreToken.Reveal() != exampleToken {
		t.Errorf("batch = %+v %+v", batch, batch.TDX)
	}
	if !slices.Equal(batch.TCBStatuses, []string{"UpToDate"}) || batch.AdvisoryIDs != nil {
		t.Errorf("batch defaults: statuses %v advisories %v", batch.TCBStatuses, batch.AdvisoryIDs)
	}
	if len(p.Digest) != 64 {
		t.Errorf("digest %q", p.Digest)
	}
}

// The same policy in JSON and YAML, and after an Encode round trip, is the same policy.
func TestFormatsAgree(t *testing.T) {
	fromYAML := mustParse(t, string(docExample(t)), "yaml")
	for _, format := range []string{"json", "yaml"} {
		var enc bytes.Buffer
		if err := fromYAML.Encode(&enc, format); err != nil {
			t.Fatal(err)
		}
		again := mustParse(t, enc.String(), format)
		sniffed := mustParse(t, enc.String(), "")
		var a, b, c bytes.Buffer
		_ = fromYAML.Encode(&a, "json")
		_ = again.Encode(&b, "json")
		_ = sniffed.Encode(&c, "json")
		if a.String() != b.String() || a.String() != c.String() {
			t.Errorf("%s round trip differs:\n%s\n%s\n%s", format, a.String(), b.String(), c.String())
		}
	}
}

// Hex values YAML would read as numbers survive Encode and Parse.
func TestEncodeQuotesNumericHex(t *testing.T) {
	digits := strings.Repeat("12", 32)
	p := mustParse(t, strings.Replace(sgxApp, hexE1, digits, 1)+"    isv_prod_id: 0\n", "yaml")
	for _, format := range []string{"yaml", "json"} {
		var out bytes.Buffer
		if err := p.Encode(&out, format); err != nil {
			t.Fatal(err)
		}
		again := mustParse(t, out.String(), format)
		if got := again.Apps[0].SGX.MrEnclave.String(); got != digits || *again.Apps[0].SGX.IsvProdID != 0 {
			t.Errorf("%s: mr_enclave %s\n%s", format, got, out.String())
		}
	}
}

func TestLoadByExtensionAndSniffing(t *testing.T) {
	dir := t.TempDir()
	var js, ym bytes.Buffer
	p := mustParse(t, string(docExample(t)), "yaml")
	_ = p.Encode(&js, "json")
	_ = p.Encode(&ym, "yaml")
	for name, data := range map[string][]byte{
		"p.json": js.Bytes(), "p.yaml": ym.Bytes(), "p.yml": ym.Bytes(), "p.YAML": ym.Bytes(),
		"json-sniffed.policy": js.Bytes(), "yaml-sniffed": ym.Bytes(),
		"bom.json": append([]byte("\xef\xbb\xbf"), js.Bytes()...),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Load(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got.Source != path || len(got.Apps) != 2 {
			t.Errorf("%s: source %q, %d apps", name, got.Source, len(got.Apps))
		}
	}
	// YAML in a .json file is refused, not guessed at.
	path := filepath.Join(dir, "wrong.json")
	_ = os.WriteFile(path, ym.Bytes(), 0o600)
	if _, err := Load(path); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), path) {
		t.Errorf("YAML in .json: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file loaded")
	}
	big := filepath.Join(dir, "big.json")
	_ = os.WriteFile(big, bytes.Repeat([]byte(" "), MaxFileSize+1), 0o600)
	if _, err := Load(big); !errors.Is(err, ErrSyntax) {
		t.Errorf("oversized file: %v", err)
	}
}

// sgxApp is a valid SGX app in YAML; tests splice one line in or out.
const sgxApp = `apps:
  - id: web
    tee: sgx
    mr_enclave: ` + hexE1 + `
    secrets:
      tls_key: kv/web/tls_key
`

func TestLoadErrors(t *testing.T) {
	e1, s1, t1 := hexE1, hexS1, hexT1
	tests := []struct {
		name   string
		format string
		doc    string
		reason error
		app    string // the app named by the *LoadError ("" = none)
		field  string
		detail string // a fragment of the message
	}{
		{"placeholder abc is not hex", "yaml", strings.Replace(sgxApp, e1, "abc", 1), ErrBadMeasurement, "web", "mr_enclave", `"abc" is not hex`},
		{"empty measurement is not a wildcard", "yaml", strings.Replace(sgxApp, e1, `""`, 1), ErrBadMeasurement, "web", "mr_enclave", "empty"},
		{"yaml null measurement", "yaml", strings.Replace(sgxApp, e1, "", 1), ErrBadMeasurement, "web", "mr_enclave", "empty"},
		{"json null measurement", "json", `{"apps":[{"id":"web","tee":"sgx","mr_enclave":null,"secrets":{"a":"b"}}]}`, ErrBadMeasurement, "web", "mr_enclave", "empty"},
		{"31 bytes", "yaml", strings.Replace(sgxApp, e1, e1[:62], 1), ErrBadMeasurement, "web", "mr_enclave", "31 bytes"},
		{"48 bytes for sgx", "yaml", strings.Replace(sgxApp, e1, t1, 1), ErrBadMeasurement, "web", "mr_enclave", "48 bytes"},
		{"32 bytes for tdx", "yaml", "apps:\n- {id: td, tee: tdx, mr_td: " + e1 + ", secrets: {a: b}}\n", ErrBadMeasurement, "td", "mr_td", "32 bytes"},
		{"all zeros", "yaml", strings.Replace(sgxApp, e1, hexZ[:64], 1), ErrBadMeasurement, "web", "mr_enclave", "all zeros"},
		{"non-hex rtmr", "yaml", "apps:\n- {id: td, tee: tdx, mr_td: " + t1 + ", rtmr2: xyz, secrets: {a: b}}\n", ErrBadMeasurement, "td", "rtmr2", "not hex"},
		{"no sgx selector", "yaml", "apps:\n- {id: web, tee: sgx, isv_prod_id: 1, secrets: {a: b}}\n", ErrNoSelector, "web", "mr_enclave", "would match any enclave"},
		{"no mr_td", "yaml", "apps:\n- {id: td, tee: tdx, rtmr0: " + t1 + ", secrets: {a: b}}\n", ErrNoSelector, "td", "mr_td", ""},
		{"mr_signer alone needs isv_prod_id", "yaml", "apps:\n- {id: s, tee: sgx, mr_signer: " + s1 + ", secrets: {a: b}}\n", ErrMissingField, "s", "isv_prod_id", "signer"},
		{"duplicate id", "yaml", sgxApp + "  - {id: web, tee: sgx, mr_enclave: " + hexE2 + ", secrets: {a: b}}\n", ErrDuplicateID, "web", "id", "app #1"},
		{"duplicate id in another case", "yaml", sgxApp + "  - {id: WEB, tee: sgx, mr_enclave: " + hexE2 + ", secrets: {a: b}}\n", ErrDuplicateID, "WEB", "id", ""},
		{"unknown app field", "yaml", strings.Replace(sgxApp, "mr_enclave", "mr_enclve", 1), ErrUnknownField, "web", "mr_enclve", ""},
		{"unknown top field", "yaml", "allow_debug: true\n" + sgxApp, ErrUnknownField, "", "allow_debug", ""},
		{"field in upper case", "json", `{"apps":[{"id":"web","tee":"sgx","MR_ENCLAVE":"` + e1 + `","secrets":{"a":"b"}}]}`, ErrUnknownField, "web", "", "MR_ENCLAVE"},
		{"field folding to a known one", "json", `{"apps":[{"id":"web","tee":"sgx","mr_enclave":"` + e1 + `","ſecrets":{"a":"b"}}]}`, ErrUnknownField, "web", "", "ſecrets"},
		{"json repeated key", "json", `{"apps":[{"id":"web","tee":"sgx","mr_enclave":"` + e1 + `","mr_enclave":"` + hexE2 + `","secrets":{"a":"b"}}]}`, ErrSyntax, "web", "", "appears twice"},
		{"yaml repeated key", "yaml", strings.Replace(sgxApp, "tee: sgx", "tee: sgx\n    tee: tdx", 1), ErrSyntax, "web", "", "appears twice"},
		{"json repeated secret", "json", `{"apps":[{"id":"web","tee":"sgx","mr_enclave":"` + e1 + `","secrets":{"a":"b","a":"c"}}]}`, ErrSyntax, "web", "secrets", "appears twice"},
		{"unknown tcb status", "yaml", sgxApp + "    tcb_statuses: [UpToDate, Patched]\n", ErrBadTCBStatus, "web", "tcb_statuses", `"Patched"`},
		{"revoked never", "yaml", sgxApp + "    tcb_statuses: [Revoked]\n", ErrBadTCBStatus, "web", "tcb_statuses", "Revoked"},
		{"empty tcb statuses", "yaml", sgxApp + "    tcb_statuses: []\n", ErrBadTCBStatus, "web", "tcb_statuses", "never match"},
		{"no secrets", "yaml", "apps:\n- {id: web, tee: sgx, mr_enclave: " + e1 + "}\n", ErrNoSecrets, "web", "secrets", ""},
		{"empty secrets", "yaml", "apps:\n- {id: web, tee: sgx, mr_enclave: " + e1 + ", secrets: {}}\n", ErrNoSecrets, "web", "secrets", ""},
		{"empty secret ref", "yaml", "apps:\n- {id: web, tee: sgx, mr_enclave: " + e1 + ", secrets: {tls_key: ''}}\n", ErrEmptySecretRef, "web", "secrets.tls_key", ""},
		{"null secret ref", "yaml", "apps:\n- {id: web, tee: sgx, mr_enclave: " + e1 + ", secrets: {tls_key: }}\n", ErrEmptySecretRef, "web", "secrets.tls_key", ""},
		{"secret name with a blank", "yaml", "apps:\n- {id: web, tee: sgx, mr_enclave: " + e1 + ", secrets: {'tls key': x}}\n", ErrBadValue, "web", "secrets", `"tls key"`},
		{"missing id", "yaml", "apps:\n- {tee: sgx, mr_enclave: " + e1 + ", secrets: {a: b}}\n", ErrMissingField, "", "id", ""},
		{"missing tee", "yaml", "apps:\n- {id: web, mr_enclave: " + e1 + ", secrets: {a: b}}\n", ErrMissingField, "web", "tee", ""},
		{"unknown tee", "yaml", strings.Replace(sgxApp, "tee: sgx", "tee: sev", 1), ErrBadValue, "web", "tee", `"sev"`},
		{"tdx selector on sgx app", "yaml", sgxApp + "    mr_td: " + t1 + "\n", ErrBadValue, "web", "mr_td", "TDX selector"},
		{"sgx selector on tdx app", "yaml", "apps:\n- {id: td, tee: tdx, mr_td: " + t1 + ", isv_prod_id: 1, secrets: {a: b}}\n", ErrBadValue, "td", "isv_prod_id", "SGX selector"},
		{"isv_prod_id out of range", "yaml", sgxApp + "    isv_prod_id: 70000\n", ErrBadValue, "web", "isv_prod_id", "0..65535"},
		{"isv_prod_id as a string", "json", `{"apps":[{"id":"web","tee":"sgx","mr_enclave":"` + e1 + `","isv_prod_id":"1","secrets":{"a":"b"}}]}`, ErrBadValue, "web", "isv_prod_id", "not a string"},
		{"allow_debug yes", "yaml", sgxApp + "    allow_debug: yes\n", ErrBadValue, "web", "allow_debug", "true or false"},
		{"empty advisory id", "yaml", sgxApp + "    advisory_ids: ['']\n", ErrBadValue, "web", "advisory_ids", ""},
		{"empty store token", "yaml", sgxApp + "    store_token: ''\n", ErrBadValue, "web", "store_token", "leave it out"},
		{"no apps", "yaml", "allow_simulated: false\n", ErrMissingField, "", "apps", ""},
		{"empty apps", "json", `{"apps":[]}`, ErrMissingField, "", "apps", "refuses everything"},
		{"apps not a list", "json", `{"apps":{"id":"web"}}`, ErrBadValue, "", "apps", ""},
		{"root is a list", "json", `[{"id":"web"}]`, ErrSyntax, "", "", "an object with apps, not a list"},
		{"root is a string", "yaml", `just words`, ErrSyntax, "", "", "not a string"},
		{"app is a string", "json", `{"apps":["web"]}`, ErrBadValue, "", "", "an app must be an object"},
		{"yaml alias", "yaml", "apps:\n- &a {id: web, tee: sgx, mr_enclave: " + e1 + ", secrets: {a: b}}\n- *a\n", ErrSyntax, "", "", "aliases"},
		{"two yaml documents", "yaml", sgxApp + "---\n" + sgxApp, ErrSyntax, "", "", "more than one"},
		{"json trailing data", "json", `{"apps":[]} {}`, ErrSyntax, "", "", "after the end"},
		{"json truncated", "json", `{"apps":[{"id":"web"`, ErrSyntax, "", "", "end of document"},
		{"empty file", "", "  \n", ErrSyntax, "", "", "empty"},
		{"unknown format", "toml", sgxApp, ErrUnknownFormat, "", "", "toml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), tc.format)
			wantReasons(t, err, tc.reason)
			if err == nil {
				return
			}
			t.Log(err)
			if tc.detail != "" && !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("message lacks %q:\n%v", tc.detail, err)
			}
			if tc.app == "" && tc.field == "" {
				return
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("not a *LoadError: %T %v", err, err)
			}
			if le.App != tc.app || le.Field != tc.field {
				t.Errorf("app %q field %q, want %q %q (%v)", le.App, le.Field, tc.app, tc.field, err)
			}
			if tc.app != "" && !strings.Contains(err.Error(), `app "`+tc.app+`"`) {
				t.Errorf("message does not name the app: %v", err)
			}
		})
	}
}

// Every problem is reported, not only the first.
func TestLoadReportsEveryProblem(t *testing.T) {
	doc := `apps:
  - {id: a, tee: sgx, mr_enclave: abc, secrets: {x: y}}
  - {id: b, tee: tdx, mr_td: ` + hexT1 + `, tcb_statuses: [Fine]}
  - {tee: sgx, mr_signer: ` + hexS1 + `, secrets: {x: y}}
`
	_, err := Parse([]byte(doc), "yaml")
	wantReasons(t, err, ErrBadMeasurement, ErrBadTCBStatus, ErrNoSecrets, ErrMissingField)
	for _, frag := range []string{`app "a": mr_enclave`, `app "b": tcb_statuses`, `app "b": secrets`, "app #3: id", "app #3: isv_prod_id"} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("missing %q in:\n%v", frag, err)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, p *Policy)
	}{
		{"status names in any case", sgxApp + "    tcb_statuses: [uptodate, SWHARDENINGNEEDED, UpToDate]\n", func(t *testing.T, p *Policy) {
			if got := p.Apps[0].TCBStatuses; !slices.Equal(got, []string{"UpToDate", "SWHardeningNeeded"}) {
				t.Errorf("statuses %v", got)
			}
		}},
		{"upper-case hex and 0x", strings.Replace(sgxApp, hexE1, "0x"+strings.ToUpper(hexE1), 1), func(t *testing.T, p *Policy) {
			if got := p.Apps[0].SGX.MrEnclave.String(); got != hexE1 {
				t.Errorf("mr_enclave %s", got)
			}
		}},
		{"hex of digits only that YAML reads as a number", strings.Replace(sgxApp, hexE1, strings.Repeat("12", 32), 1), func(t *testing.T, p *Policy) {
			if got := p.Apps[0].SGX.MrEnclave.String(); got != strings.Repeat("12", 32) {
				t.Errorf("mr_enclave %s", got)
			}
		}},
		{"numeric id", strings.Replace(sgxApp, "id: web", "id: 1", 1), func(t *testing.T, p *Policy) {
			if p.Apps[0].ID != "1" {
				t.Errorf("id %q", p.Apps[0].ID)
			}
		}},
		{"signer with product id", "apps:\n- {id: s, tee: sgx, mr_signer: " + hexS1 + ", isv_prod_id: 0, secrets: {a: b}}\n", func(t *testing.T, p *Policy) {
			s := p.Apps[0].SGX
			if s.MrEnclave != nil || s.IsvProdID == nil || *s.IsvProdID != 0 {
				t.Errorf("selector %+v", s)
			}
		}},
		{"mr_owner narrows rtmr1", "apps:\n- {id: td, tee: tdx, mr_td: " + hexT1 + ", rtmr1: " + hexR1 + ", rtmr2: " + hexK2 + ", mr_owner: " + hexO1 + ", secrets: {a: b}}\n", func(t *testing.T, p *Policy) {
			if p.Apps[0].TDX.MrOwner == nil {
				t.Error("mr_owner dropped")
			}
		}},
		{"allow_simulated and wildcard advisory", "allow_simulated: true\n" + sgxApp + "    advisory_ids: ['*']\n", func(t *testing.T, p *Policy) {
			if !p.AllowSimulated || !slices.Equal(p.Apps[0].AdvisoryIDs, []string{"*"}) {
				t.Errorf("%v %v", p.AllowSimulated, p.Apps[0].AdvisoryIDs)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, mustParse(t, tc.doc, "yaml")) })
	}
}
