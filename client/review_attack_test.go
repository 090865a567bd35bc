package client_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/asps-project/asps/client"
)

// TestAttack_ServerPolicyPathIsFIFO: the policy, secrets, key and bundle
// files are read only if regular (internal/fileread), so a FIFO cannot hang
// a load. The workload's --server-policy is opened with os.Open first and
// checked after: opening a FIFO blocks until a writer appears, so `asps
// fetch --server-policy` (or `run`) hangs before it can refuse — and a
// writer that appears feeds it whatever it likes up to 4 MiB.
func TestAttack_ServerPolicyPathIsFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "server-policy.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := client.LoadServerPolicy(fifo, false); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, client.ErrServerPolicy) {
			t.Fatalf("%v, want ErrServerPolicy (not a regular file)", err)
		}
	case <-time.After(5 * time.Second): // a liveness guard, not a speed assertion
		// Unblock the goroutine so the test binary can end.
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("LoadServerPolicy of a FIFO still blocked after 5 s")
	}
}
