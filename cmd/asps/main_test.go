package main

import (
	"encoding/hex"
	"io"
	"net/http/httptest"
	"time"

	"bytes"
	"context"
	"encoding/json"
	"github.com/asps-project/asps/dcap/collateral"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/internal/testdata"
)

// run calls the command line in-process.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestQuoteVerifyCorpus(t *testing.T) {
	dirs, _ := filepath.Glob(testdata.Path(t, "dcap", "*", "expected.json"))
	if len(dirs) == 0 {
		t.Fatal("no corpus cases")
	}
	for _, e := range dirs {
		d := filepath.Dir(e)
		t.Run(filepath.Base(d), func(t *testing.T) {
			var exp map[string]any
			b, _ := os.ReadFile(e)
			json.Unmarshal(b, &exp)
			code, out, stderr := run(t, "quote", "verify", testdata.DCAPQuoteFile(t, filepath.Base(d)), "--collateral", filepath.Join(d, "collateral.json"), "--at", exp["verify_at"].(string), "--json")
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			accepted := exp["accepted"].(bool)
			if got["accepted"] != accepted || (code == 0) != accepted {
				t.Fatalf("accepted %v exit %d, want %v\n%s", got["accepted"], code, accepted, stderr)
			}
			if !accepted && (got["reason"] == nil || !strings.Contains(stderr, "rejected")) {
				t.Fatalf("rejection without a reason: %v %s", got, stderr)
			}
			// Every identity field of expected.json, under the same name.
			for _, k := range []string{"tee", "quote_version", "fmspc", "mr_enclave", "mr_signer", "isv_prod_id", "isv_svn", "debug", "report_data", "mr_td", "rtmr0", "td_attributes", "status"} {
				want, ok := exp[k]
				if !ok {
					continue
				}
				if g, _ := json.Marshal(got[k]); string(g) != mustJSON(want) {
					t.Errorf("%s = %s, want %s", k, g, mustJSON(want))
				}
			}
			if accepted {
				g, _ := json.Marshal(got["advisory_ids"])
				if string(g) != mustJSON(exp["advisory_ids"]) {
					t.Errorf("advisory_ids %s, want %s", g, mustJSON(exp["advisory_ids"]))
				}
			}
		})
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestQuoteVerifyOutsideWindowAndInspect(t *testing.T) {
	d := testdata.Path(t, "dcap", "sgx-v3-config-sw-hardening")
	code, _, stderr := run(t, "quote", "verify", filepath.Join(d, "quote.bin"), "--collateral", filepath.Join(d, "collateral.json"), "--at", "2030-01-01T00:00:00Z")
	if code != 1 || !strings.Contains(stderr, "expired") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, out, _ := run(t, "quote", "inspect", filepath.Join(d, "quote.bin"), "--json")
	if code != 0 || !strings.Contains(out, `"mr_enclave": "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"`) {
		t.Fatalf("inspect exit %d: %s", code, out)
	}
	// Hex-encoded quotes read the same.
	raw, _ := os.ReadFile(filepath.Join(d, "quote.bin"))
	hexPath := filepath.Join(t.TempDir(), "q.hex")
	os.WriteFile(hexPath, []byte(strings.ToUpper(hex.EncodeToString(raw))+"\n"), 0o600)
	if code, out, _ := run(t, "quote", "inspect", hexPath, "--json"); code != 0 || !strings.Contains(out, "33d8736d") {
		t.Fatalf("hex quote: %d %s", code, out)
	}
	if code, _, _ := run(t, "quote", "verify"); code != 2 {
		t.Fatalf("usage error exit %d, want 2", code)
	}
}

// TestSimQuoteVerify: a simulated quote verifies under the simulator root
// and is refused as untrusted under Intel's.
func TestSimQuoteVerify(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := run(t, "sim", "quote", "--tee", "tdx", "--quote-version", "5", "--tcb-status", "SWHardeningNeeded", "--out", dir); code != 0 {
		t.Fatalf("sim quote: %s", stderr)
	}
	code, out, stderr := run(t, "quote", "verify", filepath.Join(dir, "quote.bin"), "--collateral", filepath.Join(dir, "collateral.json"), "--trust-root", filepath.Join(dir, "root.pem"), "--json")
	if code != 0 || !strings.Contains(out, `"status": "SWHardeningNeeded"`) || !strings.Contains(out, `"simulated": true`) {
		t.Fatalf("exit %d %s %s", code, out, stderr)
	}
	code, _, stderr = run(t, "quote", "verify", filepath.Join(dir, "quote.bin"), "--collateral", filepath.Join(dir, "collateral.json"))
	if code != 1 || !strings.Contains(stderr, "untrusted root") {
		t.Fatalf("under Intel's root: exit %d %s", code, stderr)
	}
}

func TestDemo(t *testing.T) {
	code, out, stderr := run(t, "demo")
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if last != secretLine(devmode.DemoSecrets()["demo-key"]) {
		t.Fatalf("demo ends with %q", last)
	}
	if strings.Count(out, "refused:") != 3 || !strings.Contains(out, "SIMULATOR") {
		t.Fatalf("demo output:\n%s", out)
	}
}

// TestFetchAndRun: asps fetch and asps run (as a real process, since it
// execs) against a dev server.
func TestFetchAndRun(t *testing.T) {
	dir := t.TempDir()
	env, err := devmode.Start(context.Background(), devmode.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()

	code, out, stderr := run(t, "fetch", "--dev-dir", dir, "--format", "hex", "demo-key")
	if code != 0 || strings.TrimSpace(out) != hex.EncodeToString(devmode.DemoSecrets()["demo-key"]) {
		t.Fatalf("fetch: %d %q %s", code, out, stderr)
	}
	code, out, _ = run(t, "fetch", "--dev-dir", dir, "--format", "intel", "demo-key")
	if code != 0 || !strings.HasPrefix(out, "Secret received: 42-cd-4b-") {
		t.Fatalf("intel format: %q", out)
	}
	outDir := filepath.Join(t.TempDir(), "secrets")
	if code, _, stderr := run(t, "fetch", "--dev-dir", dir, "--out", outDir, "db-password"); code != 0 {
		t.Fatal(stderr)
	}
	st, err := os.Stat(filepath.Join(outDir, "db-password"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", err, st)
	}
	code, _, stderr = run(t, "fetch", "--dev-dir", dir, "other-app")
	if code == 0 || !strings.Contains(stderr, "PermissionDenied") {
		t.Fatalf("refused fetch: %d %s", code, stderr)
	}

	bin := buildBinary(t)
	keyFile := filepath.Join(t.TempDir(), "k", "demo.key")
	cmd := exec.Command(bin, "run", "--dev-dir", dir, "--env", "db-password=DB_PASSWORD", "--file", "demo-key="+keyFile,
		"--", "sh", "-c", `printf '%s|' "$DB_PASSWORD"; stat -c %a "$0"; od -An -tx1 -N3 "$0" | tr -d ' \n'`, keyFile)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("asps run: %v\n%s", err, got)
	}
	if string(got) != "correct horse battery staple|600\n42cd4b" {
		t.Fatalf("the program saw %q", got)
	}
}

// TestPolicyCheckCompat: every compat file loads or is refused with a
// reason; none is accepted with its placeholder measurements.
func TestPolicyCheckCompat(t *testing.T) {
	files, _ := filepath.Glob(testdata.Path(t, "compat", "*"))
	for _, f := range files {
		if filepath.Ext(f) == ".md" {
			continue
		}
		code, _, stderr := run(t, "policy", "check", f)
		if code == 0 {
			t.Errorf("%s: accepted, but every published example carries placeholders", filepath.Base(f))
			continue
		}
		if !strings.Contains(stderr, "bad measurement") && !strings.Contains(stderr, "not a policy") && !strings.Contains(stderr, "no secrets") {
			t.Errorf("%s: refused without a reason a user can act on: %s", filepath.Base(f), stderr)
		}
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "p.yaml")
	os.WriteFile(good, devmode.DemoPolicy(), 0o600)
	if code, out, stderr := run(t, "policy", "check", good); code != 0 || !strings.Contains(out, "demo-enclave") || !strings.Contains(out, "demo-key") {
		t.Fatalf("demo policy: %d %s %s", code, out, stderr)
	}
}

// TestQuoteVerifyFromPCCS: each corpus case's collateral imported into its
// own bundle, served by the PCCS-compatible mirror on loopback, and the
// quote verified with collateral fetched from it (and from the bundle
// directly).
func TestQuoteVerifyFromPCCS(t *testing.T) {
	dirs, _ := filepath.Glob(testdata.Path(t, "dcap", "*", "expected.json"))
	for _, e := range dirs {
		d := filepath.Dir(e)
		t.Run(filepath.Base(d), func(t *testing.T) {
			var exp struct {
				VerifyAt string `json:"verify_at"`
				Accepted bool   `json:"accepted"`
				Status   string `json:"status"`
			}
			b, _ := os.ReadFile(e)
			json.Unmarshal(b, &exp)
			bundle := t.TempDir()
			if code, _, stderr := run(t, "collateral", "import", filepath.Join(d, "collateral.json"), "--out", bundle); code != 0 {
				t.Fatalf("import: %s", stderr)
			}
			b2, err := collateral.OpenBundle(bundle, collateral.Options{Now: func() time.Time { t0, _ := time.Parse(time.RFC3339, exp.VerifyAt); return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(collateral.NewHandler(b2))
			defer srv.Close()
			for _, src := range [][]string{{"--pccs", srv.URL}, {"--collateral-dir", bundle}} {
				args := append([]string{"quote", "verify", filepath.Join(d, "quote.bin"), "--at", exp.VerifyAt, "--json"}, src...)
				code, out, stderr := run(t, args...)
				if (code == 0) != exp.Accepted {
					t.Fatalf("%v: exit %d\n%s\n%s", src, code, out, stderr)
				}
				if exp.Accepted && !strings.Contains(out, `"status": "`+exp.Status+`"`) {
					t.Fatalf("%v: %s", src, out)
				}
			}
		})
	}
}

// TestWriteSecretFileReplacesNotFollows: a symlink or an open file at the
// target is replaced, never written through.
func TestWriteSecretFileReplacesNotFollows(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := writeSecretFile(link, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatal("the secret was written through a symlink")
	}
	target := filepath.Join(dir, "open")
	os.WriteFile(target, []byte("old"), 0o644)
	spy, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	if err := writeSecretFile(target, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(spy); string(b) != "old" {
		t.Fatalf("a descriptor opened before saw %q", b)
	}
	st, _ := os.Stat(target)
	if b, _ := os.ReadFile(target); string(b) != "secret" || st.Mode().Perm() != 0o600 {
		t.Fatalf("target %q mode %v", b, st.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".asps-secret-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestRatlsInspectCorpus: `asps ratls inspect --json` on the three real
// certificates reports the key, the SPKI hash and, per evidence extension,
// whether it binds the key, as their expected.json say.
func TestRatlsInspectCorpus(t *testing.T) {
	for _, name := range []string{"gramine-cert", "intel-sgxsdk-cert", "rats-tls-cert"} {
		t.Run(name, func(t *testing.T) {
			var exp struct {
				Key      string `json:"key"`
				SPKI     string `json:"spki_sha256"`
				Evidence []struct {
					OID   string `json:"oid"`
					Binds bool   `json:"report_data_binds"`
				} `json:"evidence"`
			}
			if err := json.Unmarshal(testdata.Read(t, "ratls", name+".expected.json"), &exp); err != nil {
				t.Fatal(err)
			}
			_, out, _ := run(t, "ratls", "inspect", testdata.Path(t, "ratls", name+".pem"), "--json")
			var got struct {
				Key      string `json:"key"`
				SPKI     string `json:"spki_sha256"`
				Evidence []struct {
					OID   string `json:"oid"`
					Binds *bool  `json:"binds_key"`
				} `json:"evidence"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got.Key != exp.Key || got.SPKI != exp.SPKI || len(got.Evidence) != len(exp.Evidence) {
				t.Fatalf("got %+v, want %+v", got, exp)
			}
			for _, e := range exp.Evidence {
				found := false
				for _, g := range got.Evidence {
					if g.OID == e.OID {
						found = true
						if g.Binds == nil || *g.Binds != e.Binds {
							t.Errorf("%s binds_key %v, want %v", e.OID, g.Binds, e.Binds)
						}
					}
				}
				if !found {
					t.Errorf("evidence %s not reported", e.OID)
				}
			}
		})
	}
}
