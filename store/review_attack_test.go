package store

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The secrets file is rewritten in place and the writer is between chunks
// (a slow disk, a config tool flushing 4 KiB at a time, a disk that filled
// up): what is on disk ends in the middle of a value. The watcher reloads
// as soon as the size changes, and a YAML line cut short is still a valid
// line, so the store serves a truncated secret — a value that is neither
// the old nor the new one (a wrong disk key, a password cut to a few
// characters) — to every workload that asks meanwhile. A half-written file
// must never be in force.
func TestAttack_SecretsFileHalfWrittenValueServed(t *testing.T) {
	const oldV, newV = "correct horse battery staple", "tr0ub4dor&3-and-a-much-longer-passphrase"
	v1 := "db-password: " + oldV + "\n"
	v2 := "db-password: " + newV + "\n"
	prefix := v2[:len("db-password: ")+6] // "db-password: tr0ub4"

	path := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	const interval = 10 * time.Millisecond
	done := make(chan struct{})
	go func() { f.Watch(ctx, interval, slog.New(slog.DiscardHandler)); close(done) }()
	defer func() { cancel(); <-done }()

	get := func() string {
		v, err := f.Get(context.Background(), Request{Name: "db-password", Ref: "db-password"})
		if err != nil {
			return "error: " + err.Error()
		}
		return string(v)
	}
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString(prefix); err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for end := time.Now().Add(20 * interval); time.Now().Before(end); time.Sleep(interval / 2) {
		served[get()] = true
	}
	if _, err := w.WriteString(v2[len(prefix):]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); get() != newV; time.Sleep(interval) {
		if time.Now().After(deadline) {
			t.Fatal("the complete file was never loaded")
		}
	}
	for v := range served {
		if v != oldV && v != newV {
			t.Errorf("while the file was half-written the store served a %d-byte value: neither the old value nor the new one (a truncated secret)", len(v))
		}
	}
}
