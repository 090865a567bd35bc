package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAttack_PolicyImportOutKeepsWorldReadableMode: `asps policy import
// --out FILE` says it writes "mode 0600: it may hold store tokens" (Intel
// ASPS's app_token becomes store_token), but opens FILE with O_CREATE |
// O_TRUNC, which applies the mode only to a new file: re-importing over an
// existing policy.yaml that is 0644 (as config files usually are) writes
// the Vault tokens into a world-readable file.
func TestAttack_PolicyImportOutKeepsWorldReadableMode(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "policy_vault.json")
	const token = "hvs.CAESIreviewtokenreviewtoken"
	intel := `{"kms": "vault", "addr": "https://vault:8200", "app_list": [{"id": 1,
	  "mr_enclave": "88e2b4e857484d7ae982ab5cfd96f2600ac665b3abf9da2c4ea2f805d5b071cf",
	  "app_token": "` + token + `", "secrets": {"image_key": "occlum/1/image_key"}}]}`
	if err := os.WriteFile(src, []byte(intel), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(out, []byte("# the previous import\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "policy", "import", src, "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), token) {
		t.Fatalf("setup: the imported policy does not carry the store token:\n%s", b)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m&0o077 != 0 {
		t.Fatalf("the imported policy holding a Vault token is mode %v (readable by others), want 0600", m)
	}
}
