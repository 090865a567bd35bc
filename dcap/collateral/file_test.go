//go:build unix

package collateral

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// docPath is where document k lives in dir, its directories made.
func docPath(t *testing.T, dir string, k Key) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(k.Path()))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// within runs f and fails the test if it has not returned after a long
// while (a hang guard, not a timing assertion).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s hangs", what)
	}
}

// TestAttack_BundleFileNotRegular: a bundle or cache directory whose
// document is a FIFO, a device (directly or through a symlink) or a
// directory: refused for that reason at once, without reading it. Before,
// a FIFO hung the start-up and /dev/zero was read until memory ran out.
func TestAttack_BundleFileNotRegular(t *testing.T) {
	k := TCBInfoKey(TEESGX, fmspcA)
	for _, tc := range []struct {
		name string
		make func(t *testing.T, p string)
	}{
		{"FIFO", func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skip("no FIFOs here:", err)
			}
		}},
		{"symlink to /dev/zero", func(t *testing.T, p string) {
			if _, err := os.Stat("/dev/zero"); err != nil {
				t.Skip("no /dev/zero")
			}
			if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := newTestPKI(t, "Test")
			dir := t.TempDir()
			tc.make(t, docPath(t, dir, k))
			o := Options{TrustAnchors: []*x509Cert{pki.root}, Logger: quietLogger()}
			within(t, "opening the bundle", func() {
				_, err := OpenBundle(dir, o)
				if !errors.Is(err, ErrNotRegularFile) {
					t.Errorf("OpenBundle: %v; want ErrNotRegularFile", err)
				}
			})
			// A cache directory: the file is skipped (logged), the cache works.
			within(t, "opening the cache", func() {
				o.Dir = dir
				c, err := NewCache(o)
				if err != nil {
					t.Errorf("NewCache: %v", err)
					return
				}
				defer c.Close()
				if n := len(c.Documents()); n != 0 {
					t.Errorf("%d documents loaded", n)
				}
			})
		})
	}
	// The files asps reads by name, directly.
	for _, p := range []string{"/dev/zero", "/dev/null", t.TempDir()} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		within(t, "ReadFile "+p, func() {
			if _, err := ReadFile(p, 1<<20); !errors.Is(err, ErrNotRegularFile) {
				t.Errorf("ReadFile(%s): %v; want ErrNotRegularFile", p, err)
			}
			if _, err := LoadStatic(p); !errors.Is(err, ErrNotRegularFile) {
				t.Errorf("LoadStatic(%s): %v; want ErrNotRegularFile", p, err)
			}
		})
	}
}

// TestAttack_SparseGiBBundleFile: a 1 GiB sparse file in a bundle took
// 1 GB of memory before "file too large". Now it is refused by its size,
// and opening the bundle allocates a few kilobytes, not the file.
func TestAttack_SparseGiBBundleFile(t *testing.T) {
	pki := newTestPKI(t, "Test")
	dir := t.TempDir()
	k := TCBInfoKey(TEESGX, fmspcA)
	p := docPath(t, dir, k)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = OpenBundle(dir, Options{TrustAnchors: []*x509Cert{pki.root}, Logger: quietLogger()})
	_, serr := LoadStatic(p)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrFileTooLarge) || !errors.Is(serr, ErrFileTooLarge) {
		t.Fatalf("OpenBundle: %v, LoadStatic: %v; want ErrFileTooLarge", err, serr)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("refusing a 1 GiB sparse file (bundle and collateral file) allocated %d bytes", alloc)
	if alloc > 4<<20 {
		t.Fatalf("refusing a 1 GiB sparse file allocated %d bytes", alloc)
	}
}

// TestReadFileLimit: a regular file up to the limit is read; one byte
// more is refused.
func TestReadFileLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(p, 100); err != nil || len(b) != 100 {
		t.Fatalf("at the limit: %d bytes, %v", len(b), err)
	}
	if _, err := ReadFile(p, 99); !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none"), 99); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}
