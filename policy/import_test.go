package policy

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/asps-project/asps/claims"
)

// Every file of ../shared/testdata/compat is either imported or refused,
// each with its own reasons.
func TestImportCompatFiles(t *testing.T) {
	dir := compatDir(t)
	tests := map[string]struct {
		reasons []error  // all must be wrapped
		not     []error  // none may be
		detail  []string // fragments of the message
	}{
		"intel-asps-app1_policy.hcl": {reasons: []error{ErrNotPolicy}, detail: []string{"Vault ACL"}},
		// verify_* on, but the measurements are "": and it carries no secrets.
		"intel-asps-dynamic_config.json": {reasons: []error{ErrBadMeasurement, ErrNoSecrets},
			detail: []string{"sgx_mrs[0].mr_enclave", "sgx_mrs[0].mr_signer", "empty"}},
		"intel-asps-policy_no_kms.json": {reasons: []error{ErrBadMeasurement}, not: []error{ErrUnsupportedKMS, ErrNoSecrets},
			detail: []string{`app "1": mr_enclave`, `"abc" is not hex`, `app "2": mr_enclave`, `"def" is not hex`, "matches any enclave"}},
		"intel-asps-policy_template.json": {reasons: []error{ErrBadMeasurement, ErrUnsupportedKMS},
			detail: []string{"variant 1: ", "variant 2: ", `variant 3: policy: kms: unsupported kms: "ehsm"`, "empty"}},
		"intel-asps-policy_vault.json": {reasons: []error{ErrBadMeasurement}, not: []error{ErrUnsupportedKMS, ErrNoSecrets},
			detail: []string{`"abc" is not hex`, `"def" is not hex`}},
		// Its ra_config names the key server the enclave trusts, not the enclave.
		"occlum-init_grpc_ratls.json": {reasons: []error{ErrNotPolicy}, detail: []string{"key server", `"localhost:50051"`, `"demo_key"`}},
		"occlum-ra_config_template.json": {reasons: []error{ErrBadMeasurement, ErrNoSecrets},
			detail: []string{"sgx_mrs[0].mr_enclave"}},
		"occlum-secret_config.json": {reasons: []error{ErrNotPolicy}, detail: []string{"secret file"}},
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "README.md" {
			continue
		}
		if _, ok := tests[e.Name()]; !ok {
			t.Errorf("%s: new compat file: add its expected outcome to this table", e.Name())
		}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			imp, err := Import(readCompat(t, name))
			if err == nil {
				t.Fatalf("imported %d apps; want refusal", len(imp.Policy.Apps))
			}
			t.Log(err)
			wantReasons(t, err, tc.reasons...)
			for _, r := range tc.not {
				if errors.Is(err, r) {
					t.Errorf("unexpected reason %q", r)
				}
			}
			for _, frag := range tc.detail {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("message lacks %q", frag)
				}
			}
		})
	}
}

// patch replaces placeholders in a compat file.
func patch(t *testing.T, name string, pairs ...string) []byte {
	t.Helper()
	s := string(readCompat(t, name))
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("%s has no %q", name, pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return []byte(s)
}

const vaultToken = "hvs.app1-SECRET-token"

func TestImportIntelVault(t *testing.T) {
	data := patch(t, "intel-asps-policy_vault.json",
		`"mr_enclave" : "abc"`, `"mr_enclave" : "`+strings.ToUpper(hexE1)+`"`,
		`"app_token" : ""`, `"app_token" : "`+vaultToken+`"`,
		`"root_key" : ""`, `"root_key" : "hvs.ROOT-token"`)
	imp, err := Import(data)
	if err != nil {
		t.Fatal(err)
	}
	if imp.Format != "intel-asps" || imp.VaultAddr != "http://127.0.0.1:8200" || len(imp.Inline) != 0 {
		t.Errorf("format %q addr %q inline %d", imp.Format, imp.VaultAddr, len(imp.Inline))
	}
	if len(imp.Policy.Apps) != 1 {
		t.Fatalf("%d apps", len(imp.Policy.Apps))
	}
	app := imp.Policy.Apps[0]
	if app.ID != "1" || app.TEE != claims.SGX || app.SGX.MrEnclave.String() != hexE1 || app.StoreToken.Reveal() != vaultToken ||
		app.AllowDebug || !slices.Equal(app.TCBStatuses, []string{"UpToDate"}) {
		t.Errorf("app %+v %+v", app, app.SGX)
	}
	refs, err := app.Authorize([]string{"master_key", "secret1", "secret2"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"occlum/1/image_key", "occlum/1/rsa_pubkey", "occlum/1/rsa_prikey"} {
		if refs[i].Ref != want || refs[i].Token.Reveal() != vaultToken {
			t.Errorf("ref %d = %q", i, refs[i].Ref)
		}
	}
	if a, err := imp.Policy.Match(sgxClaims(t, hexE1, hexS1, 0, 0)); err != nil || a != app {
		t.Errorf("Match: %v", err)
	}
	warnings := strings.Join(imp.Warnings, "\n")
	t.Log(warnings)
	for _, frag := range []string{`left out: policy: app "2": mr_enclave: bad measurement: "def" is not hex`, "root_key is set", "UpToDate only"} {
		if !strings.Contains(warnings, frag) {
			t.Errorf("warnings lack %q", frag)
		}
	}
	var described bytes.Buffer
	if err := imp.Policy.Describe(&described); err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{vaultToken, "hvs.ROOT-token"} {
		if strings.Contains(warnings, leak) || strings.Contains(described.String(), leak) {
			t.Errorf("%q printed", leak)
		}
	}
}

func TestImportIntelNoKMS(t *testing.T) {
	imp, err := ImportIntelASPS(patch(t, "intel-asps-policy_no_kms.json", `"abc"`, `"`+hexE1+`"`), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := imp.Policy.App("1")
	if app == nil || len(imp.Policy.Apps) != 1 || !slices.Equal(app.SecretNames(), []string{"master_key"}) || app.StoreToken.IsSet() {
		t.Fatalf("apps %+v", imp.Policy.Apps)
	}
	refs, _ := app.Authorize([]string{"master_key"})
	if refs[0].Ref != "inline:1/master_key" || string(imp.Inline[refs[0].Ref]) != "123" {
		t.Errorf("ref %q value %q", refs[0].Ref, imp.Inline[refs[0].Ref])
	}
	if len(imp.Inline) != 1 {
		t.Errorf("inline values of a refused app kept: %d values", len(imp.Inline))
	}
	warnings := strings.Join(imp.Warnings, "\n")
	for _, frag := range []string{`secret "secret1" has an empty value`, `secret "secret2" has an empty value`, `app "2"`} {
		if !strings.Contains(warnings, frag) {
			t.Errorf("warnings lack %q:\n%s", frag, warnings)
		}
	}
	if strings.Contains(warnings, "123") || strings.Contains(warnings, "456") {
		t.Error("a warning shows a secret value")
	}
}

func TestImportIntelTemplate(t *testing.T) {
	// Filling in the first variant makes the template importable; ehsm stays refused.
	data := patch(t, "intel-asps-policy_template.json",
		`"mr_enclave" : ""`, `"mr_enclave" : "`+hexE1+`"`,
		`"master_key" : ""`, `"master_key" : "k1"`)
	imp, err := Import(data)
	if err != nil {
		t.Fatal(err)
	}
	if imp.Format != "intel-asps-template" || len(imp.Policy.Apps) != 1 || string(imp.Inline["inline:1/master_key"]) != "k1" {
		t.Fatalf("format %q apps %d inline %v", imp.Format, len(imp.Policy.Apps), imp.Inline)
	}
	if !strings.Contains(strings.Join(imp.Warnings, "\n"), `variant 3: policy: kms: unsupported kms: "ehsm"`) {
		t.Errorf("warnings: %q", imp.Warnings)
	}
	// Two usable variants with the same app id collide.
	twice := `[{"kms":"none","app_list":[{"id":1,"mr_enclave":"` + hexE1 + `","secrets":{"a":"x"}}]},
	           {"kms":"vault","app_list":[{"id":1,"mr_enclave":"` + hexE2 + `","secrets":{"a":"p/a"}}]}]`
	_, err = Import([]byte(twice))
	wantReasons(t, err, ErrDuplicateID)
}

func TestImportIntelWithDynamicConfig(t *testing.T) {
	policy := patch(t, "intel-asps-policy_vault.json", `"abc"`, `"`+hexE1+`"`)
	dyn := patch(t, "intel-asps-dynamic_config.json",
		`"mr_enclave" : ""`, `"mr_enclave" : "`+hexE1+`"`,
		`"mr_signer" : ""`, `"mr_signer" : "`+hexS1+`"`,
		`"isv_prod_id" : "0"`, `"isv_prod_id" : "4"`,
		`"isv_svn" : "0"`, `"isv_svn" : "3"`)
	imp, err := ImportIntelASPS(policy, dyn)
	if err != nil {
		t.Fatal(err)
	}
	app := imp.Policy.App("1")
	if app == nil || len(imp.Policy.Apps) != 1 {
		t.Fatalf("apps %+v", imp.Policy.Apps)
	}
	s := app.SGX
	if s.MrEnclave.String() != hexE1 || s.MrSigner.String() != hexS1 || s.IsvProdID == nil || *s.IsvProdID != 4 || s.MinIsvSvn != 3 || app.AllowDebug {
		t.Errorf("selector %+v", s)
	}
	warnings := strings.Join(imp.Warnings, "\n")
	for _, frag := range []string{"min_isv_svn", "debug attribute was not checked"} {
		if !strings.Contains(warnings, frag) {
			t.Errorf("warnings lack %q:\n%s", frag, warnings)
		}
	}
	// The published dynamic config has only placeholders: nothing to narrow with.
	_, err = ImportIntelASPS(policy, readCompat(t, "intel-asps-dynamic_config.json"))
	wantReasons(t, err, ErrBadMeasurement)
	// An entry for another enclave leaves the app unreachable.
	other := patch(t, "intel-asps-dynamic_config.json", `"mr_enclave" : ""`, `"mr_enclave" : "`+hexE2+`"`, `"mr_signer" : ""`, `"mr_signer" : "`+hexS1+`"`)
	_, err = ImportIntelASPS(policy, other)
	wantReasons(t, err, ErrNoSelector)
}

func TestImportOcclum(t *testing.T) {
	ra := patch(t, "occlum-ra_config_template.json",
		`"mr_enclave" : ""`, `"mr_enclave" : "`+hexE1+`"`,
		`"mr_signer" : ""`, `"mr_signer" : "`+hexS1+`"`,
		`"isv_prod_id" : 0`, `"isv_prod_id" : 5`)
	secrets := readCompat(t, "occlum-secret_config.json")
	imp, err := ImportOcclum(ra, secrets)
	if err != nil {
		t.Fatal(err)
	}
	app := imp.Policy.App("occlum-1")
	if imp.Format != "occlum" || app == nil || len(imp.Policy.Apps) != 1 {
		t.Fatalf("format %q apps %+v", imp.Format, imp.Policy.Apps)
	}
	if s := app.SGX; s.MrEnclave.String() != hexE1 || s.MrSigner.String() != hexS1 || *s.IsvProdID != 5 || app.AllowDebug {
		t.Errorf("selector %+v debug %v", s, app.AllowDebug)
	}
	refs, err := app.Authorize([]string{"cert", "key"})
	if err != nil {
		t.Fatal(err)
	}
	if refs[0].Ref != "inline:cert" || string(imp.Inline["inline:cert"]) != "dGVzdCBzYW1wbGUgY2VydGlmaWNhdGVzCg==" ||
		string(imp.Inline["inline:key"]) != "dGVzdCBzYW1wbGUga2V5Cg==" {
		t.Errorf("refs %+v inline %q", refs, imp.Inline)
	}
	if !strings.Contains(strings.Join(imp.Warnings, "\n"), "every secret") {
		t.Errorf("warnings: %q", imp.Warnings)
	}
	c := sgxClaims(t, hexE1, hexS1, 5, 0)
	if a, err := imp.Policy.Match(c); err != nil || a != app {
		t.Errorf("Match: %v", err)
	}
	c.Debug = true
	if _, err := imp.Policy.Match(c); !errors.Is(err, ErrDebugNotAllowed) {
		t.Errorf("debug: %v", err)
	}

	// The published files: placeholders refused even with the secrets given.
	_, err = ImportOcclum(readCompat(t, "occlum-ra_config_template.json"), secrets)
	wantReasons(t, err, ErrBadMeasurement)
	if errors.Is(err, ErrNoSecrets) {
		t.Errorf("secrets were given: %v", err)
	}
	_, err = ImportOcclum(readCompat(t, "occlum-init_grpc_ratls.json"), secrets)
	wantReasons(t, err, ErrNotPolicy)
}

func TestImportOcclumSwitches(t *testing.T) {
	secrets := []byte(`{"k": "dmFsdWU="}`)
	entry := `{"mr_enclave": "` + hexE1 + `", "mr_signer": "` + hexS1 + `", "isv_prod_id": 2, "isv_svn": 1, "config_svn": 0, "debuggable": %s}`
	config := func(switches, debuggable string) []byte {
		return []byte(`{` + switches + `, "sgx_mrs": [` + strings.Replace(entry, "%s", debuggable, 1) + `]}`)
	}
	tests := []struct {
		name       string
		switches   string
		debuggable string
		reason     error  // nil: imported
		detail     string // in the error or the warnings
		check      func(t *testing.T, a *App)
	}{
		{"every switch off", `"verify_mr_enclave": "off", "verify_mr_signer": "off", "verify_isv_prod_id": "on"`, "false",
			ErrNoSelector, "would match any enclave", nil},
		{"switches absent count as off", `"verify_isv_prod_id": "on"`, "false", ErrNoSelector, "would match any enclave", nil},
		{"signer without product", `"verify_mr_enclave": "off", "verify_mr_signer": "on", "verify_isv_prod_id": "off"`, "false",
			ErrMissingField, "every enclave of this signer", nil},
		{"bad switch value", `"verify_mr_enclave": "yes", "verify_mr_signer": "on"`, "false", ErrBadValue, `"yes"`, nil},
		{"signer and product", `"verify_mr_enclave": "off", "verify_mr_signer": "on", "verify_isv_prod_id": "on", "verify_enclave_debuggable": "on"`, "false",
			nil, "mr_enclave ignored", func(t *testing.T, a *App) {
				if a.SGX.MrEnclave != nil || a.SGX.MrSigner.String() != hexS1 || *a.SGX.IsvProdID != 2 || a.SGX.MinIsvSvn != 0 {
					t.Errorf("selector %+v", a.SGX)
				}
			}},
		{"debuggable true", `"verify_mr_enclave": "on", "verify_mr_signer": "off", "verify_enclave_debuggable": "on", "verify_isv_svn": "on", "verify_config_svn": "on"`, "true",
			nil, "debuggable: true → allow_debug", func(t *testing.T, a *App) {
				if !a.AllowDebug || a.SGX.MinIsvSvn != 1 || a.SGX.MrSigner != nil {
					t.Errorf("app %+v %+v", a, a.SGX)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			imp, err := ImportOcclum(config(tc.switches, tc.debuggable), secrets)
			if tc.reason != nil {
				wantReasons(t, err, tc.reason)
				if err != nil && !strings.Contains(err.Error(), tc.detail) {
					t.Errorf("message lacks %q: %v", tc.detail, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w := strings.Join(imp.Warnings, "\n"); !strings.Contains(w, tc.detail) {
				t.Errorf("warnings lack %q:\n%s", tc.detail, w)
			}
			tc.check(t, imp.Policy.Apps[0])
		})
	}
}

func TestImportOther(t *testing.T) {
	// A file in our own format goes through Parse.
	imp, err := Import(docExample(t))
	if err != nil || imp.Format != "asps" || len(imp.Policy.Apps) != 2 {
		t.Fatalf("own format: %v", err)
	}
	_, err = Import([]byte(strings.Replace(sgxApp, hexE1, "abc", 1)))
	wantReasons(t, err, ErrBadMeasurement)

	for name, doc := range map[string]string{
		"scalar":        "42",
		"unknown keys":  `{"version": 2, "rules": []}`,
		"not yaml":      "key: [unclosed",
		"empty list":    "[]",
		"empty object":  "{}",
		"list of lists": "[[1]]",
	} {
		if _, err := Import([]byte(doc)); !errors.Is(err, ErrUnknownFormat) && !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err = Import([]byte(`{"kms": "ehsm", "app_list": [{"id": 1, "mr_enclave": "` + hexE1 + `", "app_id": "", "api_key": "", "secrets": {"a": "b"}}]}`))
	wantReasons(t, err, ErrUnsupportedKMS)
	_, err = Import([]byte(`{"kms": "vault", "app_list": [{"id": 1, "mr_enclave": "` + hexE1 + `", "mr_signer": "", "secrets": {"a": "b"}}]}`))
	wantReasons(t, err, ErrUnknownField)
	_, err = Import([]byte(`{"kms": "vault", "app_list": [{"id": 1, "secrets": {"a": "b"}}]}`))
	wantReasons(t, err, ErrNoSelector)
}
