package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	flag "github.com/spf13/pflag"
)

// configFlags is a flag set with one flag of each type the server has.
func configFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("audit", "", "")
	fs.String("vault-role-id", "", "")
	fs.String("pccs-api-key", "", "")
	fs.String("listen", ":7443", "")
	fs.Int("vault-kv-version", 1, "")
	fs.Bool("verbose", false, "")
	fs.Duration("collateral-grace", 0, "")
	fs.String("config", "", "")
	return fs
}

func writeConfig(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAttack_ConfigNullBecomesNilString: `audit:` (a YAML null) was
// rendered with fmt.Sprint into the string "<nil>", and the audit log went
// to a file of that name. A null is refused, naming key, line and the type
// expected; the flag keeps its default.
func TestAttack_ConfigNullBecomesNilString(t *testing.T) {
	for _, tc := range []struct{ name, file, body string }{
		{"yaml empty value", "c.yaml", "listen: 127.0.0.1:0\naudit:\n"},
		{"yaml tilde", "c.yaml", "listen: 127.0.0.1:0\naudit: ~\n"},
		{"yaml null", "c.yaml", "listen: 127.0.0.1:0\naudit: null\n"},
		{"json null", "c.json", "{\"listen\": \"127.0.0.1:0\",\n \"audit\": null}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := configFlags()
			err := applyConfigFile(fs, writeConfig(t, tc.file, tc.body))
			var ce *configError
			if !errors.Is(err, errConfigNull) || !errors.As(err, &ce) || ce.Key != "audit" || ce.Line != 2 {
				t.Fatalf("err %v, want a null error for audit on line 2", err)
			}
			if msg := err.Error(); !strings.Contains(msg, `line 2: "audit"`) || !strings.Contains(msg, "want a string") {
				t.Fatalf("message %q does not name line, key and type", msg)
			}
			if v := fs.Lookup("audit").Value.String(); v != "" {
				t.Fatalf("audit set to %q", v)
			}
		})
	}
	// Through the command: refused before anything starts.
	code, _, stderr := run(t, "server", "--config", writeConfig(t, "c.yaml", "policy: p.yaml\naudit:\n"))
	if code != 2 || !strings.Contains(stderr, `line 2: "audit": empty (null) value`) {
		t.Fatalf("asps server with audit: null: exit %d: %s", code, stderr)
	}
}

// TestAttack_ConfigNumberReRendered: values are passed on as written. A
// hex-looking or exponent-looking value YAML reads as a number was
// re-rendered (0x1F became 31, 1e3 became 1000); now it reaches the flag
// verbatim.
func TestAttack_ConfigNumberReRendered(t *testing.T) {
	fs := configFlags()
	err := applyConfigFile(fs, writeConfig(t, "c.yaml", "vault-role-id: 0x1F\npccs-api-key: 1e3\nlisten: 0o17\nvault-kv-version: 0x2\ncollateral-grace: 90m\nverbose: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"vault-role-id": "0x1F", "pccs-api-key": "1e3", "listen": "0o17", "vault-kv-version": "2", "collateral-grace": (90 * time.Minute).String(), "verbose": "true"} {
		if got := fs.Lookup(k).Value.String(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// TestConfigRefusals: each malformed config is refused with its reason,
// the key, its line and the expected type; values never appear (a setting
// may be a credential).
func TestConfigRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		reason     error
		want       string
	}{
		{"unknown key", "listen: x\naudti: a.jsonl\n", errConfigUnknown, `line 2: "audti": unknown setting`},
		{"duplicate key", "audit: a\nlisten: x\naudit: b\n", errConfigDuplicate, `line 3: "audit": setting given twice: also on line 1`},
		{"duplicate key json", "{\"audit\": \"a\", \"audit\": \"b\"}", errConfigDuplicate, `"audit": setting given twice`},
		{"int as word", "vault-kv-version: two\n", errConfigType, `line 1: "vault-kv-version": wrong type: want a whole number, not a string`},
		{"int as bool", "vault-kv-version: true\n", errConfigType, "want a whole number, not a boolean"},
		{"int octal-looking", "vault-kv-version: 010\n", errConfigType, "decimal, or hex with 0x"},
		{"int quoted", "vault-kv-version: \"2\"\n", errConfigType, "not a quoted string"},
		{"duration without unit", "collateral-grace: 30\n", errConfigType, "a unit is required"},
		{"duration nonsense", "collateral-grace: soon\n", errConfigType, `want a duration such as "30s"`},
		{"bool as word", "verbose: yes\n", errConfigType, "want true or false"},
		{"string as bool", "audit: false\n", errConfigType, "want a string, not a boolean"},
		{"string as list", "audit: [a, b]\n", errConfigType, "want a string, not a list"},
		{"string as map", "audit:\n  path: a\n", errConfigType, "want a string, not a mapping"},
		{"null int", "vault-kv-version:\n", errConfigNull, "want a whole number"},
		{"alias", "listen: &a x\naudit: *a\n", errConfigSyntax, "anchors and aliases"},
		{"custom tag", "audit: !file a\n", errConfigSyntax, "custom YAML tag"},
		{"nested config", "config: other.yaml\n", errConfigUnknown, "cannot name another"},
		{"not a mapping", "- audit\n", errConfigSyntax, "want a mapping"},
		{"two documents", "audit: a\n---\naudit: b\n", errConfigSyntax, "more than one"},
		{"bad yaml", "audit: [\n", errConfigSyntax, "malformed config"},
		{"secret value never echoed", "pccs-api-key: [hunter2]\n", errConfigType, "want a string, not a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := applyConfigFile(configFlags(), writeConfig(t, "c.yaml", tc.body))
			if !errors.Is(err, tc.reason) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %v containing %q", err, tc.reason, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the value is in the error: %v", err)
			}
		})
	}
	// Every problem at once.
	err := applyConfigFile(configFlags(), writeConfig(t, "c.yaml", "audit:\nvault-kv-version: x\nnope: 1\n"))
	if !errors.Is(err, errConfigNull) || !errors.Is(err, errConfigType) || !errors.Is(err, errConfigUnknown) {
		t.Fatalf("not all problems reported: %v", err)
	}
}

// TestConfigFlagsWin: a flag on the command line wins over the file; the
// file wins over the flag's default.
func TestConfigFlagsWin(t *testing.T) {
	fs := configFlags()
	if err := fs.Parse([]string{"--listen", "cli:1"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(fs, writeConfig(t, "c.yaml", "# comment\nlisten: file:1\naudit: a.jsonl\n")); err != nil {
		t.Fatal(err)
	}
	if l, a := fs.Lookup("listen").Value.String(), fs.Lookup("audit").Value.String(); l != "cli:1" || a != "a.jsonl" {
		t.Fatalf("listen %q audit %q", l, a)
	}
	if err := applyConfigFile(configFlags(), writeConfig(t, "c.yaml", "# only comments\n")); err != nil {
		t.Fatalf("empty config: %v", err)
	}
	if err := applyConfigFile(configFlags(), "/dev/null"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("/dev/null: %v", err)
	}
}

// FuzzConfig: an accepted file sets each flag to text that appears in the
// file as written (nothing re-rendered), and only known flags.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{"audit: a\n", "audit:\n", "vault-kv-version: 0x2\n", "{\"listen\": \"x\"}", "listen: &a x\n", "verbose: true\ncollateral-grace: 5m\n"} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		fs := configFlags()
		settings, err := parseConfig(b, "fuzz", fs)
		if err != nil {
			return
		}
		for _, s := range settings {
			if fs.Lookup(s.key) == nil || s.key == "config" {
				t.Fatalf("unknown key %q accepted", s.key)
			}
			if flagType(fs.Lookup(s.key)) == kindString && s.value != "" && !strings.Contains(string(b), s.value) && !strings.ContainsAny(string(b), `"'\|>`) {
				t.Fatalf("%s = %q is not in the file as written", s.key, s.value)
			}
		}
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = applyConfigFile(fs, p)
	})
}

// TestAttack_ConfigOldSpellingOverridesCommandLine: a config file's old
// spelling of a flag (a hidden alias, "tee" for "attester") is the same
// setting: it does not override the command line's, and a file may not
// give both spellings.
func TestAttack_ConfigOldSpellingOverridesCommandLine(t *testing.T) {
	mk := func() (*flag.FlagSet, *string) {
		fs := configFlags()
		v := fs.String("attester", "", "")
		alias(fs, "tee", "attester")
		return fs, v
	}
	fs, v := mk()
	if _, err := parseInterspersed(fs, []string{"--attester", "tsm"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(fs, writeConfig(t, "c.yaml", "tee: gramine\n")); err != nil || *v != "tsm" {
		t.Fatalf("attester %q err %v, want the command line's tsm", *v, err)
	}
	fs, _ = mk()
	err := applyConfigFile(fs, writeConfig(t, "c.yaml", "tee: gramine\nattester: occlum\n"))
	if !errors.Is(err, errConfigDuplicate) || !strings.Contains(err.Error(), "the same setting as tee on line 1") {
		t.Fatalf("both spellings: %v", err)
	}
}
