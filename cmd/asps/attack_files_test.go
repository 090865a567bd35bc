package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asps-project/asps/devmode"
)

// TestAttack_ServerKeyFilesNotRegular: the server's TLS certificate and
// key, its simulator root and its state key were read whole, whatever the
// path named: a FIFO hung start-up, /dev/zero took all memory. Each is now
// refused at once as not a regular file.
func TestAttack_ServerKeyFilesNotRegular(t *testing.T) {
	bin := buildBinary(t)
	dir, root, bundle, write := simServerDir(t, "server-key-files")
	policy := write("policy.yaml", devmode.DemoPolicy())
	secrets := write("secrets.yaml", []byte("demo-key: x\ndb-password: y\ntdx-token: z\nother-app: o\n"))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	certPath := filepath.Join(dir, "server.pem")
	keyPath := filepath.Join(dir, "server.key")
	writeTLSPair(t, certPath, keyPath)

	base := []string{"server", "--policy", policy, "--store", "file:" + secrets, "--collateral-dir", bundle,
		"--listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "state")}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"TLS certificate is a FIFO", []string{"--insecure-simulator-root", root, "--tls-cert", fifo, "--tls-key", keyPath}, "--tls-cert"},
		{"TLS key is /dev/zero", []string{"--insecure-simulator-root", root, "--tls-cert", certPath, "--tls-key", "/dev/zero"}, "--tls-key"},
		{"simulator root is a FIFO", []string{"--insecure-simulator-root", fifo}, "--insecure-simulator-root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, append(base, tc.args...)...).CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("asps server hung on it:\n%s", out)
			}
			if err == nil || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "not a regular file") {
				t.Fatalf("exit %v; want a refusal naming %s as not a regular file:\n%s", err, tc.want, out)
			}
		})
	}
}
