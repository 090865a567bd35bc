package main

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/internal/vaulttest"
)

// TestServerOverOpenBaoClusterSurvivesLeaderKill runs a real `asps server`
// whose store is a 3-node OpenBao raft cluster (--vault-addr with the three
// nodes): a workload fetches its secret, the active OpenBao node is
// SIGKILLed, and the next fetch still returns the secret (the store fails
// over to the new leader within its deadline); the audit log records both.
func TestServerOverOpenBaoClusterSurvivesLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs OpenBao and server processes")
	}
	c := vaulttest.StartCluster(t, 3)
	leader := c.WaitLeader(t, 20*time.Second, -1)
	do := func(method, path string, body any) []byte {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, b, err := c.Nodes[leader].Do(method, path, body)
			if err == nil && code/100 == 2 {
				return b
			}
			if time.Now().After(deadline) || (err == nil && code < 500) {
				t.Fatalf("%s %s: %d %s %v", method, path, code, b, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	const value = "cluster-held-demo-key"
	do(http.MethodPost, "secret/data/demo", map[string]any{"data": map[string]string{"key": value}})
	do(http.MethodPut, "sys/policies/acl/asps", map[string]any{"policy": `path "secret/data/*" { capabilities = ["read"] }`})
	var tok struct {
		Auth struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(do(http.MethodPost, "auth/token/create", map[string]any{"policies": []string{"asps"}, "ttl": "1h"}), &tok); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAULT_TOKEN", tok.Auth.ClientToken)

	pol := strings.Replace(string(devmode.DemoPolicy()), "demo-key: demo-key", "demo-key: secret/demo", 1)
	polPath := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(polPath, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServerProcess(t, "--policy", polPath, "--store", "vault",
		"--vault-addr", strings.Join(c.Addrs(), ","), "--vault-kv-version", "2")
	bin := buildBinary(t)
	fetch := func() (string, error) {
		out, err := exec.Command(bin, "fetch", "--server", p.addr, "--server-pin", p.pin, "--dev-dir", p.dir, "--format", "hex", "demo-key").CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	want := hex.EncodeToString([]byte(value))
	if got, err := fetch(); err != nil || got != want {
		t.Fatalf("fetch: %v %q\n%s", err, got, p.logs.String())
	}

	killed := leader
	c.Nodes[killed].Kill()
	if got, err := fetch(); err != nil || got != want {
		t.Fatalf("fetch right after the SIGKILL of the OpenBao leader: %v %q\n%s", err, got, p.logs.String())
	}
	leader = c.WaitLeader(t, 30*time.Second, killed)
	t.Logf("OpenBao leader %s killed; new leader %s", c.Nodes[killed].Addr, c.Nodes[leader].Addr)
	if got, err := fetch(); err != nil || got != want {
		t.Fatalf("fetch after the election: %v %q", err, got)
	}
	b, err := os.ReadFile(p.audit)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"decision":"allow"`); n != 3 || strings.Contains(string(b), value) || strings.Contains(string(b), tok.Auth.ClientToken) {
		t.Fatalf("audit: %d allow records (want 3), or a secret in it:\n%s", n, b)
	}
}
