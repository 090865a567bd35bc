package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap/sim"
)

// simServerDir lays out, in a new temporary directory, what `asps server`
// on a simulator root needs: the simulator PKI (dir/pki, for workloads'
// --dev-dir), its root (root.pem, for --insecure-simulator-root) and an
// offline collateral bundle of the simulated platform (bundle/, for
// --collateral-dir). write puts a file in dir and returns its path.
func simServerDir(t *testing.T, seed string) (dir, root, bundle string, write func(name string, b []byte) string) {
	t.Helper()
	dir = t.TempDir()
	pki, err := sim.NewPKI([]byte(seed))
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Save(filepath.Join(dir, "pki")); err != nil {
		t.Fatal(err)
	}
	write = func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root = write("root.pem", pki.RootPEM())
	a, err := sim.NewAttester(sim.Options{PKI: pki, TEE: claims.SGX})
	if err != nil {
		t.Fatal(err)
	}
	col, err := a.Collateral(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	colJSON, err := col.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	bundle = filepath.Join(dir, "bundle")
	if code, _, stderr := run(t, "collateral", "import", write("collateral.json", colJSON), "--trust-root", root, "--out", bundle); code != 0 {
		t.Fatalf("collateral import: %s", stderr)
	}
	return dir, root, bundle, write
}
