package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asps-project/asps/devmode"
	flag "github.com/spf13/pflag"
)

// TestHelpHasSynopsisAndExamples: every command's help shows its usage
// line and examples (the hand-rolled -h was a bare flag dump).
func TestHelpHasSynopsisAndExamples(t *testing.T) {
	for name := range commands {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			args := append([]string{"help"}, strings.Fields(name)...)
			code, out, stderr := run(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			h, ok := helps[name]
			if !ok || h.example == "" {
				t.Fatalf("no synopsis/examples for %q", name)
			}
			usage := "Usage:\n  " + strings.TrimSpace("asps "+name+" "+h.args)
			if !strings.Contains(out, usage) || !strings.Contains(out, "Examples:") || !strings.Contains(out, "Flags:") {
				t.Fatalf("help of %s lacks synopsis or examples:\n%s", name, out)
			}
			// -h and --help print the same.
			code, out2, _ := run(t, append(strings.Fields(name), "--help")...)
			if code != 0 || out2 != out {
				t.Fatalf("%s --help differs from asps help %s (exit %d):\n%s", name, name, code, out2)
			}
		})
	}
}

// TestGroupsListSubcommands: "asps policy" listed nothing ("unknown
// command"); a group lists its subcommands, and an unknown one is a usage
// error naming them.
func TestGroupsListSubcommands(t *testing.T) {
	for g := range groups {
		code, out, stderr := run(t, g)
		if code != 0 {
			t.Fatalf("asps %s: exit %d %s", g, code, stderr)
		}
		for name := range commands {
			if sub, ok := strings.CutPrefix(name, g+" "); ok && !strings.Contains(out, "  "+sub+" ") {
				t.Errorf("asps %s does not list %s:\n%s", g, sub, out)
			}
		}
		code, _, stderr = run(t, g, "nope")
		if code != exitUsage || !strings.Contains(stderr, `unknown command "nope"`) {
			t.Errorf("asps %s nope: exit %d %s", g, code, stderr)
		}
	}
}

// TestExitCodes: one mapping: 0 success, 1 refused or failed, 2 usage. A
// bad flag was 1 before, a missing argument 2.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	env, err := devmode.Start(context.Background(), devmode.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"fetch", "--dev-dir", dir, "--format", "hex", "demo-key"}, exitOK},
		{[]string{"fetch", "--dev-dir", dir, "--format", "hex", "other-app"}, exitFailed},
		{[]string{"fetch", "--no-such-flag", "demo-key"}, exitUsage},
		{[]string{"fetch"}, exitUsage},
		{[]string{"quote", "verify", "--bogus"}, exitUsage},
		{[]string{"quote", "verify"}, exitUsage},
		{[]string{"no-such-command"}, exitUsage},
		{[]string{"fetch", "--dev-dir", dir, "--format", "yaml", "demo-key"}, exitUsage},
		{[]string{"whoami", "--dev-dir", dir, "--format", "xml"}, exitUsage},
		{[]string{"help"}, exitOK},
		{[]string{"--help"}, exitOK},
	} {
		if code, _, stderr := run(t, tc.args...); code != tc.want {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.want, stderr)
		}
	}
}

// TestDoubleDashEndsFlags: "asps fetch -- a --out x" asks for the secrets
// "a", "--out" and "x"; the hand-rolled parser took --out as a flag after
// the first name.
func TestDoubleDashEndsFlags(t *testing.T) {
	fs := newFlags("fetch", os.Stderr)
	out := fs.String("out", "", "")
	pos, err := parseInterspersed(fs, []string{"--", "a", "--out", "x"})
	if err != nil || *out != "" || strings.Join(pos, " ") != "a --out x" {
		t.Fatalf("positionals %q, --out %q, err %v", pos, *out, err)
	}
	// Flags after positionals still count before "--".
	fs = newFlags("fetch", os.Stderr)
	out = fs.String("out", "", "")
	pos, err = parseInterspersed(fs, []string{"a", "--out", "d", "--", "--out"})
	if err != nil || *out != "d" || strings.Join(pos, " ") != "a --out" {
		t.Fatalf("positionals %q, --out %q, err %v", pos, *out, err)
	}
	// run: everything from the program on is the program's.
	fs = newFlags("run", os.Stderr)
	env := fs.String("env", "", "")
	pos, err = parseLeading(fs, []string{"--env", "a=B", "prog", "--env", "x"})
	if err != nil || *env != "a=B" || strings.Join(pos, " ") != "prog --env x" {
		t.Fatalf("run: positionals %q, --env %q, err %v", pos, *env, err)
	}
}

// TestOldFlagSpellingsStillWork: the vocabulary is one (--pccs-api-key,
// --dev-dir, --attester for the evidence source, --tee for sgx/tdx); the
// old spellings are hidden, deprecated aliases that set the same value, so
// existing scripts keep working. So does Go's single-dash "-server".
func TestOldFlagSpellingsStillWork(t *testing.T) {
	for _, tc := range []struct {
		cmd, old, canonical, value string
	}{
		{"collateral fetch", "api-key", "pccs-api-key", "k"},
		{"dev", "dir", "dev-dir", "/tmp/d"},
		{"server", "tee", "attester", "gramine"},
		{"fetch", "sim-tee", "tee", "tdx"},
		{"whoami", "sim-tee", "tee", "tdx"},
		{"run", "sim-tee", "tee", "tdx"},
		{"bench provision", "sim-tee", "tee", "tdx"},
	} {
		t.Run(tc.cmd+"_"+tc.old, func(t *testing.T) {
			fs := collectFlags(commands[tc.cmd])
			old := fs.Lookup(tc.old)
			if old == nil || !old.Hidden || old.Deprecated == "" {
				t.Fatalf("--%s: %+v, want a hidden deprecated alias", tc.old, old)
			}
			fs.SetOutput(new(strings.Builder))
			if _, err := parseInterspersed(fs, []string{"--" + tc.old, tc.value}); err != nil {
				t.Fatal(err)
			}
			if got := fs.Lookup(tc.canonical).Value.String(); got != tc.value {
				t.Fatalf("--%s %s set --%s to %q", tc.old, tc.value, tc.canonical, got)
			}
		})
	}
	// The client's --tee once named the evidence source: those values
	// still set --attester.
	var cf clientFlags
	fs := newFlags("fetch", os.Stderr)
	cf.register(fs)
	if _, err := parseInterspersed(fs, []string{"--tee", "gramine"}); err != nil || cf.tee != "gramine" || cf.simTEE != "sgx" {
		t.Fatalf("--tee gramine: attester %q tee %q err %v", cf.tee, cf.simTEE, err)
	}
	if _, err := parseInterspersed(fs, []string{"--tee", "sev"}); err == nil {
		t.Fatal("--tee sev accepted")
	}
	// Single dash, Go style.
	fs = newFlags("fetch", os.Stderr)
	srv := fs.String("server", "", "")
	if _, err := parseInterspersed(fs, []string{"-server", "h:1", "-server=h:2"}); err != nil || *srv != "h:2" {
		t.Fatalf("-server: %q %v", *srv, err)
	}
	// The old spellings still run end to end (the dev command's --dir is
	// exercised by TestDevCommand).
	if code, _, stderr := run(t, "collateral", "fetch", "--api-key", "k", "--pccs", "http://pccs.example:8081", "--fmspc", "00A067110000", "--out", t.TempDir()); code != exitUsage || !strings.Contains(stderr, "Flag --api-key has been deprecated, use --pccs-api-key") || !strings.Contains(stderr, "plain-http collateral service refused") {
		t.Fatalf("--api-key: exit %d %s", code, stderr)
	}
}

// TestVersionCompletionMan: --version and version print the version,
// commit and build date set with -ldflags; completion scripts and man
// pages are generated.
func TestVersionCompletionMan(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "asps")
	ld := "-X main.version=v9.8.7 -X main.commit=abc123 -X main.date=2026-01-02T03:04:05Z"
	if b, err := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	want := "asps v9.8.7 (commit abc123, built 2026-01-02T03:04:05Z)\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || string(out) != want {
			t.Fatalf("%v: %q %v", args, out, err)
		}
	}
	// Without -ldflags: the build info's fallback, never empty fields.
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "asps ") || !strings.Contains(out, "(commit ") {
		t.Fatalf("version: %d %q", code, out)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, stderr := run(t, "completion", sh)
		if code != 0 || !strings.Contains(out, "asps") || len(out) < 1000 {
			t.Fatalf("completion %s: exit %d %s", sh, code, stderr)
		}
	}
	// Flag completion works for commands that parse their own flags.
	code, out, _ = run(t, "__complete", "fetch", "--sim-mr-e")
	if code != 0 || !strings.Contains(out, "--sim-mr-enclave") {
		t.Fatalf("__complete: %d %q", code, out)
	}
	dir := t.TempDir()
	if code, _, stderr := run(t, "man", "--dir", dir); code != 0 {
		t.Fatalf("man: %s", stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "asps-fetch.1"))
	if err != nil || !strings.Contains(string(b), "SYNOPSIS") || !strings.Contains(string(b), "--sim-mr-enclave") {
		t.Fatalf("asps-fetch.1: %v\n%s", err, b)
	}
}

// TestSimIdentityFlags: in dev mode the simulated enclave or TD presents
// the measurements given with --sim-*, so a user tries their own policy
// without hardware; outside dev mode, or for the other TEE, they are a
// usage error.
func TestSimIdentityFlags(t *testing.T) {
	dir := t.TempDir()
	env, err := devmode.Start(context.Background(), devmode.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	// The demo policy's app "other" is an enclave with this MRENCLAVE.
	other := "7f38cd0ff7fad6b66cfc13a811b7c6eb84188e667c9915b87788eb7703fe4849"
	code, out, stderr := run(t, "fetch", "--dev-dir", dir, "--sim-mr-enclave", other, "--format", "hex", "other-app")
	if code != 0 || strings.TrimSpace(out) != hex.EncodeToString(devmode.DemoSecrets()["other-app"]) {
		t.Fatalf("fetch as %s: exit %d %q %s", other, code, out, stderr)
	}
	if code, _, stderr := run(t, "fetch", "--dev-dir", dir, "--sim-mr-enclave", other, "--format", "hex", "demo-key"); code != exitFailed || !strings.Contains(stderr, "PermissionDenied") {
		t.Fatalf("the other enclave read demo-key: exit %d %s", code, stderr)
	}

	fill := func(b byte, n int) string { return strings.Repeat(hex.EncodeToString([]byte{b}), n) }
	for _, tc := range []struct {
		name  string
		flags []string
		tee   string
		want  map[string]any // whoami JSON fields (tdx./sgx. for nested)
	}{
		{"sgx", []string{"--sim-mr-signer", fill(0xaa, 32), "--sim-isv-prod-id", "7", "--sim-isv-svn", "9", "--sim-config-id", fill(0xcc, 64), "--sim-config-svn", "3", "--sim-debug"}, "sgx",
			map[string]any{"sgx.mr_signer": fill(0xaa, 32), "sgx.isv_prod_id": 7.0, "sgx.isv_svn": 9.0, "sgx.config_id": fill(0xcc, 64), "sgx.config_svn": 3.0, "debug": true,
				"sgx.mr_enclave": hex.EncodeToString(devmode.DemoMrEnclave[:])}},
		{"tdx", []string{"--sim-mr-td", fill(0x11, 48), "--sim-rtmr0", fill(0x20, 48), "--sim-rtmr2", fill(0x22, 48), "--sim-rtmr3", fill(0x23, 48),
			"--sim-td-attributes", "0000001000000010", "--sim-mr-config-id", fill(0x31, 48), "--sim-mr-owner", fill(0x32, 48), "--sim-mr-owner-config", fill(0x33, 48)}, "tdx",
			map[string]any{"tdx.mr_td": fill(0x11, 48), "tdx.rtmr0": fill(0x20, 48), "tdx.rtmr1": hex.EncodeToString(devmode.DemoRtmr1[:]), "tdx.rtmr2": fill(0x22, 48), "tdx.rtmr3": fill(0x23, 48),
				"tdx.td_attributes": "0000001000000010", "tdx.mr_config_id": fill(0x31, 48), "tdx.mr_owner": fill(0x32, 48), "tdx.mr_owner_config": fill(0x33, 48), "quote_version": 4.0}},
		{"tdx-servicetd", []string{"--sim-mr-servicetd", fill(0x44, 48)}, "tdx",
			map[string]any{"tdx.mr_servicetd": fill(0x44, 48), "quote_version": 5.0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"whoami", "--dev-dir", dir, "--tee", tc.tee, "--format", "json"}, tc.flags...)
			code, out, stderr := run(t, args...)
			if code != 0 {
				t.Fatalf("exit %d %s", code, stderr)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			for k, want := range tc.want {
				var v any = got
				for _, part := range strings.Split(k, ".") {
					m, _ := v.(map[string]any)
					v = m[part]
				}
				if v != want {
					t.Errorf("%s = %v, want %v", k, v, want)
				}
			}
		})
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fetch", "--server", "127.0.0.1:1", "--server-pin", strings.Repeat("00", 32), "--attester", "gramine", "--sim-mr-enclave", other, "x"}, "--sim-mr-enclave needs dev mode"},
		{[]string{"fetch", "--dev-dir", dir, "--sim-mr-td", fill(1, 48), "x"}, "--sim-mr-td is a field of a simulated TD; add --tee tdx"},
		{[]string{"whoami", "--dev-dir", dir, "--tee", "tdx", "--sim-isv-svn", "3"}, "--sim-isv-svn is a field of a simulated enclave; add --tee sgx"},
		{[]string{"fetch", "--dev-dir", dir, "--sim-mr-enclave", "abcd", "x"}, "2 bytes, want 32"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d %s, want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestWhoamiShowsEveryPolicyField: whoami printed mr_td and rtmr0 only; it
// shows every field a policy can select, labelled, in text and JSON.
func TestWhoamiShowsEveryPolicyField(t *testing.T) {
	dir := t.TempDir()
	env, err := devmode.Start(context.Background(), devmode.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	code, out, stderr := run(t, "whoami", "--dev-dir", dir, "--tee", "tdx")
	if code != 0 {
		t.Fatalf("exit %d %s", code, stderr)
	}
	for _, k := range []string{"mr_td", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "td_attributes", "xfam", "mr_config_id", "mr_owner", "mr_owner_config", "mr_servicetd", "status", "advisory_ids", "debug", "matched_app", "secret_names"} {
		if !strings.Contains(out, "\n  "+k+" ") && !strings.HasPrefix(out, k+" ") && !strings.Contains(out, "\n"+k+" ") {
			t.Errorf("whoami (tdx) lacks %s:\n%s", k, out)
		}
	}
	code, out, _ = run(t, "whoami", "--dev-dir", dir)
	for _, k := range []string{"mr_enclave", "mr_signer", "isv_prod_id", "isv_svn", "config_id", "config_svn", "attributes"} {
		if code != 0 || !strings.Contains(out, "\n  "+k+" ") {
			t.Errorf("whoami (sgx) lacks %s:\n%s", k, out)
		}
	}
	if !strings.Contains(out, "matched_app        demo-enclave") || !strings.Contains(out, "secret_names       db-password, demo-key") {
		t.Errorf("decision not shown:\n%s", out)
	}
}

// TestFetchSeveralSecretsLabelled: several secrets were printed run
// together; each is now labelled "NAME: VALUE", raw refuses to run them
// together, and --format json gives name and value.
func TestFetchSeveralSecretsLabelled(t *testing.T) {
	dir := t.TempDir()
	env, err := devmode.Start(context.Background(), devmode.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	s := devmode.DemoSecrets()
	code, out, stderr := run(t, "fetch", "--dev-dir", dir, "--format", "hex", "demo-key", "db-password")
	want := "demo-key: " + hex.EncodeToString(s["demo-key"]) + "\ndb-password: " + hex.EncodeToString(s["db-password"]) + "\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d %q %s, want %q", code, out, stderr, want)
	}
	if code, out, stderr := run(t, "fetch", "--dev-dir", dir, "demo-key", "db-password"); code != exitUsage || out != "" || !strings.Contains(stderr, "--format raw prints one secret") {
		t.Fatalf("raw of two secrets: exit %d %q %s", code, out, stderr)
	}
	code, out, stderr = run(t, "fetch", "--dev-dir", dir, "--format", "json", "demo-key", "db-password")
	var got struct {
		Secrets []struct {
			Name string `json:"name"`
			Hex  string `json:"value_hex"`
			B64  string `json:"value_base64"`
			Len  int    `json:"length"`
		} `json:"secrets"`
	}
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got.Secrets) != 2 ||
		got.Secrets[0].Name != "demo-key" || got.Secrets[0].Hex != hex.EncodeToString(s["demo-key"]) || got.Secrets[1].Len != len(s["db-password"]) {
		t.Fatalf("json: exit %d %v %s %s", code, err, out, stderr)
	}
}

// collectFlags sees the flags a command parses.
func TestCollectFlags(t *testing.T) {
	fs := collectFlags(commands["fetch"])
	for _, n := range []string{"server", "dev-dir", "sim-mr-enclave", "format", "out"} {
		if fs.Lookup(n) == nil {
			t.Errorf("no --%s", n)
		}
	}
	var _ *flag.FlagSet = fs
}

// TestErrorMessagesPlain: no raw gRPC wording ("rpc error: code = … desc
// = …"), no repeated file prefix, and a hint when the dev server is not
// running.
func TestErrorMessagesPlain(t *testing.T) {
	dir := t.TempDir()
	env, err := devmode.Start(context.Background(), devmode.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "fetch", "--dev-dir", dir, "--format", "hex", "other-app")
	if code != exitFailed || !strings.HasPrefix(stderr, "asps fetch: refused (PermissionDenied): ") || strings.Contains(stderr, "rpc error") {
		t.Fatalf("refusal: exit %d %q", code, stderr)
	}
	env.Stop()
	code, _, stderr = run(t, "fetch", "--dev-dir", dir, "--timeout", "5s", "--format", "hex", "demo-key")
	if code != exitFailed || !strings.Contains(stderr, "server unreachable (Unavailable)") || !strings.Contains(stderr, "hint: is the server running") || strings.Contains(stderr, "rpc error") {
		t.Fatalf("stopped server: exit %d %q", code, stderr)
	}
	empty := t.TempDir()
	code, _, stderr = run(t, "whoami", "--dev-dir", empty)
	if code != exitUsage || !strings.Contains(stderr, "start `asps dev --dev-dir "+empty+"` first") {
		t.Fatalf("no dev server yet: exit %d %q", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apps:\n  - id: a\n    tee: sgx\n    mr_enclave: zz\n    secrets: {a: a}\n"), 0o600)
	code, _, stderr = run(t, "policy", "check", bad)
	if code != exitFailed || strings.Count(stderr, bad) != 1 {
		t.Fatalf("policy check: exit %d %q", code, stderr)
	}
}

// TestPolicyCheckJSON: policy check --format json gives each app's
// selectors and secret names (never references).
func TestPolicyCheckJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(p, devmode.DemoPolicy(), 0o600)
	code, out, stderr := run(t, "policy", "check", "--format", "json", p)
	var got struct {
		AllowSimulated bool `json:"allow_simulated"`
		Apps           []struct {
			ID      string         `json:"id"`
			SGX     map[string]any `json:"sgx"`
			TDX     map[string]any `json:"tdx"`
			Secrets []string       `json:"secrets"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("exit %d %v %s %s", code, err, out, stderr)
	}
	if !got.AllowSimulated || len(got.Apps) != 3 || got.Apps[0].ID != "demo-enclave" || got.Apps[0].SGX["mr_enclave"] != hex.EncodeToString(devmode.DemoMrEnclave[:]) ||
		got.Apps[1].TDX["rtmr1"] != hex.EncodeToString(devmode.DemoRtmr1[:]) || strings.Join(got.Apps[0].Secrets, ",") != "db-password,demo-key" {
		t.Fatalf("policy JSON: %s", out)
	}
}

// TestAttack_YAMLErrorOnWrongLine: the policy, the secrets file and the
// config file had three YAML readers with different rules; a syntax error
// on line 3 was reported on line 1, and a repeated key had no line. One
// strict reader (internal/yamlstrict) now gives the same refusal, with the
// right line, in all three.
func TestAttack_YAMLErrorOnWrongLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	for _, tc := range []struct {
		name, policy, secrets, config, want string
	}{
		{"indentation", "apps:\n  - id: a\n   tee: sgx\n", "a:\n  - x\n   y: z\n", "policy:\n  - a\n   store: b\n", "line 3"},
		{"repeated key", "apps:\n  - id: a\n    tee: sgx\n    tee: tdx\n", "a: x\nb: y\nc: z\na: w\n", "listen: x\npolicy: p\nstore: s\nlisten: y\n", "line 4"},
		{"alias", "apps:\n  - &a {id: a}\n  - *a\n", "a: x\nb: &v y\nc: *v\n", "listen: x\npolicy: &p p\nstore: *p\n", "anchors and aliases are not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, stderr := run(t, "policy", "check", write("p.yaml", tc.policy)); code != exitFailed || !strings.Contains(stderr, tc.want) {
				t.Errorf("policy: exit %d %s", code, stderr)
			}
			if code, _, stderr := run(t, "server", "--config", write("c.yaml", tc.config)); code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("config: exit %d %s", code, stderr)
			}
			pol := write("ok.yaml", "apps:\n  - id: a\n    tee: sgx\n    mr_enclave: "+strings.Repeat("11", 32)+"\n    secrets: {a: a}\n")
			if code, _, stderr := run(t, "server", "--policy", pol, "--store", "file:"+write("s.yaml", tc.secrets), "--listen", "127.0.0.1:0"); code != exitFailed || !strings.Contains(stderr, tc.want) {
				t.Errorf("secrets file: exit %d %s", code, stderr)
			}
		})
	}
}

// TestCompletionOfFlagValues: enumerated flags complete their values.
func TestCompletionOfFlagValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "fetch", "--format", ""}, []string{"raw", "hex", "base64", "intel", "json"}},
		{[]string{"__complete", "whoami", "--tee", "t"}, []string{"tdx"}},
		{[]string{"__complete", "server", "--log-format", ""}, []string{"json", "text"}},
	} {
		code, out, _ := run(t, tc.args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || strings.Join(lines[:len(lines)-1], " ") != strings.Join(tc.want, " ") {
			t.Errorf("%v: %q", tc.args, out)
		}
	}
}

// TestFormatJSONEverywhere: every command with --json also takes --format
// json (the vocabulary of whoami, fetch and policy check), and --format
// text turns it off.
func TestFormatJSONEverywhere(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := run(t, "sim", "quote", "--out", dir); code != 0 {
		t.Fatal(stderr)
	}
	q := filepath.Join(dir, "quote.bin")
	for _, args := range [][]string{
		{"quote", "inspect", q},
		{"quote", "verify", q, "--collateral", filepath.Join(dir, "collateral.json"), "--trust-root", filepath.Join(dir, "root.pem")},
	} {
		_, want, _ := run(t, append(args, "--json")...)
		code, got, stderr := run(t, append(args, "--format", "json")...)
		if code != 0 || got != want || !json.Valid([]byte(got)) {
			t.Errorf("%v --format json: exit %d %s %s", args, code, got, stderr)
		}
		if _, text, _ := run(t, append(args, "--json", "--format", "text")...); json.Valid([]byte(text)) {
			t.Errorf("%v --format text is JSON", args)
		}
	}
	for name := range commands {
		fs := collectFlags(commands[name])
		if fs.Lookup("json") != nil && fs.Lookup("format") == nil {
			t.Errorf("%s has --json but no --format", name)
		}
	}
	if code, _, stderr := run(t, "quote", "inspect", q, "--format", "yaml"); code != exitUsage || !strings.Contains(stderr, "want text or json") {
		t.Errorf("--format yaml: exit %d %s", code, stderr)
	}
}
