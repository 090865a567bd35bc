package dcap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asps-project/asps/claims"
)

// IntelRootCAPEM is Intel's SGX Root CA, the production trust anchor. It is
// pinned by its public key: Intel has issued more than one certificate for
// the same key.
//
//go:embed intel_sgx_root_ca.pem
var IntelRootCAPEM []byte

// IntelRootCA returns Intel's SGX Root CA certificate.
func IntelRootCA() *x509.Certificate {
	blk, _ := pem.Decode(IntelRootCAPEM)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		panic("dcap: embedded Intel root: " + err.Error()) // a build defect, not input
	}
	return c
}

// Check names, as Intel's specifications name the steps. A Rejection's
// Check field holds one of these.
const (
	CheckParse           = "parse quote"
	CheckQEVendor        = "verify QE vendor ID"
	CheckPCKChain        = "verify PCK certificate chain"
	CheckPCKCRL          = "verify PCK CRL"
	CheckRootCACRL       = "verify root CA CRL"
	CheckTCBInfo         = "verify TCB info"
	CheckQEIdentity      = "verify QE identity"
	CheckQEReport        = "verify QE report signature"
	CheckQEReportData    = "verify QE report data"
	CheckQEIdentityMatch = "match QE identity"
	CheckQuoteSignature  = "verify quote signature"
	CheckTCBLevel        = "match TCB level"
	CheckTDXModule       = "match TDX module identity"
)

// Verifier checks DCAP quotes against collateral and a trust anchor. It is
// safe for concurrent use and caches everything that repeats from one quote
// to the next: verified PCK chains, verified collateral, verified QE
// reports. Time-dependent checks (validity windows) are made on every call.
type Verifier struct {
	anchors   []*ecdsa.PublicKey
	simulated bool // anchors are not Intel's
	maxCache  int

	mu     sync.RWMutex
	chains map[[32]byte]*pckChain
	cols   map[[32]byte]*verifiedCollateral
	qes    map[[32]byte]struct{}

	hits, misses [3]atomic.Uint64 // chain, collateral, QE report
}

const (
	cacheChain = iota
	cacheCollateral
	cacheQEReport
)

// CacheStats counts cache hits and misses, for metrics.
type CacheStats struct {
	ChainHits, ChainMisses           uint64
	CollateralHits, CollateralMisses uint64
	QEReportHits, QEReportMisses     uint64
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithTrustAnchors replaces Intel's SGX Root CA with the given roots,
// pinned by key. Use it for tests and the simulator; claims verified under
// a replaced anchor are marked Simulated unless the anchor key is Intel's.
func WithTrustAnchors(roots ...*x509.Certificate) Option {
	return func(v *Verifier) {
		v.anchors = nil
		intel := IntelRootCA().PublicKey.(*ecdsa.PublicKey)
		v.simulated = false
		for _, r := range roots {
			k, ok := r.PublicKey.(*ecdsa.PublicKey)
			if !ok {
				continue
			}
			v.anchors = append(v.anchors, k)
			if !k.Equal(intel) {
				v.simulated = true
			}
		}
	}
}

// WithCacheSize bounds each cache (default 4096 entries; 0 disables
// caching, for measuring the cold path).
func WithCacheSize(n int) Option { return func(v *Verifier) { v.maxCache = n } }

// NewVerifier returns a verifier anchored at Intel's SGX Root CA unless an
// option says otherwise.
func NewVerifier(opts ...Option) *Verifier {
	v := &Verifier{maxCache: 4096}
	v.anchors = []*ecdsa.PublicKey{IntelRootCA().PublicKey.(*ecdsa.PublicKey)}
	for _, o := range opts {
		o(v)
	}
	v.chains = map[[32]byte]*pckChain{}
	v.cols = map[[32]byte]*verifiedCollateral{}
	v.qes = map[[32]byte]struct{}{}
	return v
}

// Stats returns the cache counters.
func (v *Verifier) Stats() CacheStats {
	return CacheStats{
		ChainHits: v.hits[cacheChain].Load(), ChainMisses: v.misses[cacheChain].Load(),
		CollateralHits: v.hits[cacheCollateral].Load(), CollateralMisses: v.misses[cacheCollateral].Load(),
		QEReportHits: v.hits[cacheQEReport].Load(), QEReportMisses: v.misses[cacheQEReport].Load(),
	}
}

func (v *Verifier) count(cache int, hit bool) {
	if hit {
		v.hits[cache].Add(1)
	} else {
		v.misses[cache].Add(1)
	}
}

func (v *Verifier) anchored(k any) bool {
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return false
	}
	for _, a := range v.anchors {
		if a.Equal(ek) {
			return true
		}
	}
	return false
}

// Result is an accepted quote: the claims and how the status was reached.
type Result struct {
	claims.Claims
	PlatformTCBStatus       string         `json:"platform_tcb_status,omitempty"`
	QETCBStatus             string         `json:"qe_tcb_status,omitempty"`
	TDXModuleTCBStatus      string         `json:"tdx_module_tcb_status,omitempty"`
	TCBEvaluationDataNumber int            `json:"tcb_evaluation_data_number,omitempty"`
	RevocationChecked       bool           `json:"revocation_checked"`
	Quote                   *Quote         `json:"-"`
	PCK                     *PCKExtensions `json:"-"`
}

// Verify parses and verifies a quote against collateral at time at.
func (v *Verifier) Verify(quote []byte, col *Collateral, at time.Time) (*Result, error) {
	q, err := ParseQuote(quote)
	if err != nil {
		return nil, &Rejection{Check: CheckParse, Reason: ErrMalformed, Cause: err}
	}
	return v.VerifyQuote(q, col, at)
}

// VerifyQuote verifies a parsed quote completely: PCK chain to the anchor,
// CRLs, TCB info, QE identity, QE report, quote signature, TCB level.
func (v *Verifier) VerifyQuote(q *Quote, col *Collateral, at time.Time) (*Result, error) {
	if col == nil || col.TCBInfo == nil || col.QEIdentity == nil {
		return nil, reject(CheckTCBInfo, ErrCollateralMissing, "TCB info and QE identity are required (use chain-only verification to check just the signatures)")
	}
	if col.PCKCRL == nil || col.RootCACRL == nil {
		return nil, reject(CheckPCKCRL, ErrCRLMissing, "PCK CRL and root CA CRL are required")
	}
	return v.verify(q, col, at, true)
}

// CheckPCKChain verifies the quote's PCK certificate chain to a trust
// anchor and its validity at time at (cached like every chain), and
// returns the PCK certificate's SGX extensions. A server calls it before it
// fetches collateral for the FMSPC the certificate names, so that a forged
// certificate cannot make it look up made-up platforms upstream.
func (v *Verifier) CheckPCKChain(q *Quote, at time.Time) (*PCKExtensions, error) {
	chain := v.pckChain(q.CertData.PCKCertChain)
	if chain.err != nil {
		return nil, chain.err
	}
	if err := chain.validAt(at); err != nil {
		return nil, err
	}
	return chain.ext, nil
}

// VerifyChain checks only the cryptographic chain — anchor → PCK
// certificate → QE report → quote — for when no TCB info is at hand. CRLs
// in col (which may be nil) are checked when present. The TCB status is
// reported as Unknown.
func (v *Verifier) VerifyChain(quote []byte, col *Collateral, at time.Time) (*Result, error) {
	q, err := ParseQuote(quote)
	if err != nil {
		return nil, &Rejection{Check: CheckParse, Reason: ErrMalformed, Cause: err}
	}
	return v.verify(q, col, at, false)
}

func (v *Verifier) verify(q *Quote, col *Collateral, at time.Time, full bool) (*Result, error) {
	if q.Header.QEVendorID != IntelQEVendorID {
		return nil, reject(CheckQEVendor, ErrQEVendor, "QE vendor ID %x, want %x", q.Header.QEVendorID, IntelQEVendorID)
	}
	tdx := q.TD != nil

	// PCK certificate chain (cached), then its validity at this time.
	chain := v.pckChain(q.CertData.PCKCertChain)
	if chain.err != nil {
		return nil, chain.err
	}
	if err := chain.validAt(at); err != nil {
		return nil, err
	}
	expiry := chain.notAfter

	res := &Result{Quote: q, PCK: chain.ext}

	// Collateral: signatures and CRL issuers (cached), then dates.
	var vc *verifiedCollateral
	if col != nil {
		vc = v.collateral(col)
	}
	if vc != nil && (col.PCKCRL != nil || col.RootCACRL != nil) {
		if col.PCKCRL == nil || col.RootCACRL == nil {
			return nil, reject(CheckPCKCRL, ErrCRLMissing, "both the PCK CRL and the root CA CRL are needed to check revocation")
		}
		e, err := v.checkRevocation(col, vc, chain, at)
		if err != nil {
			return nil, err
		}
		expiry = earliest(expiry, e)
		res.RevocationChecked = true
	}

	// QE report signed by the PCK key (cached), and bound to the
	// attestation key.
	if err := v.checkQEReport(q, chain); err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(q.AttestationKey[:])
	h.Write(q.CertData.QEAuthData)
	want := h.Sum(nil)
	rd := q.CertData.QEReport.ReportData
	if !bytes.Equal(rd[:32], want) || [32]byte(rd[32:]) != [32]byte{} {
		return nil, reject(CheckQEReportData, ErrQEReportData, "QE report_data %x, want SHA-256(attestation key ‖ QE auth data) = %x followed by 32 zero bytes", rd[:], want)
	}

	// The quote's own signature, by the attestation key.
	ak, err := q.AttestationPublicKey()
	if err != nil {
		return nil, &Rejection{Check: CheckQuoteSignature, Reason: ErrQuoteSignature, Cause: err}
	}
	digest := sha256.Sum256(q.SignedData)
	r, s := rs(q.Signature[:])
	if !ecdsa.Verify(ak, digest[:], r, s) {
		return nil, reject(CheckQuoteSignature, ErrQuoteSignature, "the attestation key's signature over the quote header and body does not verify")
	}

	fillClaims(&res.Claims, q)
	res.FMSPC = chain.ext.FMSPCHex()
	res.Simulated = v.simulated
	if !full {
		res.TCBStatus = claims.StatusUnknown
		res.AdvisoryIDs = []string{}
		res.CollateralExpiry = expiry
		return res, nil
	}

	// TCB info and QE identity: signed, current, and fit for this quote.
	ti, qi := col.TCBInfo, col.QEIdentity
	if vc.tcbInfoErr != nil {
		return nil, vc.tcbInfoErr
	}
	if vc.qeIdentityErr != nil {
		return nil, vc.qeIdentityErr
	}
	if err := inWindow(CheckTCBInfo, "TCB info", ti.IssueDate, ti.NextUpdate, at); err != nil {
		return nil, err
	}
	if err := inWindow(CheckQEIdentity, "QE identity", qi.IssueDate, qi.NextUpdate, at); err != nil {
		return nil, err
	}
	if err := certsValidAt(CheckTCBInfo, "TCB info issuer chain", col.TCBInfoIssuerChain, at); err != nil {
		return nil, err
	}
	if err := certsValidAt(CheckQEIdentity, "QE identity issuer chain", col.QEIdentityIssuerChain, at); err != nil {
		return nil, err
	}
	expiry = earliest(expiry, ti.NextUpdate, qi.NextUpdate, vc.signingNotAfter)
	wantID, wantQE := "SGX", "QE"
	if tdx {
		wantID, wantQE = "TDX", "TD_QE"
	}
	if ti.ID != wantID {
		return nil, reject(CheckTCBInfo, ErrTCBInfoMismatch, "TCB info id %q for a %s quote, want %q", ti.ID, q.TEE(), wantID)
	}
	if tdx && ti.Version < 3 {
		return nil, reject(CheckTCBInfo, ErrTCBInfoMismatch, "TCB info version %d for a TDX quote, want 3", ti.Version)
	}
	if ti.FMSPC != chain.ext.FMSPCHex() {
		return nil, reject(CheckTCBInfo, ErrFMSPCMismatch, "TCB info FMSPC %s, PCK certificate FMSPC %s", ti.FMSPC, chain.ext.FMSPCHex())
	}
	if ti.PCEID != chain.ext.PCEIDHex() {
		return nil, reject(CheckTCBInfo, ErrPCEIDMismatch, "TCB info PCE ID %s, PCK certificate PCE ID %s", ti.PCEID, chain.ext.PCEIDHex())
	}
	if qi.ID != wantQE {
		return nil, reject(CheckQEIdentity, ErrQEIdentityMismatch, "QE identity id %q for a %s quote, want %q", qi.ID, q.TEE(), wantQE)
	}

	// The QE against its identity, and the QE's TCB level.
	qeLevel, err := matchQEIdentity(&q.CertData.QEReport, qi)
	if err != nil {
		return nil, err
	}

	// The platform's TCB level.
	level, err := matchTCBLevel(ti, chain.ext, q.TD)
	if err != nil {
		return nil, err
	}
	status := level.TCBStatus
	advisories := append([]string(nil), level.AdvisoryIDs...)
	res.PlatformTCBStatus = level.TCBStatus
	res.QETCBStatus = qeLevel.TCBStatus
	res.TCBDate = level.TCBDate

	if tdx {
		mod, err := matchTDXModule(ti, q.TD)
		if err != nil {
			return nil, err
		}
		if mod != nil {
			res.TDXModuleTCBStatus = mod.TCBStatus
			status = convergeTDXModule(status, mod.TCBStatus)
			advisories = append(advisories, mod.AdvisoryIDs...)
		}
	}
	status = convergeQE(status, qeLevel.TCBStatus)
	advisories = append(advisories, qeLevel.AdvisoryIDs...)

	res.TCBStatus = status
	res.AdvisoryIDs = dedupe(advisories)
	res.TCBEvaluationDataNumber = ti.TCBEvaluationDataNumber
	res.CollateralExpiry = expiry
	if status == claims.StatusRevoked {
		return res, reject(CheckTCBLevel, ErrTCBRevoked, "platform %s, QE %s", level.TCBStatus, qeLevel.TCBStatus)
	}
	return res, nil
}

// fillClaims copies the quote's identity into claims.
func fillClaims(c *claims.Claims, q *Quote) {
	c.QuoteVersion = int(q.Header.Version)
	c.Debug = q.Debug()
	rd := q.ReportData()
	c.ReportData = claims.Hex(bytes.Clone(rd[:]))
	if q.TD != nil {
		t := q.TD
		c.TEE = claims.TDX
		c.TDX = &claims.TDXIdentity{
			TeeTcbSvn: h(t.TeeTcbSvn[:]), MrSeam: h(t.MrSeam[:]), MrSignerSeam: h(t.MrSignerSeam[:]),
			SeamAttributes: h(t.SeamAttributes[:]), TdAttributes: h(t.TdAttributes[:]), Xfam: h(t.Xfam[:]),
			MrTd: h(t.MrTd[:]), MrConfigID: h(t.MrConfigID[:]), MrOwner: h(t.MrOwner[:]), MrOwnerConfig: h(t.MrOwnerConfig[:]),
			Rtmr0: h(t.Rtmr[0][:]), Rtmr1: h(t.Rtmr[1][:]), Rtmr2: h(t.Rtmr[2][:]), Rtmr3: h(t.Rtmr[3][:]),
		}
		if t.TD15 {
			c.TDX.TeeTcbSvn2 = h(t.TeeTcbSvn2[:])
			c.TDX.MrServiceTd = h(t.MrServiceTd[:])
		}
		return
	}
	e := q.SGX
	c.TEE = claims.SGX
	c.SGX = &claims.SGXIdentity{
		MrEnclave: h(e.MrEnclave[:]), MrSigner: h(e.MrSigner[:]), IsvProdID: e.IsvProdID, IsvSvn: e.IsvSVN,
		ConfigID: h(e.ConfigID[:]), ConfigSvn: e.ConfigSVN, IsvExtProdID: h(e.IsvExtProdID[:]),
		IsvFamilyID: h(e.IsvFamilyID[:]), Attributes: h(e.Attributes[:]), MiscSelect: e.MiscSelect,
		CPUSvn: h(e.CPUSVN[:]), Mode64: e.Attributes[0]&AttrMode64 != 0,
		ProvisionKey: e.Attributes[0]&AttrProvisionKey != 0, EInitTokenKey: e.Attributes[0]&AttrEInitTokenKey != 0,
		KSS: e.Attributes[0]&AttrKSS != 0,
	}
}

// Claims returns the identity a quote asserts, unverified (for inspection).
func (q *Quote) Claims() *claims.Claims {
	var c claims.Claims
	fillClaims(&c, q)
	return &c
}

func h(b []byte) claims.Hex { return claims.Hex(bytes.Clone(b)) }

func earliest(t time.Time, more ...time.Time) time.Time {
	for _, m := range more {
		if !m.IsZero() && (t.IsZero() || m.Before(t)) {
			t = m
		}
	}
	return t
}

func dedupe(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func inWindow(check, what string, from, until, at time.Time) error {
	if at.Before(from) {
		return reject(check, ErrCollateralExpired, "%s is not yet valid: issued %s, verification time %s", what, from.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	if at.After(until) {
		return reject(check, ErrCollateralExpired, "%s expired: next update was due %s, verification time %s", what, until.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	return nil
}

func certsValidAt(check, what string, certs []*x509.Certificate, at time.Time) error {
	for _, c := range certs {
		if at.Before(c.NotBefore) || at.After(c.NotAfter) {
			return reject(check, ErrCertExpired, "%s: %q valid %s to %s, verification time %s", what, c.Subject.CommonName,
				c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), at.Format(time.RFC3339))
		}
	}
	return nil
}

// The PCK certificate chain.

type pckChain struct {
	leaf, inter, root   *x509.Certificate
	leafKey             *ecdsa.PublicKey
	ext                 *PCKExtensions
	notBefore, notAfter time.Time
	err                 error
}

func (c *pckChain) validAt(at time.Time) error {
	if err := certsValidAt(CheckPCKChain, "PCK certificate chain", []*x509.Certificate{c.leaf, c.inter, c.root}, at); err != nil {
		return err
	}
	return nil
}

func (v *Verifier) pckChain(pemChain []byte) *pckChain {
	key := sha256.Sum256(pemChain)
	v.mu.RLock()
	c, ok := v.chains[key]
	v.mu.RUnlock()
	if ok {
		v.count(cacheChain, true)
		return c
	}
	v.count(cacheChain, false)
	c = v.buildPCKChain(pemChain)
	v.store(func() {
		if len(v.chains) >= v.maxCache {
			clear(v.chains)
		}
		v.chains[key] = c
	})
	return c
}

func (v *Verifier) store(f func()) {
	if v.maxCache <= 0 {
		return
	}
	v.mu.Lock()
	f()
	v.mu.Unlock()
}

func (v *Verifier) buildPCKChain(pemChain []byte) *pckChain {
	c := &pckChain{}
	certs, err := ParseChainPEM(pemChain, "pck_cert_chain")
	if err != nil {
		c.err = &Rejection{Check: CheckPCKChain, Reason: ErrMalformed, Cause: err}
		return c
	}
	if len(certs) != 3 {
		c.err = reject(CheckPCKChain, ErrCertChain, "%d certificates, want 3 (PCK, PCK CA, root CA)", len(certs))
		return c
	}
	c.leaf, c.inter, c.root = certs[0], certs[1], certs[2]
	if err := v.checkIssuedByAnchor(c.inter, c.root, "PCK CA certificate"); err != nil {
		c.err = err
		return c
	}
	if err := c.leaf.CheckSignatureFrom(c.inter); err != nil {
		c.err = &Rejection{Check: CheckPCKChain, Reason: ErrCertChain, Detail: "PCK certificate not signed by the PCK CA", Cause: err}
		return c
	}
	k, ok := c.leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve.Params().Name != "P-256" {
		c.err = reject(CheckPCKChain, ErrCertChain, "PCK certificate key is not ECDSA P-256")
		return c
	}
	c.leafKey = k
	if c.ext, err = ParsePCKExtensions(c.leaf); err != nil {
		c.err = &Rejection{Check: CheckPCKChain, Reason: ErrPCKExtensions, Cause: err}
		return c
	}
	return c
}

// checkIssuedByAnchor checks that cert is signed by root and that root's
// key is a trust anchor (and root is self-signed).
func (v *Verifier) checkIssuedByAnchor(cert, root *x509.Certificate, what string) error {
	if !v.anchored(root.PublicKey) {
		return reject(CheckPCKChain, ErrUntrustedRoot, "%s chains to %q (key SHA-256 %s), which is not a trust anchor", what, root.Subject.CommonName, keyID(root))
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return &Rejection{Check: CheckPCKChain, Reason: ErrCertChain, Detail: "root CA certificate is not self-signed", Cause: err}
	}
	if !bytes.Equal(cert.RawIssuer, root.RawSubject) {
		return reject(CheckPCKChain, ErrCertChain, "%s issuer %q is not the root %q", what, cert.Issuer.CommonName, root.Subject.CommonName)
	}
	if err := cert.CheckSignatureFrom(root); err != nil {
		return &Rejection{Check: CheckPCKChain, Reason: ErrCertChain, Detail: what + " not signed by the root CA", Cause: err}
	}
	return nil
}

func keyID(c *x509.Certificate) string {
	s := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(s[:8])
}

// Verified collateral: what does not depend on the time, cached by digest.

type verifiedCollateral struct {
	rootCRLErr, pckCRLErr error
	pckCRLIssuer          []byte // RawSubject of the PCK CRL's issuer
	pckCRLIssuerName      string
	pckCRLIssuerKey       *ecdsa.PublicKey
	rootRevoked           map[string]bool
	pckRevoked            map[string]bool
	tcbInfoErr            error
	qeIdentityErr         error
	signingNotAfter       time.Time
}

func (v *Verifier) collateral(col *Collateral) *verifiedCollateral {
	v.mu.RLock()
	vc, ok := v.cols[col.digest]
	v.mu.RUnlock()
	if ok {
		v.count(cacheCollateral, true)
		return vc
	}
	v.count(cacheCollateral, false)
	vc = v.verifyCollateral(col)
	v.store(func() {
		if len(v.cols) >= v.maxCache {
			clear(v.cols)
		}
		v.cols[col.digest] = vc
	})
	return vc
}

func serialSet(l *x509.RevocationList) map[string]bool {
	m := make(map[string]bool, len(l.RevokedCertificateEntries))
	for _, e := range l.RevokedCertificateEntries {
		m[string(e.SerialNumber.Bytes())] = true
	}
	return m
}

func (v *Verifier) verifyCollateral(col *Collateral) *verifiedCollateral {
	vc := &verifiedCollateral{}
	// Root CA CRL: signed by an anchor key.
	if col.RootCACRL != nil {
		vc.rootRevoked = serialSet(col.RootCACRL)
		vc.rootCRLErr = v.checkCRLByAnchor(col.RootCACRL)
	}
	// PCK CRL: signed by the PCK CA named in its issuer chain, which must
	// itself chain to an anchor.
	if col.PCKCRL != nil {
		vc.pckRevoked = serialSet(col.PCKCRL)
		vc.pckCRLErr = v.checkPCKCRL(col, vc)
	}
	if col.TCBInfo != nil {
		vc.tcbInfoErr = v.checkSignedBody(CheckTCBInfo, ErrTCBInfoSignature, "TCB info", col.TCBInfoIssuerChain, col.TCBInfoBody, col.TCBInfoSignature, vc)
	}
	if col.QEIdentity != nil {
		vc.qeIdentityErr = v.checkSignedBody(CheckQEIdentity, ErrQEIdentitySignature, "QE identity", col.QEIdentityIssuerChain, col.QEIdentityBody, col.QEIdentitySignature, vc)
	}
	return vc
}

func (v *Verifier) checkCRLByAnchor(l *x509.RevocationList) error {
	for _, a := range v.anchors {
		if err := checkCRLSignature(l, a); err == nil {
			return nil
		}
	}
	return reject(CheckRootCACRL, ErrCRLInvalid, "root CA CRL (issuer %q) is not signed by a trust anchor", l.Issuer.CommonName)
}

func checkCRLSignature(l *x509.RevocationList, k *ecdsa.PublicKey) error {
	// x509.RevocationList.CheckSignatureFrom wants a CA certificate; the
	// anchor is a key, so verify the signature over the TBS directly.
	if l.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		return fmt.Errorf("CRL signature algorithm %v, want ECDSA with SHA-256", l.SignatureAlgorithm)
	}
	d := sha256.Sum256(l.RawTBSRevocationList)
	if !ecdsa.VerifyASN1(k, d[:], l.Signature) {
		return errors.New("CRL signature does not verify")
	}
	return nil
}

func (v *Verifier) checkPCKCRL(col *Collateral, vc *verifiedCollateral) error {
	l := col.PCKCRL
	ch := col.PCKCRLIssuerChain
	if len(ch) < 2 {
		return reject(CheckPCKCRL, ErrCRLInvalid, "PCK CRL issuer chain has %d certificates, want the PCK CA and the root CA", len(ch))
	}
	if err := v.checkIssuedByAnchor(ch[0], ch[len(ch)-1], "PCK CRL issuer"); err != nil {
		var r *Rejection
		if errors.As(err, &r) {
			r.Check = CheckPCKCRL
		}
		return err
	}
	if err := l.CheckSignatureFrom(ch[0]); err != nil {
		return &Rejection{Check: CheckPCKCRL, Reason: ErrCRLInvalid, Detail: fmt.Sprintf("PCK CRL not signed by %q", ch[0].Subject.CommonName), Cause: err}
	}
	if !bytes.Equal(l.RawIssuer, ch[0].RawSubject) {
		return reject(CheckPCKCRL, ErrCRLInvalid, "PCK CRL issuer %q is not its issuer chain's %q", l.Issuer.CommonName, ch[0].Subject.CommonName)
	}
	vc.pckCRLIssuer = ch[0].RawSubject
	vc.pckCRLIssuerName = ch[0].Subject.CommonName
	vc.pckCRLIssuerKey, _ = ch[0].PublicKey.(*ecdsa.PublicKey)
	return nil
}

func (v *Verifier) checkSignedBody(check string, reason error, what string, chain []*x509.Certificate, body, sig []byte, vc *verifiedCollateral) error {
	if len(chain) < 2 {
		return reject(check, ErrCertChain, "%s issuer chain has %d certificates, want the TCB signing certificate and the root CA", what, len(chain))
	}
	signer, root := chain[0], chain[len(chain)-1]
	if err := v.checkIssuedByAnchor(signer, root, what+" signing certificate"); err != nil {
		var r *Rejection
		if errors.As(err, &r) {
			r.Check = check
		}
		return err
	}
	if vc.rootRevoked != nil && vc.rootRevoked[string(signer.SerialNumber.Bytes())] {
		return reject(check, ErrTCBSigningRevoked, "%s signing certificate %q (serial %x) is on the root CA CRL", what, signer.Subject.CommonName, signer.SerialNumber)
	}
	k, ok := signer.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return reject(check, ErrCertChain, "%s signing key is not ECDSA", what)
	}
	d := sha256.Sum256(body)
	r, s := rs(sig)
	if !ecdsa.Verify(k, d[:], r, s) {
		return reject(check, reason, "signature by %q over the %d-byte %s body does not verify", signer.Subject.CommonName, len(body), what)
	}
	if vc.signingNotAfter.IsZero() || signer.NotAfter.Before(vc.signingNotAfter) {
		vc.signingNotAfter = signer.NotAfter
	}
	return nil
}

// checkRevocation checks both CRLs against the PCK chain at time at and
// returns the CRLs' earliest next update.
func (v *Verifier) checkRevocation(col *Collateral, vc *verifiedCollateral, chain *pckChain, at time.Time) (time.Time, error) {
	if vc.rootCRLErr != nil {
		return time.Time{}, vc.rootCRLErr
	}
	if vc.pckCRLErr != nil {
		return time.Time{}, vc.pckCRLErr
	}
	for _, c := range []struct {
		check, what string
		l           *x509.RevocationList
	}{{CheckRootCACRL, "root CA CRL", col.RootCACRL}, {CheckPCKCRL, "PCK CRL", col.PCKCRL}} {
		if at.Before(c.l.ThisUpdate) || (!c.l.NextUpdate.IsZero() && at.After(c.l.NextUpdate)) {
			return time.Time{}, reject(c.check, ErrCRLExpired, "%s valid %s to %s, verification time %s", c.what,
				c.l.ThisUpdate.Format(time.RFC3339), c.l.NextUpdate.Format(time.RFC3339), at.Format(time.RFC3339))
		}
	}
	if err := certsValidAt(CheckPCKCRL, "PCK CRL issuer chain", col.PCKCRLIssuerChain, at); err != nil {
		return time.Time{}, err
	}
	if !bytes.Equal(vc.pckCRLIssuer, chain.inter.RawSubject) {
		return time.Time{}, reject(CheckPCKCRL, ErrCRLInvalid, "the PCK CRL is issued by %q but the PCK certificate by %q", vc.pckCRLIssuerName, chain.inter.Subject.CommonName)
	}
	if k, ok := chain.inter.PublicKey.(*ecdsa.PublicKey); !ok || vc.pckCRLIssuerKey == nil || !k.Equal(vc.pckCRLIssuerKey) {
		return time.Time{}, reject(CheckPCKCRL, ErrCRLInvalid, "the PCK CRL's issuer key is not the key of the PCK certificate's issuer %q", chain.inter.Subject.CommonName)
	}
	if vc.pckRevoked[string(chain.leaf.SerialNumber.Bytes())] {
		return time.Time{}, reject(CheckPCKCRL, ErrPCKRevoked, "PCK certificate serial %x is on the %q CRL", chain.leaf.SerialNumber, chain.inter.Subject.CommonName)
	}
	if vc.rootRevoked[string(chain.inter.SerialNumber.Bytes())] {
		return time.Time{}, reject(CheckRootCACRL, ErrIntermediateRevoked, "%q (serial %x) is on the root CA CRL", chain.inter.Subject.CommonName, chain.inter.SerialNumber)
	}
	return earliest(col.RootCACRL.NextUpdate, col.PCKCRL.NextUpdate), nil
}

// checkQEReport verifies the PCK key's signature over the QE report
// (cached by chain, report and signature).
func (v *Verifier) checkQEReport(q *Quote, chain *pckChain) error {
	h := sha256.New()
	h.Write(chain.leaf.Raw)
	h.Write(q.CertData.QEReport.raw)
	h.Write(q.CertData.QEReportSignature[:])
	var key [32]byte
	h.Sum(key[:0])
	v.mu.RLock()
	_, ok := v.qes[key]
	v.mu.RUnlock()
	if ok {
		v.count(cacheQEReport, true)
		return nil
	}
	v.count(cacheQEReport, false)
	d := sha256.Sum256(q.CertData.QEReport.raw)
	r, s := rs(q.CertData.QEReportSignature[:])
	if !ecdsa.Verify(chain.leafKey, d[:], r, s) {
		return reject(CheckQEReport, ErrQEReportSignature, "the PCK key's signature over the QE report does not verify")
	}
	v.store(func() {
		if len(v.qes) >= v.maxCache {
			clear(v.qes)
		}
		v.qes[key] = struct{}{}
	})
	return nil
}
