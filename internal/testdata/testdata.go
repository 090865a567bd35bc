// Package testdata locates the shared real-hardware corpus
// (../shared/testdata from the repository root) for tests. The corpus is
// read in place, never copied into the repository.
package testdata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the corpus directory, or skips the test with a clear message
// when it is absent (a checkout without ../shared). Set ASPS_TESTDATA to
// point elsewhere; CI sets ASPS_REQUIRE_TESTDATA=1, which turns the skip
// into a failure.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("ASPS_TESTDATA"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	d := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata")
	if _, err := os.Stat(filepath.Join(d, "dcap")); err != nil {
		if os.Getenv("ASPS_REQUIRE_TESTDATA") == "1" {
			t.Fatalf("shared corpus not found at %s (ASPS_REQUIRE_TESTDATA=1)", d)
		}
		t.Skipf("shared corpus not found at %s: these tests read ../shared/testdata beside the repository", d)
	}
	return d
}

// Path joins elements under the corpus directory.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{Dir(t)}, elem...)...)
}

// Read reads a corpus file or fails the test.
func Read(t testing.TB, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
