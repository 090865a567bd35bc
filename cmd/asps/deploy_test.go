package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/asps-project/asps/internal/testdata"
	"github.com/asps-project/asps/internal/vaulttest"
)

// deployDir is the repository's deploy/ folder, seen from cmd/asps.
const deployDir = "../../deploy"

// TestDeployExamplePolicies: every example policy an operator would start
// from passes `asps policy check`, and the Kubernetes ConfigMap carries the
// same policy as deploy/examples/policy.yaml.
func TestDeployExamplePolicies(t *testing.T) {
	for _, name := range []string{"policy.yaml", "policy-file.yaml"} {
		p := filepath.Join(deployDir, "examples", name)
		if code, out, stderr := run(t, "policy", "check", p); code != 0 {
			t.Errorf("asps policy check %s: exit %d\n%s%s", name, code, out, stderr)
		}
	}

	docs := yamlDocs(t, filepath.Join(deployDir, "kubernetes", "asps.yaml"))
	cm := func(name string) map[string]any {
		for _, d := range docs {
			md, _ := d["metadata"].(map[string]any)
			if d["kind"] == "ConfigMap" && md["name"] == name {
				data, _ := d["data"].(map[string]any)
				return data
			}
		}
		t.Fatalf("deploy/kubernetes/asps.yaml: no ConfigMap %q", name)
		return nil
	}
	var inK8s, example any
	if err := yaml.Unmarshal([]byte(cm("asps-policy")["policy.yaml"].(string)), &inK8s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(deployDir, "examples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &example); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inK8s, example) {
		t.Error("the ConfigMap asps-policy differs from deploy/examples/policy.yaml")
	}
	k8sPolicy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(k8sPolicy, []byte(cm("asps-policy")["policy.yaml"].(string)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := run(t, "policy", "check", k8sPolicy); code != 0 {
		t.Errorf("asps policy check of the ConfigMap's policy: exit %d\n%s%s", code, out, stderr)
	}

	// The Kubernetes server config names the same settings as the example.
	var k8sConf, exConf map[string]any
	if err := yaml.Unmarshal([]byte(cm("asps-config")["server.yaml"].(string)), &k8sConf); err != nil {
		t.Fatal(err)
	}
	exConf = yamlMap(t, filepath.Join(deployDir, "examples", "server.yaml"))
	for k := range exConf {
		if _, ok := k8sConf[k]; !ok {
			t.Errorf("the ConfigMap's server.yaml lacks %q of deploy/examples/server.yaml", k)
		}
	}
	for k := range k8sConf {
		if _, ok := exConf[k]; !ok {
			t.Errorf("the ConfigMap's server.yaml has %q, deploy/examples/server.yaml does not", k)
		}
	}
}

// TestDeployExampleServerConfigs starts `asps server --config` on each
// example configuration, as a real process, with only the machine-specific
// parts moved: paths under a temporary root, the Vault address to a real
// OpenBao on loopback, listen addresses to free loopback ports.
func TestDeployExampleServerConfigs(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		config string
		vault  bool
	}{
		{"server-file.yaml", false},
		{"server.yaml", true},
	} {
		t.Run(tc.config, func(t *testing.T) {
			root := t.TempDir()
			etc := filepath.Join(root, "etc")
			for _, d := range []string{etc, filepath.Join(etc, "tls"), filepath.Join(root, "lib", "collateral"), filepath.Join(root, "cache"), filepath.Join(root, "log")} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{"policy.yaml", "policy-file.yaml", "secrets.yaml"} {
				copyFile(t, filepath.Join(deployDir, "examples", f), filepath.Join(etc, f))
			}
			writeTLSPair(t, filepath.Join(etc, "tls", "server.pem"), filepath.Join(etc, "tls", "server.key"))

			b, err := os.ReadFile(filepath.Join(deployDir, "examples", tc.config))
			if err != nil {
				t.Fatal(err)
			}
			conf := strings.NewReplacer(
				"/etc/asps/", etc+"/",
				"/var/lib/asps/", filepath.Join(root, "lib")+"/",
				"/var/cache/asps", filepath.Join(root, "cache"),
				"/var/log/asps/", filepath.Join(root, "log")+"/",
			).Replace(string(b))
			env := os.Environ()
			if tc.vault {
				srv := vaulttest.Start(t)
				conf = strings.Replace(conf, "https://vault.internal:8200", srv.Addr, 1)
				// The example's CA is for a TLS Vault; this one is plain http.
				conf = strings.Replace(conf, "vault-ca: "+etc+"/vault-ca.pem\n", "", 1)
				env = append(env, "VAULT_TOKEN="+srv.RootToken)
			} else {
				// An offline bundle of Intel's real collateral (the corpus).
				col := testdata.Path(t, "dcap", "sgx-v3-config-sw-hardening", "collateral.json")
				if code, _, stderr := run(t, "collateral", "import", col, "--out", filepath.Join(root, "lib", "collateral")); code != 0 {
					t.Fatalf("collateral import: %s", stderr)
				}
			}
			confPath := filepath.Join(etc, "server.yaml")
			if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			metrics := freePort(t)
			cmd := exec.Command(bin, "server", "--config", confPath, "--listen", "127.0.0.1:0", "--metrics-listen", metrics)
			cmd.Env = env
			addr, logs := startDeployServer(t, cmd)
			if addr == "" {
				t.Fatalf("asps server --config %s did not start:\n%s", tc.config, logs())
			}
			// The metrics listener may come up just after the gRPC one.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				resp, err := http.Get("http://" + metrics + "/healthz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("healthz: %v %v\n%s", err, resp, logs())
				}
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("asps server after SIGTERM: %v\n%s", err, logs())
			}
		})
	}
}

// startDeployServer starts cmd and waits for its "listening" log line. It
// returns the address ("" if it never came) and the logs so far.
func startDeployServer(t *testing.T, cmd *exec.Cmd) (string, func() string) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var buf lockedBuffer
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			buf.Write(append(sc.Bytes(), '\n'))
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "asps server listening" {
				addrCh <- l.Addr
			}
		}
		close(addrCh)
	}()
	select {
	case a := <-addrCh:
		return a, buf.String
	case <-time.After(30 * time.Second):
		return "", buf.String
	}
}

func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, d)
	}
	return docs
}

func yamlMap(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeTLSPair writes a self-signed server certificate and its key, as an
// operator's PKI would provide them.
func writeTLSPair(t *testing.T, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "asps.example"},
		DNSNames:     []string{"asps.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDeploySystemdUnit: systemd's own checker accepts the hardened unit
// (pointed at the binary built here).
func TestDeploySystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian's systemd package): the unit is not checked")
	}
	bin := buildBinary(t)
	b, err := os.ReadFile(filepath.Join(deployDir, "systemd", "asps.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "asps.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(b, []byte("/usr/local/bin/asps"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
