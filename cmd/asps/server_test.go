package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/asps-project/asps/internal/testdata"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asps-project/asps/devmode"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// buildBinary builds the asps binary once per test process.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "asps-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "asps")
		if b, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build: %v\n%s", err, b)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServerProcess runs `asps server` as an operator would — a config
// file, a policy, a file store, collateral from a bundle, an audit log,
// metrics — and a workload fetching through `asps fetch`; then a policy
// reload on SIGHUP and a graceful stop on SIGTERM.
func TestServerProcess(t *testing.T) {
	bin := buildBinary(t)
	dir, root, bundle, write := simServerDir(t, "server-process-test")
	policyPath := write("policy.yaml", devmode.DemoPolicy())
	write("secrets.yaml", []byte("demo-key: {hex: 42cd4b7f1e0a9c3d5b6f8e2a1c4d7b9e0f3a5c8d2b4e6f1a3c5d7e9b0a2c4e6f}\ndb-password: correct horse battery staple\ntdx-token: t\nother-app: o\n"))
	metrics := freePort(t)
	audit := filepath.Join(dir, "audit.jsonl")
	config := write("config.yaml", fmt.Appendf(nil, "policy: %s\nstore: file:%s\ncollateral-dir: %s\naudit: %s\nmetrics-listen: %s\nlisten: 127.0.0.1:0\n",
		policyPath, filepath.Join(dir, "secrets.yaml"), bundle, audit, metrics))

	// Production mode refuses a policy that admits simulated evidence.
	out, err := exec.Command(bin, "server", "--config", config).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "allow_simulated") {
		t.Fatalf("production mode with a simulator policy: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "server", "--config", config, "--insecure-simulator-root", root)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pinCh, addrCh := make(chan string, 1), make(chan string, 1)
	var logs strings.Builder
	var logMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "server key pin (give clients --server-pin): "); ok {
				pinCh <- p
			}
		}
	}()
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "asps server listening" {
				addrCh <- l.Addr
			}
		}
	}()
	var pin, addr string
	for pin == "" || addr == "" {
		select {
		case pin = <-pinCh:
		case addr = <-addrCh:
		case <-time.After(30 * time.Second):
			logMu.Lock()
			defer logMu.Unlock()
			t.Fatalf("server did not start:\n%s", logs.String())
		}
	}
	logMu.Lock()
	if !strings.Contains(logs.String(), "INSECURE DEV MODE") {
		t.Error("dev mode did not say so loudly at start-up")
	}
	logMu.Unlock()

	fetch := func(name string) (string, error) {
		out, err := exec.Command(bin, "fetch", "--server", addr, "--server-pin", pin, "--dev-dir", dir, "--format", "hex", name).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	got, err := fetch("demo-key")
	if err != nil || got != "42cd4b7f1e0a9c3d5b6f8e2a1c4d7b9e0f3a5c8d2b4e6f1a3c5d7e9b0a2c4e6f" {
		t.Fatalf("fetch: %v %q", err, got)
	}

	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`asps_decisions_total{code="OK",decision="allow",reason=""} 1`, "asps_quote_verify_seconds", "asps_verifier_cache_total"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	if strings.Contains(string(body), "42cd4b") {
		t.Fatal("a secret value reached the metrics")
	}
	if resp, err := http.Get("http://" + metrics + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}

	// SIGHUP: the edited policy takes effect.
	edited := strings.Replace(string(devmode.DemoPolicy()), "      demo-key: demo-key\n", "", 1)
	write("policy.yaml", []byte(edited))
	cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := fetch("demo-key")
		if err != nil && strings.Contains(out, "PermissionDenied") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reloaded policy never took effect: %v %s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	b, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"decision":"allow"`) || !strings.Contains(string(b), `"decision":"deny"`) || strings.Contains(string(b), "42cd4b") {
		t.Fatalf("audit log:\n%s", b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exit after SIGTERM: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("server did not stop on SIGTERM")
	}
}

// TestImportedPolicyReloads: an Intel ASPS policy with inline values is
// imported again on reload, and the values served are those of the policy
// in force.
func TestImportedPolicyReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy_no_kms.json")
	write := func(value string) {
		doc := fmt.Sprintf(`{"kms":"none","app_list":[{"id":"1","mr_enclave":"%x","secrets":{"image_key":%q}}]}`, devmode.DemoMrEnclave, value)
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("first")
	h, _, _, err := loadServerPolicy(path, false, slogDiscard())
	if err != nil {
		t.Fatal(err)
	}
	get := func() string {
		refs, err := h.Policy().App("1").Authorize([]string{"image_key"})
		if err != nil {
			t.Fatal(err)
		}
		v, ok := refs[0].InlineValue()
		if !ok {
			t.Fatal("the imported policy carries no inline value")
		}
		return string(v)
	}
	if got := get(); got != "first" {
		t.Fatalf("value %q", got)
	}
	write("second")
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "second" {
		t.Fatalf("after reload: %q", got)
	}
	// A bad edit keeps the policy and its values.
	os.WriteFile(path, []byte(`{"kms":"none","app_list":[{"id":"1","mr_enclave":"abc","secrets":{"image_key":"x"}}]}`), 0o600)
	if err := h.Reload(); err == nil {
		t.Fatal("placeholder measurement accepted on reload")
	}
	if got := get(); got != "second" {
		t.Fatalf("after a refused reload: %q", got)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestDevCommand: `asps dev` as a process prints what to run next, and
// that works; outside a TEE, `asps fetch` without --dev-dir says what it
// looked for.
func TestDevCommand(t *testing.T) {
	for _, attested := range []bool{false, true} {
		t.Run(fmt.Sprintf("attested-server=%v", attested), func(t *testing.T) { testDevCommand(t, attested) })
	}
}

func testDevCommand(t *testing.T, attested bool) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "dev", "--dir", dir, "--listen", "127.0.0.1:0", fmt.Sprintf("--attested-server=%v", attested))
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	next := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			// Printed as the binary was invoked, to be pasted as is.
			if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, bin+" fetch ") {
				next <- l
			}
		}
	}()
	var line string
	select {
	case line = <-next:
	case <-time.After(30 * time.Second):
		t.Fatal("asps dev printed no next step")
	}
	args := strings.Fields(line)[1:]
	out, err := exec.Command(bin, append(args, "--format", "intel")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Secret received: 42-cd-4b-") {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	if attested {
		if !strings.Contains(line, "--server-mr-enclave") {
			t.Fatalf("next step %q does not attest the server", line)
		}
		// Expecting another server enclave: refused before anything is sent.
		wrong := append([]string{}, args...)
		for i, a := range wrong {
			if a == "--server-mr-enclave" {
				wrong[i+1] = strings.Repeat("ff", 32)
			}
		}
		out, err := exec.Command(bin, wrong...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "does not satisfy the server policy") || !strings.Contains(string(out), "mr_enclave") {
			t.Fatalf("another server enclave accepted: %v\n%s", err, out)
		}
	}

	out, err = exec.Command(bin, "fetch", "--server", "127.0.0.1:1", "--server-pin", strings.Repeat("00", 32), "demo-key").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no TEE found") || !strings.Contains(string(out), "/dev/attestation") {
		t.Fatalf("fetch outside a TEE: %v\n%s", err, out)
	}
}

// TestCollateralCommands: `asps collateral import` makes a bundle, `asps
// collateral serve` serves it as a PCCS (a real process on loopback),
// `asps collateral fetch` mirrors it into another bundle, and a real quote
// verifies from that — and from the mirror directly.
func TestCollateralCommands(t *testing.T) {
	bin := buildBinary(t)
	var c testdata.DCAPCase
	for _, tc := range testdata.DCAPCases(t) {
		if tc.Name == "sgx-v3-config-sw-hardening" {
			c = tc
		}
	}
	if c.Name == "" {
		t.Fatal("corpus case missing")
	}
	at := c.Expected.VerifyAt.Format(time.RFC3339)
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command(bin, "collateral", "import", filepath.Join(c.Dir, "collateral.json"), "--out", bundle).CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	addr := freePort(t)
	srv := exec.Command(bin, "collateral", "serve", "--dir", bundle, "--listen", addr)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }()
	url := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r, err := http.Get(url + "/sgx/certification/v4/qe/identity"); err == nil {
			r.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("collateral serve did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	mirror := filepath.Join(t.TempDir(), "mirror")
	if out, err := exec.Command(bin, "collateral", "fetch", "--pccs", url, "--fmspc", c.Expected.FMSPC, "--tee", "sgx", "--ca", "processor", "--at", at, "--out", mirror).CombinedOutput(); err != nil {
		t.Fatalf("fetch: %v\n%s", err, out)
	}
	for _, src := range [][]string{{"--collateral-dir", mirror}, {"--pccs", url}} {
		args := append([]string{"quote", "verify", filepath.Join(c.Dir, "quote.bin"), "--at", at, "--json"}, src...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"status": "`+c.Expected.Status+`"`) {
			t.Fatalf("%v: %v\n%s", src, err, out)
		}
	}
}
