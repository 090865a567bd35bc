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

// The policy file is rewritten in place (an editor, `cat >`, a config tool
// writing in chunks, a disk filling up mid-write). The watcher reads it as
// soon as its size or time changes, so a prefix of the new file that
// happens to be a valid policy — here the app's min_isv_svn line is not
// written yet — is put in force: an older, vulnerable build (SVN 1) is
// served until the rest of the file lands. A half-written file must never
// be in force (reload only a file that has stopped changing, or only an
// atomically replaced one).
func TestAttack_PolicyHalfWrittenFileReloaded(t *testing.T) {
	const app = `apps:
  - id: web
    tee: sgx
    mr_enclave: ` + hexE1 + `
    secrets:
      tls_key: kv2:secret/web/tls#key
`
	const svn = "    min_isv_svn: 2\n"
	const more = `  - id: batch
    tee: sgx
    mr_enclave: ` + hexE2 + `
    secrets:
      image_key: occlum/1/image_key
`
	v1 := app + svn
	v2 := app + svn + more // the edit adds an app; web keeps its SVN floor
	prefix := app          // what is on disk while the writer is between chunks

	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHolder(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := sgxClaims(t, hexE1, hexS1, 0, 1)
	if _, err := h.Match(old); err == nil {
		t.Fatal("setup: v1 admits SVN 1")
	}
	if _, err := Parse([]byte(prefix), "yaml"); err != nil {
		t.Fatalf("setup: the prefix must be a valid policy: %v", err)
	}

	rec := &digestLog{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const interval = 10 * time.Millisecond
	done := make(chan struct{})
	go func() { h.Watch(ctx, interval, slog.New(rec)); close(done) }()
	defer func() { cancel(); <-done }()

	// The writer truncates, writes its first chunk, and is slow to write the
	// rest (20 polls here; on a real server, 2 s polls and a slow disk or a
	// full one). Meanwhile an old build keeps asking.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(prefix); err != nil {
		t.Fatal(err)
	}
	admitted := false
	for end := time.Now().Add(20 * interval); time.Now().Before(end); time.Sleep(interval / 2) {
		if _, err := h.Match(old); err == nil {
			admitted = true
		}
	}
	if _, err := f.WriteString(svn + more); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := mustParse(t, v2, "yaml").Digest
	for deadline := time.Now().Add(10 * time.Second); h.Policy().Digest != want; time.Sleep(interval) {
		if time.Now().After(deadline) {
			t.Fatal("the complete file was never loaded")
		}
	}
	if admitted {
		t.Errorf("while the file was half-written, the policy in force admitted SVN 1 of app web (min_isv_svn 2 in both versions)")
	}
	if pd := mustParse(t, prefix, "yaml").Digest; rec.has(pd) {
		t.Errorf("the half-written file (sha256 %s) was put in force; reloads: %v", pd[:12], rec.all())
	}
}

// digestLog records the sha256 attribute of every log record.
type digestLog struct {
	mu  sync.Mutex
	sha []string
}

func (d *digestLog) Enabled(context.Context, slog.Level) bool { return true }
func (d *digestLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "sha256" {
			d.mu.Lock()
			d.sha = append(d.sha, a.Value.String())
			d.mu.Unlock()
		}
		return true
	})
	return nil
}
func (d *digestLog) WithAttrs([]slog.Attr) slog.Handler { return d }
func (d *digestLog) WithGroup(string) slog.Handler      { return d }

func (d *digestLog) has(sha string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.sha {
		if strings.HasPrefix(s, sha) {
			return true
		}
	}
	return false
}

func (d *digestLog) all() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, len(d.sha))
	for i, s := range d.sha {
		out[i] = s[:min(12, len(s))]
	}
	return out
}

// TestAttack_TDXPolicyPinnedByRTMR0DoesNotPinCode: RTMR0 is where the TD
// virtual firmware measures its own configuration — the TD HOB and the
// configuration firmware volume, i.e. the ACPI tables and secure-boot
// variables the VMM hands it — before any guest code runs. The OS loader
// and kernel go into RTMR1, the command line and initrd into RTMR2. A cloud
// gives every tenant of an instance type the same firmware (MRTD) and the
// same VMM configuration (RTMR0), so "mr_td and rtmr0" is what any tenant's
// TD shows, whatever kernel it boots: the app is pinned by the cloud's
// firmware, not by code. The rule "mr_td and one of rtmr0-2" must not be
// satisfied by rtmr0 alone (nor may rtmr0 stand in for the kernel when a
// TD with another kernel asks).
func TestAttack_TDXPolicyPinnedByRTMR0DoesNotPinCode(t *testing.T) {
	const rtmr0 = "0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d" // the cloud's TDVF configuration
	doc := "apps:\n  - id: td\n    tee: tdx\n    mr_td: " + hexT1 + "\n    rtmr0: " + rtmr0 + "\n    secrets: {k: v}\n"
	p, err := Parse([]byte(doc), "yaml")
	if err != nil {
		if !errors.Is(err, ErrNoSelector) {
			t.Fatalf("refused, but not as a policy that pins no code (ErrNoSelector): %v", err)
		}
		return // refused at load: the fix
	}
	// The attacker rents the same instance type (same MRTD, same RTMR0)
	// and boots its own kernel, command line and initrd.
	attacker := tdxClaims(t, hexT1, hexZ2) // its own kernel in RTMR1
	attacker.TDX.Rtmr0 = mustHex(t, rtmr0)
	attacker.TDX.Rtmr2 = mustHex(t, hexO1) // its own command line
	if a, err := p.Match(attacker); err == nil {
		t.Fatalf("a TD with the cloud's firmware and configuration and another kernel matched app %q: mr_td + rtmr0 does not pin code", a.ID)
	}
}

// TestAttack_TDXPolicyPinnedByKernelAloneAdmitsAnyCommandLine: with the
// usual direct boot (the VMM passes kernel, command line and initrd to the
// TD firmware), the firmware measures the kernel into RTMR1 and the
// command line and initrd into RTMR2; with a boot loader, grub measures
// the kernel, initrd and its commands into RTMR2 and RTMR1 holds only
// shim/grub. "mr_td and rtmr1" therefore admits the same kernel booted
// with the attacker's command line (rdinit=/bin/sh, init=…) or initrd — the
// whole user space — and the policy loads without a word. Pinning code
// needs rtmr1 and rtmr2 (or a warning/refusal that says what is left open).
func TestAttack_TDXPolicyPinnedByKernelAloneAdmitsAnyCommandLine(t *testing.T) {
	doc := "apps:\n  - id: td\n    tee: tdx\n    mr_td: " + hexT1 + "\n    rtmr1: " + hexR1 + "\n    secrets: {k: v}\n"
	p, err := Parse([]byte(doc), "yaml")
	if err != nil {
		if !errors.Is(err, ErrNoSelector) {
			t.Fatalf("refused, but not as a policy that pins no code (ErrNoSelector): %v", err)
		}
		return
	}
	attacker := tdxClaims(t, hexT1, hexR1) // the victim's firmware and kernel
	attacker.TDX.Rtmr2 = mustHex(t, hexO1) // rdinit=/attacker, its own initrd
	if a, err := p.Match(attacker); err == nil {
		t.Fatalf("the victim's kernel with another command line and initrd matched app %q: mr_td + rtmr1 does not pin the user space", a.ID)
	}
}
