//go:build unix

package policy

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestAttack_PolicyPathIsFIFO: a policy path that is a FIFO (or a device)
// was opened and read: a FIFO without a writer blocked the open forever,
// so `asps policy check` hung and the server's reload (SIGHUP, the file
// watch) stopped for good. Anything but a regular file is refused before
// it is opened.
func TestAttack_PolicyPathIsFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "policy.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, path := range []string{fifo, "/dev/zero", t.TempDir()} {
		done := make(chan error, 1)
		go func() { _, err := Load(path); done <- err }()
		select {
		case err := <-done:
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, ErrSyntax) {
				t.Errorf("%s: %v, want a *LoadError (ErrSyntax) saying it is not a regular file", path, err)
			}
		case <-time.After(10 * time.Second): // a liveness guard, not a speed assertion
			t.Fatalf("Load(%s) still blocked after 10 s", path)
		}
	}
}
