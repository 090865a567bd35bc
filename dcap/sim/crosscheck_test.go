package sim_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
)

// dcapQVL returns the python3 that can import dcap_qvl, or skips the test
// (fails it when ASPS_REQUIRE_DCAPQVL=1, as CI sets).
func dcapQVL(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("ASPS_REQUIRE_DCAPQVL") == "1" {
			t.Fatalf("%s (ASPS_REQUIRE_DCAPQVL=1)", msg)
		}
		t.Skipf("%s: install it with `pip install dcap-qvl` to cross-check the simulator", msg)
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		missing("python3 not found")
	}
	if out, err := exec.Command(py, "-c", "import dcap_qvl").CombinedOutput(); err != nil {
		missing("python3 cannot import dcap_qvl: %s", bytes.TrimSpace(out))
	}
	return py
}

func crosscheckScript(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "sim_crosscheck.py")
}

type qvlVerdict struct {
	Case        string   `json:"case"`
	Accepted    bool     `json:"accepted"`
	Status      string   `json:"status"`
	AdvisoryIDs []string `json:"advisory_ids"`
	Error       string   `json:"error"`
}

// TestDCAPQVLCrossCheck writes simulated cases with sim.WriteCase, has
// dcap-qvl (Phala's Rust verifier, through its Python binding) verify them
// against the simulator root, and compares its verdicts with ours: the
// same status and advisory IDs when we accept, a rejection when we reject.
//
// Cases dcap-qvl cannot judge are left out: SGX quotes v4 and v5 (dcap-qvl
// accepts SGX only as v3). Cases where the two differ on purpose are
// logged, not failed: an expired root certificate (dcap-qvl, like webpki,
// does not check the validity of the trust anchor; asps checks every
// certificate of the chain), and debug enclaves and TDs (dcap-qvl's
// default policy refuses them; asps's verifier reports them and its policy
// refuses them).
func TestDCAPQVLCrossCheck(t *testing.T) {
	py := dcapQVL(t)
	type xcase struct {
		name      string
		opt       sim.Options
		knownDiff string // why dcap-qvl may differ; logged, not failed
	}
	var cases []xcase
	kinds := []quoteKind{quoteKinds[0], quoteKinds[3], quoteKinds[4], quoteKinds[5]} // sgx-v3, tdx-v4, tdx-v5 TD 1.0 and 1.5
	for _, k := range kinds {
		base := sim.Options{TEE: k.tee, QuoteVersion: k.version, BodyType: k.bodyType, ReportData: reportData(k.name)}
		if k.tee == claims.TDX {
			base.Identity = tdxIdentity(false)
			// dcap-qvl's default policy wants no service TD bound.
			base.Identity.MrServiceTD = [48]byte{}
		} else {
			base.Identity = sgxIdentity(false)
		}
		add := func(name string, f func(*sim.Options)) {
			o := base
			f(&o)
			cases = append(cases, xcase{name: k.name + "-" + name, opt: o})
		}
		for _, s := range append(sim.PlatformStatuses(), sim.NoMatchingLevel) {
			add(s, func(o *sim.Options) { o.TCBStatus = s })
		}
		for _, s := range []string{claims.StatusOutOfDate, claims.StatusRevoked, sim.NoMatchingLevel} {
			add("qe-"+s, func(o *sim.Options) { o.QETCBStatus = s })
		}
		add("config-needed-qe-out-of-date", func(o *sim.Options) {
			o.TCBStatus, o.QETCBStatus = claims.StatusConfigurationNeeded, claims.StatusOutOfDate
		})
		o := base
		o.Identity.Debug = true
		cases = append(cases, xcase{name: k.name + "-debug", opt: o,
			knownDiff: "dcap-qvl's default policy refuses debug enclaves and TDs; asps reports Debug and leaves the refusal to the policy"})
		add("platform-ca", func(o *sim.Options) { o.PCKCA = sim.CAPlatform })
		add("processor-ca", func(o *sim.Options) { o.PCKCA = sim.CAProcessor })
		if k.tee == claims.TDX {
			for _, s := range []string{claims.StatusOutOfDate, sim.NoMatchingLevel} {
				add("module-"+s, func(o *sim.Options) { o.TDXModuleTCBStatus = s })
			}
			add("config-sw-module-out-of-date", func(o *sim.Options) {
				o.TCBStatus, o.TDXModuleTCBStatus = claims.StatusConfigurationAndSWHardeningNeeded, claims.StatusOutOfDate
			})
			add("module-mismatch", func(o *sim.Options) { o.TDXModuleMismatch = true })
		}
		// Faults, on the first quote kind of each TEE.
		if k.version == 4 || k.version == 3 {
			for _, f := range []struct {
				name string
				set  func(*sim.Options)
			}{
				{"revoke-pck", func(o *sim.Options) { o.RevokePCK = true }},
				{"revoke-pck-ca", func(o *sim.Options) { o.RevokePCKCA = true }},
				{"revoke-tcb-signing", func(o *sim.Options) { o.RevokeTCBSigning = true }},
				{"collateral-expired", func(o *sim.Options) { o.CollateralExpired = true }},
				{"crl-expired", func(o *sim.Options) { o.CRLExpired = true }},
				{"expired-pck", func(o *sim.Options) { o.ExpiredCert = sim.CertPCK }},
				{"expired-pck-ca", func(o *sim.Options) { o.ExpiredCert = sim.CertPCKCA }},
				{"expired-tcb-signing", func(o *sim.Options) { o.ExpiredCert = sim.CertTCBSigning }},
				{"future-pck", func(o *sim.Options) { o.NotYetValidCert = sim.CertPCK }},
				{"wrong-fmspc", func(o *sim.Options) { o.WrongFMSPC = true }},
				{"root-crl-wrong-key", func(o *sim.Options) { o.CRLWrongKey = sim.CRLRoot }},
				{"pck-crl-wrong-key", func(o *sim.Options) { o.CRLWrongKey = sim.CRLPCK }},
				{"qe-mrsigner", func(o *sim.Options) { o.QEIdentityMismatch = sim.QEMrSigner }},
				{"qe-isvprodid", func(o *sim.Options) { o.QEIdentityMismatch = sim.QEIsvProdID }},
				{"qe-attributes", func(o *sim.Options) { o.QEIdentityMismatch = sim.QEAttributes }},
				{"qe-miscselect", func(o *sim.Options) { o.QEIdentityMismatch = sim.QEMiscSelect }},
				{"tamper-quote-signature", func(o *sim.Options) { o.Tamper = sim.TamperQuoteSignature }},
				{"tamper-qe-report-signature", func(o *sim.Options) { o.Tamper = sim.TamperQEReportSignature }},
				{"tamper-qe-report-data", func(o *sim.Options) { o.Tamper = sim.TamperQEReportData }},
				{"tamper-tcb-info-signature", func(o *sim.Options) { o.Tamper = sim.TamperTCBInfoSignature }},
				{"tamper-qe-identity-signature", func(o *sim.Options) { o.Tamper = sim.TamperQEIdentitySignature }},
				{"tamper-qe-vendor", func(o *sim.Options) { o.Tamper = sim.TamperQEVendor }},
			} {
				add(f.name, f.set)
			}
			o := base
			o.ExpiredCert = sim.CertRoot
			cases = append(cases, xcase{name: k.name + "-expired-root", opt: o,
				knownDiff: "dcap-qvl does not check the validity of the trust anchor certificate"})
		}
	}

	dir := t.TempDir()
	args := []string{crosscheckScript(t)}
	byDir := map[string]xcase{}
	for _, c := range cases {
		c.opt.Now = now
		d := filepath.Join(dir, c.name)
		if err := sim.WriteCase(d, c.opt); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		args = append(args, d)
		byDir[d] = c
	}
	cmd := exec.Command(py, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sim_crosscheck.py: %v\n%s", err, stderr.Bytes())
	}

	var seen, agreeAccept, agreeReject int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var qv qvlVerdict
		if err := json.Unmarshal(sc.Bytes(), &qv); err != nil {
			t.Fatalf("sim_crosscheck.py output %q: %v", sc.Bytes(), err)
		}
		c, ok := byDir[qv.Case]
		if !ok {
			t.Fatalf("sim_crosscheck.py: unknown case %q", qv.Case)
		}
		seen++
		t.Run(c.name, func(t *testing.T) {
			q, err := os.ReadFile(filepath.Join(qv.Case, "quote.bin"))
			if err != nil {
				t.Fatal(err)
			}
			cj, err := os.ReadFile(filepath.Join(qv.Case, "collateral.json"))
			if err != nil {
				t.Fatal(err)
			}
			col, err := dcap.ParseCollateralJSON(cj)
			if err != nil {
				t.Fatal(err)
			}
			pki := c.opt.PKI
			if pki == nil {
				if pki, err = sim.DefaultPKI(); err != nil {
					t.Fatal(err)
				}
			}
			res, err := dcap.NewVerifier(dcap.WithTrustAnchors(pki.Root)).Verify(q, col, now)
			ours := err == nil
			if c.knownDiff != "" {
				t.Logf("known difference (%s): asps accepted=%v (%v), dcap-qvl accepted=%v %s", c.knownDiff, ours, err, qv.Accepted, qv.Error)
				return
			}
			switch {
			case ours && !qv.Accepted:
				t.Errorf("asps accepts (%s %v), dcap-qvl rejects: %s", res.TCBStatus, res.AdvisoryIDs, qv.Error)
			case !ours && qv.Accepted:
				t.Errorf("asps rejects (%v), dcap-qvl accepts: %s %v", err, qv.Status, qv.AdvisoryIDs)
			case ours:
				if res.TCBStatus != qv.Status || !slices.Equal(res.AdvisoryIDs, qv.AdvisoryIDs) {
					t.Errorf("asps %s %v, dcap-qvl %s %v", res.TCBStatus, res.AdvisoryIDs, qv.Status, qv.AdvisoryIDs)
				}
				agreeAccept++
			default:
				// Both reject. A revoked TCB is a rejection in both, with
				// the status still known to asps.
				if errors.Is(err, dcap.ErrTCBRevoked) && res.TCBStatus != claims.StatusRevoked {
					t.Errorf("revoked TCB reported as %s", res.TCBStatus)
				}
				t.Logf("both reject: asps %v | dcap-qvl %s", dcap.ReasonOf(err), qv.Error)
				agreeReject++
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != len(cases) {
		t.Fatalf("dcap-qvl judged %d of %d cases\n%s", seen, len(cases), stderr.Bytes())
	}
	t.Logf("%d cases: %d accepted by both with the same status and advisories, %d rejected by both", seen, agreeAccept, agreeReject)
}
