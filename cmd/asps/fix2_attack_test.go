package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/asps-project/asps/internal/fileread"
)

// TestAttack_ServerTrustFileIsFIFO: the files that say how a workload
// trusts its server — --server-ca and the dev dir's server.pin — are read
// as every other input is (internal/fileread: a regular file, bounded), so
// a FIFO put in their place is refused at once instead of blocking the
// open until a writer appears (and then trusting whatever it writes).
func TestAttack_ServerTrustFileIsFIFO(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags func(dir, fifo string) *clientFlags
		file  string
	}{
		{"server-ca", func(dir, fifo string) *clientFlags { return &clientFlags{ca: fifo} }, "ca.pem"},
		{"dev-dir server.pin", func(dir, fifo string) *clientFlags { return &clientFlags{devDir: dir} }, "server.pin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, tc.file)
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			done := make(chan error, 1)
			go func() { _, _, err := tc.flags(dir, fifo).serverAuth(); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, fileread.ErrNotRegular) {
					t.Fatalf("%v, want fileread.ErrNotRegular", err)
				}
			case <-time.After(5 * time.Second): // a liveness guard, not a speed assertion
				if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
					f.Close()
				}
				t.Fatal("serverAuth still blocked on the FIFO after 5 s")
			}
		})
	}
}
