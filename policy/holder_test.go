package policy

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeFile replaces the file atomically (as configuration tools do: a
// watcher never sees it half written) and moves its modification time on,
// so that a rewrite within the file system's timestamp granularity is seen.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		t.Fatal(err)
	}
	mod := fi.ModTime()
	if prev, ok := lastMod.Load(path); ok && !mod.After(prev.(time.Time)) {
		mod = prev.(time.Time).Add(time.Second)
	}
	lastMod.Store(path, mod)
	if err := os.Chtimes(tmp, mod, mod); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

var lastMod sync.Map // path -> time.Time

var refuseSimulated = func(p *Policy) error {
	if p.AllowSimulated {
		return errors.New("production mode: allow_simulated is refused")
	}
	return nil
}

func TestHolderReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, sgxApp)
	h, err := NewHolder(path, refuseSimulated)
	if err != nil {
		t.Fatal(err)
	}
	first := h.Policy()
	if h.Path() != path || first.Source != path || first.App("web") == nil {
		t.Fatalf("initial policy %+v", first)
	}
	if a, err := h.Match(sgxClaims(t, hexE1, hexS1, 0, 0)); err != nil || a.ID != "web" {
		t.Fatalf("Match: %v %v", a, err)
	}

	bad := []struct {
		name   string
		doc    string
		reason error
	}{
		{"placeholder measurement", strings.Replace(sgxApp, hexE1, "abc", 1), ErrBadMeasurement},
		{"syntax", "apps: [", ErrSyntax},
		{"refused by the server's check", "allow_simulated: true\n" + sgxApp, nil},
	}
	for _, b := range bad {
		writeFile(t, path, b.doc)
		err := h.Reload()
		if err == nil {
			t.Fatalf("%s: reloaded", b.name)
		}
		if b.reason != nil && !errors.Is(err, b.reason) {
			t.Errorf("%s: %v", b.name, err)
		}
		if !strings.Contains(err.Error(), "keeping sha256 "+first.Digest[:16]) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error does not say what is kept: %v", b.name, err)
		}
		if h.Policy() != first {
			t.Fatalf("%s: policy replaced", b.name)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err == nil || h.Policy() != first {
		t.Fatalf("missing file: %v", err)
	}

	writeFile(t, path, strings.Replace(sgxApp, hexE1, hexE2, 1))
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if h.Policy() == first || h.Policy().Apps[0].SGX.MrEnclave.String() != hexE2 {
		t.Fatal("good file not loaded")
	}
	if _, err := h.Match(sgxClaims(t, hexE1, hexS1, 0, 0)); !errors.Is(err, ErrNoMatchingApp) {
		t.Errorf("old measurement still matches: %v", err)
	}
}

func TestNewHolderRefuses(t *testing.T) {
	dir := t.TempDir()
	sim := filepath.Join(dir, "sim.yaml")
	writeFile(t, sim, "allow_simulated: true\n"+sgxApp)
	if _, err := NewHolder(sim, refuseSimulated); err == nil || !strings.Contains(err.Error(), "allow_simulated") {
		t.Errorf("production check: %v", err)
	}
	if h, err := NewHolder(sim, nil); err != nil || !h.Policy().AllowSimulated {
		t.Errorf("dev mode: %v", err)
	}
	if _, err := NewHolder(filepath.Join(dir, "none.yaml"), nil); err == nil {
		t.Error("missing file accepted")
	}
}

func TestWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, sgxApp)
	h, err := NewHolder(path, refuseSimulated)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		h.Watch(ctx, 5*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; logs:\n%s", what, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	mrEnclave := func() string { return h.Policy().Apps[0].SGX.MrEnclave.String() }

	writeFile(t, path, strings.Replace(sgxApp, hexE1, hexE2, 1))
	waitFor("the change", func() bool { return mrEnclave() == hexE2 })
	waitFor("the reload log", func() bool { return strings.Contains(logs.String(), "policy reloaded") })

	good := h.Policy()
	writeFile(t, path, strings.Replace(sgxApp, hexE1, "abc", 1))
	waitFor("the failure log", func() bool { return strings.Contains(logs.String(), "policy reload failed") })
	if h.Policy() != good {
		t.Fatal("bad file replaced the policy")
	}
	if !strings.Contains(logs.String(), "bad measurement") {
		t.Errorf("failure log lacks the reason:\n%s", logs.String())
	}

	// Touching the file without changing it reloads nothing.
	writeFile(t, path, strings.Replace(sgxApp, hexE1, hexE3, 1))
	waitFor("the fix", func() bool { return mrEnclave() == hexE3 })
	fixed := h.Policy()
	writeFile(t, path, strings.Replace(sgxApp, hexE1, hexE3, 1))
	time.Sleep(50 * time.Millisecond)
	if h.Policy() != fixed {
		t.Error("unchanged content reloaded")
	}
	if n := strings.Count(logs.String(), "policy reload failed"); n != 1 {
		t.Errorf("%d failure logs for one bad content", n)
	}
}

func TestFixedHolder(t *testing.T) {
	p := mustParse(t, sgxApp, "yaml")
	h := NewFixedHolder(p)
	if h.Policy() != p || h.Path() != "" {
		t.Fatal("policy not held")
	}
	if err := h.Reload(); err == nil || h.Policy() != p {
		t.Errorf("Reload: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.Watch(ctx, time.Millisecond, nil) // returns at once: nothing to watch
	if a, err := h.Match(sgxClaims(t, hexE1, hexS1, 0, 0)); err != nil || a.ID != "web" {
		t.Errorf("Match: %v", err)
	}
}
