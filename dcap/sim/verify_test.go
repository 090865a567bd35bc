package sim_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
)

// The verifier matrix: simulated quotes through dcap.Verifier, anchored at
// the simulator root.

type quoteKind struct {
	name     string
	tee      claims.TEE
	version  int
	bodyType int
}

var quoteKinds = []quoteKind{
	{"sgx-v3", claims.SGX, 3, 0},
	{"sgx-v4", claims.SGX, 4, 0},
	{"sgx-v5", claims.SGX, 5, 1},
	{"tdx-v4", claims.TDX, 4, 0},
	{"tdx-v5-td10", claims.TDX, 5, 2},
	{"tdx-v5-td15", claims.TDX, 5, 3},
}

func verify(t *testing.T, c *sim.Case) (*dcap.Result, error) {
	t.Helper()
	return dcap.NewVerifier(dcap.WithTrustAnchors(c.Root)).Verify(c.Quote, c.Collateral, c.At)
}

// TestVerifierStatuses: for every quote kind and every TCB status (of the
// platform, the QE, the TDX module), the verifier reports the status and
// the advisories the simulator set up.
func TestVerifierStatuses(t *testing.T) {
	type statusCase struct {
		name                 string
		platform, qe, tdxMod string
		want                 string
	}
	var cases []statusCase
	for _, s := range sim.PlatformStatuses() {
		cases = append(cases, statusCase{name: s, platform: s, want: s})
	}
	cases = append(cases,
		statusCase{"qe-out-of-date", "", claims.StatusOutOfDate, "", claims.StatusOutOfDate},
		statusCase{"qe-out-of-date-config-needed", claims.StatusConfigurationNeeded, claims.StatusOutOfDate, "", claims.StatusOutOfDateConfigurationNeeded},
		statusCase{"qe-out-of-date-sw-hardening", claims.StatusSWHardeningNeeded, claims.StatusOutOfDate, "", claims.StatusOutOfDate},
		statusCase{"qe-revoked", "", claims.StatusRevoked, "", claims.StatusRevoked},
		statusCase{"module-out-of-date", "", "", claims.StatusOutOfDate, claims.StatusOutOfDate},
		statusCase{"module-out-of-date-config-sw", claims.StatusConfigurationAndSWHardeningNeeded, "", claims.StatusOutOfDate, claims.StatusOutOfDateConfigurationNeeded},
	)
	for _, k := range quoteKinds {
		for _, s := range cases {
			if s.tdxMod != "" && k.tee != claims.TDX {
				continue
			}
			t.Run(k.name+"/"+s.name, func(t *testing.T) {
				c := newCase(t, sim.Options{TEE: k.tee, QuoteVersion: k.version, BodyType: k.bodyType,
					TCBStatus: s.platform, QETCBStatus: s.qe, TDXModuleTCBStatus: s.tdxMod, ReportData: reportData(s.name)})
				if c.Expected.Status != s.want {
					t.Fatalf("simulator expects %s, the table %s", c.Expected.Status, s.want)
				}
				res, err := verify(t, c)
				if s.want == claims.StatusRevoked {
					if !errors.Is(err, dcap.ErrTCBRevoked) || !errors.Is(c.WantErr, dcap.ErrTCBRevoked) {
						t.Fatalf("revoked TCB: %v (WantErr %v)", err, c.WantErr)
					}
				} else if err != nil || c.WantErr != nil {
					t.Fatalf("Verify: %v (WantErr %v)", err, c.WantErr)
				}
				if res == nil {
					t.Fatal("no result")
				}
				if res.TCBStatus != s.want {
					t.Errorf("status %s, want %s", res.TCBStatus, s.want)
				}
				if !slices.Equal(res.AdvisoryIDs, c.Expected.AdvisoryIDs) {
					t.Errorf("advisories %v, want %v", res.AdvisoryIDs, c.Expected.AdvisoryIDs)
				}
				if res.PlatformTCBStatus != c.Expected.PlatformStatus || res.QETCBStatus != c.Expected.QEStatus {
					t.Errorf("platform %s QE %s, want %s %s", res.PlatformTCBStatus, res.QETCBStatus, c.Expected.PlatformStatus, c.Expected.QEStatus)
				}
				if k.tee == claims.TDX && res.TDXModuleTCBStatus != c.Expected.TDXModuleStatus {
					t.Errorf("TDX module %s, want %s", res.TDXModuleTCBStatus, c.Expected.TDXModuleStatus)
				}
				if !res.Simulated || res.QuoteVersion != k.version || res.TEE != k.tee || res.FMSPC != c.Options.FMSPC {
					t.Errorf("claims %+v", res.Claims)
				}
				if !res.RevocationChecked {
					t.Error("revocation not checked")
				}
				if res.TCBEvaluationDataNumber != 17 {
					t.Errorf("TCB evaluation data number %d", res.TCBEvaluationDataNumber)
				}
			})
		}
	}
}

// TestVerifierClaims: the verified claims are the identity the simulator
// was given.
func TestVerifierClaims(t *testing.T) {
	for _, k := range quoteKinds {
		for _, debug := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/debug=%v", k.name, debug), func(t *testing.T) {
				id := sgxIdentity(debug)
				if k.tee == claims.TDX {
					id = tdxIdentity(debug)
				}
				rd := reportData(k.name)
				c := newCase(t, sim.Options{TEE: k.tee, QuoteVersion: k.version, BodyType: k.bodyType, Identity: id, ReportData: rd})
				res, err := verify(t, c)
				if err != nil {
					t.Fatal(err)
				}
				if res.Debug != debug || res.ReportData.String() != claims.Hex(rd[:]).String() {
					t.Errorf("debug %v report data %s", res.Debug, res.ReportData)
				}
				if k.tee == claims.SGX {
					s := res.SGX
					if s == nil || res.TDX != nil {
						t.Fatal("no SGX identity")
					}
					if s.MrEnclave.String() != claims.Hex(id.MrEnclave[:]).String() || s.MrSigner.String() != claims.Hex(id.MrSigner[:]).String() ||
						s.IsvProdID != id.IsvProdID || s.IsvSvn != id.IsvSVN || s.ConfigSvn != id.ConfigSVN ||
						s.ConfigID.String() != claims.Hex(id.ConfigID[:]).String() || s.MiscSelect != id.MiscSelect || !s.Mode64 {
						t.Errorf("SGX claims %+v", s)
					}
					return
				}
				d := res.TDX
				if d == nil || res.SGX != nil {
					t.Fatal("no TDX identity")
				}
				for _, f := range []struct {
					got  claims.Hex
					want []byte
				}{{d.MrTd, id.MrTD[:]}, {d.Rtmr0, id.Rtmr[0][:]}, {d.Rtmr1, id.Rtmr[1][:]}, {d.Rtmr2, id.Rtmr[2][:]}, {d.Rtmr3, id.Rtmr[3][:]},
					{d.MrConfigID, id.MrConfigID[:]}, {d.MrOwner, id.MrOwner[:]}, {d.MrOwnerConfig, id.MrOwnerConfig[:]}, {d.MrSeam, id.MrSeam[:]}, {d.Xfam, id.Xfam[:]}} {
					if f.got.String() != claims.Hex(f.want).String() {
						t.Errorf("TDX claim %s, want %x", f.got, f.want)
					}
				}
				if k.bodyType == dcap.BodyTypeTD15 && d.MrServiceTd.String() != claims.Hex(id.MrServiceTD[:]).String() {
					t.Errorf("MRSERVICETD %s", d.MrServiceTd)
				}
			})
		}
	}
}

// TestVerifierFaults: each knob makes the verifier reject for its reason,
// and Case.WantErr names that reason.
func TestVerifierFaults(t *testing.T) {
	faults := []struct {
		name string
		opt  sim.Options
		want error
		tdx  bool // TDX only
	}{
		{"revoke-pck", sim.Options{RevokePCK: true}, dcap.ErrPCKRevoked, false},
		{"revoke-pck-ca", sim.Options{RevokePCKCA: true}, dcap.ErrIntermediateRevoked, false},
		{"revoke-tcb-signing", sim.Options{RevokeTCBSigning: true}, dcap.ErrTCBSigningRevoked, false},
		{"collateral-expired", sim.Options{CollateralExpired: true}, dcap.ErrCollateralExpired, false},
		{"collateral-not-yet-valid", sim.Options{CollateralNotYetValid: true}, dcap.ErrCollateralExpired, false},
		{"crl-expired", sim.Options{CRLExpired: true}, dcap.ErrCRLExpired, false},
		{"expired-pck", sim.Options{ExpiredCert: sim.CertPCK}, dcap.ErrCertExpired, false},
		{"expired-pck-ca", sim.Options{ExpiredCert: sim.CertPCKCA}, dcap.ErrCertExpired, false},
		{"expired-root", sim.Options{ExpiredCert: sim.CertRoot}, dcap.ErrCertExpired, false},
		{"expired-tcb-signing", sim.Options{ExpiredCert: sim.CertTCBSigning}, dcap.ErrCertExpired, false},
		{"future-pck", sim.Options{NotYetValidCert: sim.CertPCK}, dcap.ErrCertExpired, false},
		{"future-tcb-signing", sim.Options{NotYetValidCert: sim.CertTCBSigning}, dcap.ErrCertExpired, false},
		{"wrong-fmspc", sim.Options{WrongFMSPC: true}, dcap.ErrFMSPCMismatch, false},
		{"wrong-pceid", sim.Options{WrongPCEID: true}, dcap.ErrPCEIDMismatch, false},
		{"root-crl-wrong-key", sim.Options{CRLWrongKey: sim.CRLRoot}, dcap.ErrCRLInvalid, false},
		{"pck-crl-wrong-key", sim.Options{CRLWrongKey: sim.CRLPCK}, dcap.ErrCRLInvalid, false},
		{"qe-mrsigner", sim.Options{QEIdentityMismatch: sim.QEMrSigner}, dcap.ErrQEIdentityMismatch, false},
		{"qe-isvprodid", sim.Options{QEIdentityMismatch: sim.QEIsvProdID}, dcap.ErrQEIdentityMismatch, false},
		{"qe-attributes", sim.Options{QEIdentityMismatch: sim.QEAttributes}, dcap.ErrQEIdentityMismatch, false},
		{"qe-miscselect", sim.Options{QEIdentityMismatch: sim.QEMiscSelect}, dcap.ErrQEIdentityMismatch, false},
		{"qe-no-level", sim.Options{QETCBStatus: sim.NoMatchingLevel}, dcap.ErrQENoMatchingTCBLevel, false},
		{"no-tcb-level", sim.Options{TCBStatus: sim.NoMatchingLevel}, dcap.ErrNoMatchingTCBLevel, false},
		{"tamper-quote-signature", sim.Options{Tamper: sim.TamperQuoteSignature}, dcap.ErrQuoteSignature, false},
		{"tamper-qe-report-signature", sim.Options{Tamper: sim.TamperQEReportSignature}, dcap.ErrQEReportSignature, false},
		{"tamper-qe-report-data", sim.Options{Tamper: sim.TamperQEReportData}, dcap.ErrQEReportData, false},
		{"tamper-tcb-info-signature", sim.Options{Tamper: sim.TamperTCBInfoSignature}, dcap.ErrTCBInfoSignature, false},
		{"tamper-qe-identity-signature", sim.Options{Tamper: sim.TamperQEIdentitySignature}, dcap.ErrQEIdentitySignature, false},
		{"tamper-qe-vendor", sim.Options{Tamper: sim.TamperQEVendor}, dcap.ErrQEVendor, false},
		{"pck-chain-only", sim.Options{CertData: sim.CertDataPCKChainOnly}, dcap.ErrMalformed, false},
		{"tdx-module-mismatch", sim.Options{TDXModuleMismatch: true}, dcap.ErrTDXModuleMismatch, true},
		{"tdx-module-no-level", sim.Options{TDXModuleTCBStatus: sim.NoMatchingLevel}, dcap.ErrTDXModuleTCB, true},
	}
	for _, k := range []quoteKind{quoteKinds[0], quoteKinds[3], quoteKinds[5]} {
		for _, f := range faults {
			if f.tdx && k.tee != claims.TDX {
				continue
			}
			t.Run(k.name+"/"+f.name, func(t *testing.T) {
				o := f.opt
				o.TEE, o.QuoteVersion, o.BodyType = k.tee, k.version, k.bodyType
				c := newCase(t, o)
				if !errors.Is(c.WantErr, f.want) {
					t.Errorf("WantErr %v, want %v", c.WantErr, f.want)
				}
				// With caches, and without (the cold path reads CRLs
				// without an index).
				for _, opts := range [][]dcap.Option{nil, {dcap.WithCacheBytes(0, 0)}} {
					v := dcap.NewVerifier(append(opts, dcap.WithTrustAnchors(c.Root))...)
					res, err := v.Verify(c.Quote, c.Collateral, c.At)
					if !errors.Is(err, f.want) {
						t.Fatalf("Verify (%d options): %v, want %v", len(opts), err, f.want)
					}
					if res != nil {
						t.Errorf("a result with a rejection: %+v", res.Claims)
					}
				}
			})
		}
	}
}

// TestVerifierIntelAnchor: under the default anchor (Intel's SGX Root CA)
// every simulated quote is rejected, for its untrusted root.
func TestVerifierIntelAnchor(t *testing.T) {
	v := dcap.NewVerifier()
	for _, k := range quoteKinds {
		c := newCase(t, sim.Options{TEE: k.tee, QuoteVersion: k.version, BodyType: k.bodyType})
		if _, err := v.Verify(c.Quote, c.Collateral, c.At); !errors.Is(err, dcap.ErrUntrustedRoot) {
			t.Errorf("%s under Intel's root: %v, want ErrUntrustedRoot", k.name, err)
		}
		if _, err := v.VerifyChain(c.Quote, nil, c.At); !errors.Is(err, dcap.ErrUntrustedRoot) {
			t.Errorf("%s chain-only under Intel's root: %v, want ErrUntrustedRoot", k.name, err)
		}
	}
	// Another simulator root is not this one.
	other, err := sim.NewPKI([]byte("another simulator"))
	if err != nil {
		t.Fatal(err)
	}
	c := newCase(t, sim.Options{})
	if _, err := dcap.NewVerifier(dcap.WithTrustAnchors(other.Root)).Verify(c.Quote, c.Collateral, c.At); !errors.Is(err, dcap.ErrUntrustedRoot) {
		t.Errorf("under another simulator root: %v", err)
	}
}

// TestVerifierAttester: a dev-mode round trip — attester quote, attester
// collateral, verifier at the simulator root — over many report data
// values, the warm path hitting the caches.
func TestVerifierAttester(t *testing.T) {
	for _, tee := range []claims.TEE{claims.SGX, claims.TDX} {
		a, err := sim.NewAttester(sim.Options{TEE: tee, Identity: tdxIdentity(false)})
		if err != nil {
			t.Fatal(err)
		}
		col, err := a.Collateral(time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		v := dcap.NewVerifier(dcap.WithTrustAnchors(a.Root()))
		for i := range 5 {
			rd := reportData(fmt.Sprint(tee, i))
			q, err := a.Quote(context.Background(), rd)
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Verify(q, col, time.Now())
			if err != nil {
				t.Fatalf("%s quote %d: %v", tee, i, err)
			}
			if res.TCBStatus != claims.StatusUpToDate || res.ReportData.String() != claims.Hex(rd[:]).String() {
				t.Errorf("%s quote %d: %s %s", tee, i, res.TCBStatus, res.ReportData)
			}
		}
		if s := v.Stats(); s.ChainHits < 4 || s.CollateralHits < 4 {
			t.Errorf("%s: caches not hit: %+v", tee, s)
		}
	}
}

// TestSimulatedDecidedPerRoot: with Intel's root and a simulator
// root both trusted, a simulated quote is Simulated and (see dcap's
// TestAttack_RealQuoteMarkedSimulated) a real one is not; the simulator's
// collateral cannot vouch for a platform under Intel's root.
func TestSimulatedDecidedPerRoot(t *testing.T) {
	c, err := sim.NewCase(sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := dcap.NewVerifier(dcap.WithTrustAnchors(dcap.IntelRootCA(), c.Root))
	res, err := v.Verify(c.Quote, c.Collateral, c.At)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Simulated {
		t.Fatal("a simulated quote is not marked simulated by a verifier with Intel's and the simulator's roots")
	}
	only := dcap.NewVerifier(dcap.WithTrustAnchors(c.Root))
	if res, err := only.Verify(c.Quote, c.Collateral, c.At); err != nil || !res.Simulated {
		t.Fatalf("simulator root only: %v, simulated %v", err, res != nil && res.Simulated)
	}
}
