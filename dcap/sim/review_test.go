package sim

// Regression tests from the review of the verifier against Intel's QVL and
// dcap-qvl: each asserts the reason a correct verifier gives.

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

var reviewNow = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)

func reviewCase(t *testing.T, o Options) *Case {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = reviewNow
	}
	c, err := NewCase(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func signHex(t *testing.T, k *ecdsa.PrivateKey, body []byte) []byte {
	t.Helper()
	s, err := signRS(k, body)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(hex.EncodeToString(s[:]))
}

func editJSON(t *testing.T, body []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func levels(m map[string]any, f func(l map[string]any)) {
	for _, l := range m["tcbLevels"].([]any) {
		f(l.(map[string]any))
	}
}

func mustCol(t *testing.T, raw dcap.RawCollateral) *dcap.Collateral {
	t.Helper()
	c, err := dcap.NewCollateral(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReviewCollateralChecks(t *testing.T) {
	base := reviewCase(t, Options{})
	p := base.Options.PKI
	v := dcap.NewVerifier(dcap.WithTrustAnchors(base.Root))
	for _, tc := range []struct {
		name   string
		edit   func(r *dcap.RawCollateral)
		reason error
	}{
		{"TCB info signed by the PCK CA, not the TCB signing certificate", func(r *dcap.RawCollateral) {
			r.TCBInfo = editJSON(t, r.TCBInfo, func(m map[string]any) {
				levels(m, func(l map[string]any) { l["tcbStatus"] = "UpToDate"; l["advisoryIDs"] = []any{} })
			})
			r.TCBInfoSignature = signHex(t, p.processorKey, r.TCBInfo)
			r.TCBInfoIssuerChain = dcap.EncodeChainPEM([]*x509.Certificate{p.ProcessorCA, p.Root})
		}, dcap.ErrCertChain},
		{"QE identity version 99", func(r *dcap.RawCollateral) {
			r.QEIdentity = editJSON(t, r.QEIdentity, func(m map[string]any) { m["version"] = 99 })
			r.QEIdentitySignature = signHex(t, p.tcbKey, r.QEIdentity)
		}, dcap.ErrQEIdentityMismatch},
		{"TCB info issuer chain of three", func(r *dcap.RawCollateral) {
			r.TCBInfoIssuerChain = dcap.EncodeChainPEM([]*x509.Certificate{p.TCBSigning, p.ProcessorCA, p.Root})
		}, dcap.ErrCertChain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := base.Raw
			tc.edit(&raw)
			if _, err := v.Verify(base.Quote, mustCol(t, raw), base.At); !errors.Is(err, tc.reason) {
				t.Fatalf("got %v, want %v", err, tc.reason)
			}
		})
	}

	// A signed TCB level with an unknown status is refused when parsed.
	raw := base.Raw
	raw.TCBInfo = editJSON(t, raw.TCBInfo, func(m map[string]any) {
		levels(m, func(l map[string]any) { l["tcbStatus"] = "TotallyNewStatus" })
	})
	if _, err := dcap.NewCollateral(raw); !errors.Is(err, dcap.ErrMalformed) {
		t.Fatalf("unknown TCB status: %v", err)
	}

	// A QE level other than UpToDate/Revoked counts as out of date.
	raw = base.Raw
	raw.QEIdentity = editJSON(t, raw.QEIdentity, func(m map[string]any) {
		levels(m, func(l map[string]any) { l["tcbStatus"] = "ConfigurationNeeded" })
	})
	raw.QEIdentitySignature = signHex(t, p.tcbKey, raw.QEIdentity)
	res, err := v.Verify(base.Quote, mustCol(t, raw), base.At)
	if err != nil || res.TCBStatus != claims.StatusOutOfDate {
		t.Fatalf("QE ConfigurationNeeded: %v %v, want OutOfDate", res, err)
	}
}

// TestReviewCollateralBoundToSignature: the verdict reads only what the
// signatures cover; an edited copy of a Collateral cannot change it, and a
// hand-built Collateral is refused.
func TestReviewCollateralBoundToSignature(t *testing.T) {
	c := reviewCase(t, Options{TCBStatus: claims.StatusOutOfDate})
	forged, err := dcap.ParseTCBInfo(editJSON(t, c.Collateral.TCBInfoBody, func(m map[string]any) {
		levels(m, func(l map[string]any) { l["tcbStatus"] = "UpToDate" })
	}))
	if err != nil {
		t.Fatal(err)
	}
	col2 := *c.Collateral
	col2.TCBInfo = forged
	warm := dcap.NewVerifier(dcap.WithTrustAnchors(c.Root))
	if _, err := warm.Verify(c.Quote, c.Collateral, c.At); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*dcap.Verifier{"warm": warm, "cold": dcap.NewVerifier(dcap.WithTrustAnchors(c.Root))} {
		res, err := v.Verify(c.Quote, &col2, c.At)
		if err != nil || res.TCBStatus != claims.StatusOutOfDate {
			t.Fatalf("%s: %v %v: the unsigned TCB info was used", name, res, err)
		}
	}
	lit := dcap.Collateral{TCBInfoBody: c.Collateral.TCBInfoBody, QEIdentityBody: c.Collateral.QEIdentityBody,
		PCKCRL: c.Collateral.PCKCRL, RootCACRL: c.Collateral.RootCACRL}
	if _, err := warm.Verify(c.Quote, &lit, c.At); !errors.Is(err, dcap.ErrCollateralMissing) {
		t.Fatalf("hand-built collateral: %v", err)
	}
}

// TestReviewRootCRLOfAnotherAnchor: with two anchors, anchor A's root CRL
// cannot vouch for anchor B's revoked PCK CA.
func TestReviewRootCRLOfAnotherAnchor(t *testing.T) {
	pa, err := NewPKI([]byte("anchor-A"))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := NewPKI([]byte("anchor-B"))
	if err != nil {
		t.Fatal(err)
	}
	ca := reviewCase(t, Options{PKI: pa})
	cb := reviewCase(t, Options{PKI: pb, RevokePCKCA: true})
	v := dcap.NewVerifier(dcap.WithTrustAnchors(pa.Root, pb.Root))
	if _, err := v.Verify(cb.Quote, cb.Collateral, cb.At); !errors.Is(err, dcap.ErrIntermediateRevoked) {
		t.Fatalf("baseline: %v", err)
	}
	raw := cb.Raw
	raw.RootCACRL = ca.Raw.RootCACRL
	if _, err := v.Verify(cb.Quote, mustCol(t, raw), cb.At); !errors.Is(err, dcap.ErrCRLInvalid) {
		t.Fatalf("anchor A's root CRL for anchor B's chain: %v", err)
	}
	raw = cb.Raw
	raw.TCBInfo, raw.TCBInfoSignature, raw.TCBInfoIssuerChain = ca.Raw.TCBInfo, ca.Raw.TCBInfoSignature, ca.Raw.TCBInfoIssuerChain
	if _, err := v.Verify(cb.Quote, mustCol(t, raw), cb.At); err == nil {
		t.Fatal("anchor A's TCB info accepted for anchor B's platform")
	}
}

// TestReviewTD15: TEE_TCB_SVN2 must meet a level, and a TD whose own TCB
// is out of date but whose current one is not is told to relaunch.
func TestReviewTD15(t *testing.T) {
	id := Identity{}
	id.TeeTcbSvn2 = [16]byte{15: 1}
	c := reviewCase(t, Options{TEE: claims.TDX, QuoteVersion: 5, BodyType: 3, Identity: id})
	_, err := dcap.NewVerifier(dcap.WithTrustAnchors(c.Root)).Verify(c.Quote, c.Collateral, c.At)
	if !errors.Is(err, dcap.ErrNoMatchingTCBLevel) {
		t.Fatalf("TEE_TCB_SVN2 below every level: %v", err)
	}

	up := reviewCase(t, Options{TEE: claims.TDX, QuoteVersion: 5, BodyType: 3})
	q, err := dcap.ParseQuote(up.Quote)
	if err != nil {
		t.Fatal(err)
	}
	id = Identity{TeeTcbSvn2: q.TD.TeeTcbSvn}
	old := reviewCase(t, Options{TEE: claims.TDX, QuoteVersion: 5, BodyType: 3, TDXModuleTCBStatus: claims.StatusOutOfDate, Identity: id})
	res, err := dcap.NewVerifier(dcap.WithTrustAnchors(old.Root)).Verify(old.Quote, old.Collateral, old.At)
	if err != nil || res.TCBStatus != claims.StatusTDRelaunchAdvised {
		t.Fatalf("module out of date, current TCB up to date: %v %v, want TDRelaunchAdvised", res, err)
	}
}

// TestReviewExpiryIncludesPCKChain: chain-only results expire with the
// PCK chain.
func TestReviewExpiryIncludesPCKChain(t *testing.T) {
	c := reviewCase(t, Options{})
	res, err := dcap.NewVerifier(dcap.WithTrustAnchors(c.Root)).VerifyChain(c.Quote, nil, c.At)
	if err != nil {
		t.Fatal(err)
	}
	if res.CollateralExpiry.IsZero() || res.CollateralExpiry.After(c.PCKChain[0].NotAfter) {
		t.Fatalf("expiry %v, PCK certificate expires %v", res.CollateralExpiry, c.PCKChain[0].NotAfter)
	}
}
