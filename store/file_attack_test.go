//go:build unix

package store

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAttack_SecretsFileIsFIFO: a secrets file path that is a FIFO was
// opened, which blocks without a writer: the server hung at start-up (or
// on reload). Anything but a regular file is refused before it is opened.
func TestAttack_SecretsFileIsFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, path := range []string{fifo, "/dev/zero", t.TempDir()} {
		done := make(chan error, 1)
		go func() { _, err := OpenFile(path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: %v, want a refusal naming it not a regular file", path, err)
			}
		case <-time.After(10 * time.Second): // a liveness guard, not a speed assertion
			t.Fatalf("OpenFile(%s) still blocked after 10 s", path)
		}
	}
}
