package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain keeps the servers the tests start from writing a key into the
// user's own state directory.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "asps-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("ASPS_STATE_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func stopProcess(p *serverProcess) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
}

// TestAttack_ServerPinChangesOnRestart: without --tls-cert the server made
// a new key, and so a new pin, at every start, breaking every client that
// pinned it. The key is kept in the state directory: a restart keeps the
// pin, another state directory has another.
func TestAttack_ServerPinChangesOnRestart(t *testing.T) {
	state := t.TempDir()
	p := startServerProcess(t, "--state-dir", state)
	first := p.pin
	stopProcess(p)
	fi, err := os.Stat(filepath.Join(state, serverKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, fi)
	}
	p = startServerProcess(t, "--state-dir", state)
	if p.pin != first {
		t.Fatalf("pin changed across a restart: %s then %s", first, p.pin)
	}
	// The pin is a log record too (one format on stderr), and the same.
	var found bool
	for _, l := range strings.Split(strings.TrimSpace(p.logs.String()), "\n") {
		var r struct{ Msg, Pin string }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("a stderr line is not JSON: %q", l)
		}
		found = found || (r.Msg == "server key pin" && r.Pin == first)
	}
	if !found {
		t.Fatalf("no pin record in the log:\n%s", p.logs.String())
	}
	stopProcess(p)
	if other := startServerProcess(t, "--state-dir", t.TempDir()); other.pin == first {
		t.Fatal("two state directories share a pin")
	}
}

// TestAttack_StateKeyReadableByOthersRefused: a key file others can read
// (or a symlink in its place) is refused, not used.
func TestAttack_StateKeyReadableByOthersRefused(t *testing.T) {
	p := startServerProcess(t)
	stopProcess(p)
	args := func(state string) []string {
		return []string{"server", "--policy", filepath.Join(p.dir, "policy.yaml"), "--store", "file:" + filepath.Join(p.dir, "secrets.yaml"),
			"--collateral-dir", filepath.Join(p.dir, "bundle"), "--insecure-simulator-root", filepath.Join(p.dir, "root.pem"),
			"--listen", "127.0.0.1:0", "--state-dir", state}
	}
	state := t.TempDir()
	if _, _, _, err := stateServerCert(state); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(state, serverKeyFile)
	os.Chmod(key, 0o644)
	code, _, stderr := run(t, args(state)...)
	if code != exitFailed || !strings.Contains(stderr, "readable or writable by others (mode 0644)") {
		t.Fatalf("world-readable key: exit %d %s", code, stderr)
	}
	state2 := t.TempDir()
	os.Symlink(key, filepath.Join(state2, serverKeyFile))
	code, _, stderr = run(t, args(state2)...)
	if code != exitFailed || !strings.Contains(stderr, "is not a regular file") {
		t.Fatalf("symlinked key: exit %d %s", code, stderr)
	}
}

// TestAttack_SecretsFileNeverReloaded: after the secrets file was edited
// (and SIGHUP sent) the old value was still served. The file reloads on
// change and on SIGHUP; a bad file keeps the old secrets and the log says
// why.
func TestAttack_SecretsFileNeverReloaded(t *testing.T) {
	p := startServerProcess(t)
	secrets := filepath.Join(p.dir, "secrets.yaml")
	fetch := func() (string, error) {
		out, err := exec.Command(buildBinary(t), "fetch", "--server", p.addr, "--server-pin", p.pin, "--dev-dir", p.dir, "--format", "hex", "demo-key").CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, err := fetch()
			if err == nil && got == hex.EncodeToString([]byte(want)) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("never served %q: %v %s\n%s", want, err, got, p.logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("k")
	// A file change, no signal.
	os.WriteFile(secrets, []byte("demo-key: k2\ndb-password: p\n"), 0o600)
	waitFor("k2")
	// A bad file: the old secrets stay and the log says why (naming the
	// line, never a value).
	os.WriteFile(secrets, []byte("demo-key: k3\ndemo-key: k4\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.logs.String(), "secrets file reload on SIGHUP failed; the old secrets file stays in force") ||
		!strings.Contains(p.logs.String(), "secrets file reload failed; keeping the current secrets") {
		if time.Now().After(deadline) {
			t.Fatalf("no reason logged:\n%s", p.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, err := fetch(); err != nil || got != hex.EncodeToString([]byte("k2")) {
		t.Fatalf("after a bad file: %v %s", err, got)
	}
	if strings.Contains(p.logs.String(), "k3") || strings.Contains(p.logs.String(), "k4") {
		t.Fatal("a secret value reached the log")
	}
	// SIGHUP after a good edit.
	os.WriteFile(secrets, []byte("demo-key: k5\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("k5")
}

// TestLogFormatOnePerProcess: asps dev logged text and the server JSON
// with a plain-text pin line in between; --log-format chooses one format
// for every record of the process.
func TestLogFormatOnePerProcess(t *testing.T) {
	bin := buildBinary(t)
	for _, format := range []string{"json", "text"} {
		cmd := exec.Command(bin, "dev", "--dev-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--log-format", format)
		stdout, _ := cmd.StdoutPipe()
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() && !strings.HasPrefix(sc.Text(), "Edit ") {
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) < 2 {
			t.Fatalf("%s: stderr %q", format, stderr.String())
		}
		for _, l := range lines {
			var r map[string]any
			isJSON := json.Unmarshal([]byte(l), &r) == nil
			if isJSON != (format == "json") || (format == "text" && !strings.HasPrefix(l, "time=")) {
				t.Errorf("--log-format %s: line %q", format, l)
			}
		}
	}
	if code, _, stderr := run(t, "server", "--log-format", "xml", "--policy", "p"); code != exitUsage || !strings.Contains(stderr, "--log-format: json or text") {
		t.Fatalf("bad --log-format: exit %d %s", code, stderr)
	}
}
