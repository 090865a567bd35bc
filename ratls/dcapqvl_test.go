package ratls

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap/sim"
)

// TestOurQuoteVerifiesWithDCAPQVL: the quote inside one of our RA-TLS
// certificates verifies with dcap-qvl, an independent verifier, under the
// simulator's root — so what we issue is Intel-shaped, not just shaped
// like our own parser.
func TestOurQuoteVerifiesWithDCAPQVL(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(py, "-c", "import dcap_qvl").Run()
	}
	if err != nil {
		if os.Getenv("ASPS_REQUIRE_DCAPQVL") == "1" {
			t.Fatalf("python3 with dcap_qvl is required (ASPS_REQUIRE_DCAPQVL=1): %v", err)
		}
		t.Skipf("python3 with dcap_qvl not available (pip install dcap-qvl): %v", err)
	}
	for _, tee := range []claims.TEE{claims.SGX, claims.TDX} {
		t.Run(string(tee), func(t *testing.T) {
			now := time.Now().UTC().Truncate(time.Second)
			a, err := sim.NewAttester(sim.Options{TEE: tee, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			cert, err := NewCertificate(context.Background(), a, CertOptions{})
			if err != nil {
				t.Fatal(err)
			}
			evs, err := FindEvidence(cert.Leaf, DefaultMaxEvidenceSize)
			if err != nil || len(evs) == 0 {
				t.Fatalf("evidence: %v", err)
			}
			col, err := a.Collateral(now)
			if err != nil {
				t.Fatal(err)
			}
			colJSON, err := col.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			exp, _ := json.Marshal(map[string]string{"verify_at": now.Format(time.RFC3339)})
			for name, b := range map[string][]byte{"quote.bin": evs[0].Quote, "collateral.json": colJSON, "root.pem": a.Options().PKI.RootPEM(), "expected.json": exp} {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, file, _, _ := runtime.Caller(0)
			script := filepath.Join(filepath.Dir(file), "..", "scripts", "sim_crosscheck.py")
			out, err := exec.Command(py, script, dir).CombinedOutput()
			if err != nil {
				t.Fatalf("sim_crosscheck.py: %v\n%s", err, out)
			}
			var r struct {
				Accepted bool   `json:"accepted"`
				Status   string `json:"status"`
				Error    string `json:"error"`
			}
			if err := json.Unmarshal([]byte(strings.TrimSpace(string(out))), &r); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if !r.Accepted || r.Status != claims.StatusUpToDate {
				t.Fatalf("dcap-qvl: accepted %v status %q error %q", r.Accepted, r.Status, r.Error)
			}
		})
	}
}
