package filewatch

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// loaded is a Target whose value is the file's content.
type loaded struct {
	mu   sync.Mutex
	path string
	cur  string
	all  []string
}

func (l *loaded) target() Target {
	return Target{
		Path: l.path, Read: os.ReadFile,
		Digest: func() string { l.mu.Lock(); defer l.mu.Unlock(); return Digest([]byte(l.cur)) },
		Reload: func(want string) error {
			b, err := os.ReadFile(l.path)
			if err != nil {
				return err
			}
			if Digest(b) != want {
				return ErrChanged
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			l.cur = string(b)
			l.all = append(l.all, l.cur)
			return nil
		},
		Reloaded: func(*slog.Logger) {},
	}
}

func (l *loaded) value() string { l.mu.Lock(); defer l.mu.Unlock(); return l.cur }

func (l *loaded) history() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

func watch(t *testing.T, content string) (*loaded, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &loaded{path: path, cur: content}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Watch(ctx, 5*time.Millisecond, nil, l.target()); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l, path
}

func waitFor(t *testing.T, l *loaded, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); l.value() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never loaded %q (in force %q)", want, l.value())
		}
	}
}

// TestAttack_TornFileNeverInForce: a file replaced atomically is loaded; a
// file rewritten in place is loaded only after its writer closed it, and
// no prefix of it is ever in force.
func TestAttack_TornFileNeverInForce(t *testing.T) {
	t.Run("atomic rename", func(t *testing.T) {
		l, path := watch(t, "v1")
		tmp := path + ".new"
		if err := os.WriteFile(tmp, []byte("v2"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		waitFor(t, l, "v2")
	})
	t.Run("in place, writer stalls with the file open", func(t *testing.T) {
		stalledWriterNeverInForce(t, func(path string) (*os.File, error) {
			return os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		})
	})
}

// stalledWriterNeverInForce: a writer opens the watched file with open,
// writes a prefix, stalls for 20 polls with it on disk, then completes;
// only the complete content is ever put in force.
func stalledWriterNeverInForce(t *testing.T, open func(path string) (*os.File, error)) {
	t.Helper()
	l, path := watch(t, "v1")
	time.Sleep(20 * time.Millisecond) // the watch is armed
	w, err := open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("v2-"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // 20 polls with a stable prefix on disk
	if _, err := w.WriteString("complete"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, l, "v2-complete")
	for _, v := range l.history() {
		if v != "v2-complete" {
			t.Fatalf("put in force while half-written: %q (history %q)", v, l.history())
		}
	}
}
