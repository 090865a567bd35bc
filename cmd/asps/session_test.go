package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/asps-project/asps/devmode"
)

// TestFetchSessionEvidence: an app whose policy sets binding: tcg-nonce is
// served to `asps fetch --session-evidence` (a second quote over the
// connection's TLS exporter) and refused, naming the requirement, without it.
func TestFetchSessionEvidence(t *testing.T) {
	dir := t.TempDir()
	pol := fmt.Appendf(nil, "allow_simulated: true\napps:\n  - id: fresh-only\n    tee: sgx\n    mr_enclave: %x\n    binding: tcg-nonce\n    secrets: {db-password: db-password}\n", devmode.DemoMrEnclave)
	env, err := devmode.Start(context.Background(), devmode.Options{Dir: dir, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()

	code, out, stderr := run(t, "fetch", "--dev-dir", dir, "--session-evidence", "db-password")
	if code != 0 || strings.TrimSpace(out) != string(devmode.DemoSecrets()["db-password"]) {
		t.Fatalf("fetch --session-evidence: exit %d %q %s", code, out, stderr)
	}
	code, _, stderr = run(t, "fetch", "--dev-dir", dir, "db-password")
	if code != 1 || !strings.Contains(stderr, "tcg-nonce") {
		t.Fatalf("fetch without session evidence: exit %d, want 1 naming tcg-nonce:\n%s", code, stderr)
	}
	// whoami judges the session evidence as a release does.
	code, out, stderr = run(t, "whoami", "--dev-dir", dir, "--session-evidence")
	if code != 0 || !regexp.MustCompile(`(?m)^\s*matched_app\s+fresh-only$`).MatchString(out) {
		t.Fatalf("whoami --session-evidence: exit %d, want the matched app fresh-only:\n%s%s", code, out, stderr)
	}
}
