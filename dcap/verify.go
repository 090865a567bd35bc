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
	"strings"
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
	chains map[string]*pckChain // by the PEM chain's exact bytes
	cols   map[[32]byte]*verifiedCollateral

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
	v.chains = map[string]*pckChain{}
	v.cols = map[[32]byte]*verifiedCollateral{}
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
	PlatformTCBStatus  string `json:"platform_tcb_status,omitempty"`
	QETCBStatus        string `json:"qe_tcb_status,omitempty"`
	TDXModuleTCBStatus string `json:"tdx_module_tcb_status,omitempty"`
	// CurrentTCBStatus (TD 1.5) is the status of the TCB the TD would run
	// on if relaunched (TEE_TCB_SVN2), converged with the QE's.
	CurrentTCBStatus        string         `json:"current_tcb_status,omitempty"`
	TCBEvaluationDataNumber int            `json:"tcb_evaluation_data_number,omitempty"`
	RevocationChecked       bool           `json:"revocation_checked"`
	Quote                   *Quote         `json:"-"`
	PCK                     *PCKExtensions `json:"-"`
}

// Verify parses and verifies a quote against collateral at time at.
func (v *Verifier) Verify(quote []byte, col *Collateral, at time.Time) (*Result, error) {
	q, err := ParseQuote(quote)
	if err != nil {
		return nil, parseRejection(err)
	}
	return v.VerifyQuote(q, col, at)
}

// VerifyQuote verifies a parsed quote completely: PCK chain to the anchor,
// CRLs, TCB info, QE identity, QE report, quote signature, TCB level.
func (v *Verifier) VerifyQuote(q *Quote, col *Collateral, at time.Time) (*Result, error) {
	if col == nil || col.TCBInfoBody == nil || col.QEIdentityBody == nil {
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
	ext := *chain.ext
	return &ext, nil
}

// VerifyChain checks only the cryptographic chain — anchor → PCK
// certificate → QE report → quote — for when no TCB info is at hand. CRLs
// in col (which may be nil) are checked when present. The TCB status is
// reported as Unknown.
func (v *Verifier) VerifyChain(quote []byte, col *Collateral, at time.Time) (*Result, error) {
	q, err := ParseQuote(quote)
	if err != nil {
		return nil, parseRejection(err)
	}
	return v.verify(q, col, at, false)
}

func (v *Verifier) verify(q *Quote, col *Collateral, at time.Time, full bool) (*Result, error) {
	if q == nil || (q.SGX == nil) == (q.TD == nil) || len(q.SignedData) == 0 {
		return nil, reject(CheckParse, ErrMalformed, "not a parsed quote")
	}
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

	ext := *chain.ext
	res := &Result{Quote: q, PCK: &ext}

	// Collateral: signatures and CRL issuers (cached), then dates.
	var vc *verifiedCollateral
	if col != nil {
		if vc = v.collateral(col); vc.err != nil {
			return nil, vc.err
		}
	}
	if vc != nil && (vc.pckCRL != nil || vc.rootCRL != nil) {
		if vc.pckCRL == nil || vc.rootCRL == nil {
			return nil, reject(CheckPCKCRL, ErrCRLMissing, "both the PCK CRL and the root CA CRL are needed to check revocation")
		}
		e, err := v.checkRevocation(vc, chain, at)
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
	var buf [64 + 256]byte
	want := sha256.Sum256(append(append(buf[:0], q.AttestationKey[:]...), q.CertData.QEAuthData...))
	rd := q.CertData.QEReport.ReportData
	if [32]byte(rd[:32]) != want || [32]byte(rd[32:]) != [32]byte{} {
		return nil, reject(CheckQEReportData, ErrQEReportData, "QE report_data %x, want SHA-256(attestation key ‖ QE auth data) = %x followed by 32 zero bytes", rd[:], want)
	}

	// The quote's own signature, by the attestation key.
	ak, err := q.AttestationPublicKey()
	if err != nil {
		return nil, &Rejection{Check: CheckQuoteSignature, Reason: ErrQuoteSignature, Cause: err}
	}
	digest := sha256.Sum256(q.SignedData)
	if !verifyRS(ak, digest[:], q.Signature[:]) {
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

	// TCB info and QE identity: signed, under the PCK chain's root,
	// current, and fit for this quote.
	if vc.tcbInfoErr != nil {
		return nil, vc.tcbInfoErr
	}
	if vc.qeIdentityErr != nil {
		return nil, vc.qeIdentityErr
	}
	ti, qi := vc.tcbInfo, vc.qeIdentity
	if !sameRoot(vc.tcbChain, chain.root) || !sameRoot(vc.qeChain, chain.root) {
		return nil, reject(CheckTCBInfo, ErrCertChain, "the TCB info or QE identity is signed under another root than the PCK chain's %q", chain.root.Subject.CommonName)
	}
	if err := inWindow(CheckTCBInfo, "TCB info", ti.IssueDate, ti.NextUpdate, at); err != nil {
		return nil, err
	}
	if err := inWindow(CheckQEIdentity, "QE identity", qi.IssueDate, qi.NextUpdate, at); err != nil {
		return nil, err
	}
	if err := certsValidAt(CheckTCBInfo, "TCB info issuer chain", vc.tcbChain, at); err != nil {
		return nil, err
	}
	if err := certsValidAt(CheckQEIdentity, "QE identity issuer chain", vc.qeChain, at); err != nil {
		return nil, err
	}
	expiry = earliest(expiry, ti.NextUpdate, qi.NextUpdate, vc.notAfter)
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
	if qi.Version != 2 && !(tdx && qi.Version == 3) {
		return nil, reject(CheckQEIdentity, ErrQEIdentityMismatch, "QE identity %s version %d is not supported (want 2%s)", qi.ID, qi.Version, map[bool]string{true: " or 3"}[tdx])
	}

	// The QE against its identity, and the QE's TCB level.
	qeLevel, err := matchQEIdentity(&q.CertData.QEReport, qi)
	if err != nil {
		return nil, err
	}

	// The platform's TCB level.
	level, err := matchTCBLevel(ti, chain.ext, q.TD, "")
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

	// TD 1.5: the TCB the TD would run on if relaunched (TEE_TCB_SVN2)
	// must be known too; if it is current while the TD's own is out of
	// date, a relaunch is advised.
	if tdx && q.TD.TD15 {
		td2 := *q.TD
		td2.TeeTcbSvn = q.TD.TeeTcbSvn2
		cur, err := matchTCBLevel(ti, chain.ext, &td2, "TEE_TCB_SVN2 ")
		if err != nil {
			return nil, err
		}
		current := cur.TCBStatus
		mod2, err := matchTDXModule(ti, &td2)
		if err != nil {
			return nil, err
		}
		if mod2 != nil {
			current = convergeTDXModule(current, mod2.TCBStatus)
		}
		current = convergeQE(current, qeLevel.TCBStatus)
		res.CurrentTCBStatus = current
		if current == claims.StatusRevoked {
			status = claims.StatusRevoked
		}
		status = relaunch(status, current)
	}

	res.TCBStatus = status
	res.AdvisoryIDs = dedupe(advisories)
	res.TCBEvaluationDataNumber = ti.TCBEvaluationDataNumber
	// The claims carry the older of the two evaluations the status rests on.
	res.TCBEvalDataNumber = uint32(max(0, min(ti.TCBEvaluationDataNumber, qi.TCBEvaluationDataNumber)))
	res.CollateralExpiry = expiry
	if status == claims.StatusRevoked {
		detail := fmt.Sprintf("platform %s, QE %s", res.PlatformTCBStatus, res.QETCBStatus)
		if res.TDXModuleTCBStatus != "" {
			detail += ", TDX module " + res.TDXModuleTCBStatus
		}
		if res.CurrentTCBStatus != "" {
			detail += ", current TCB (TEE_TCB_SVN2) " + res.CurrentTCBStatus
		}
		return res, reject(CheckTCBLevel, ErrTCBRevoked, "%s", detail)
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
	// qes holds the QE reports (report ‖ signature) this PCK key was
	// seen to sign; a platform has one QE, so a few entries at most.
	qes  sync.Map
	nqes atomic.Int32

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
	v.mu.RLock()
	c, ok := v.chains[string(pemChain)]
	v.mu.RUnlock()
	if ok {
		v.count(cacheChain, true)
		return c
	}
	v.count(cacheChain, false)
	c = v.buildPCKChain(pemChain)
	if c.err != nil {
		// Failures are not cached: a flood of bad chains must not evict
		// the good ones.
		return c
	}
	v.store(func() {
		if len(v.chains) >= v.maxCache {
			clear(v.chains)
		}
		v.chains[string(pemChain)] = c
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
	c.notBefore, c.notAfter = c.leaf.NotBefore, c.leaf.NotAfter
	for _, x := range certs[1:] {
		if x.NotBefore.After(c.notBefore) {
			c.notBefore = x.NotBefore
		}
		if x.NotAfter.Before(c.notAfter) {
			c.notAfter = x.NotAfter
		}
	}
	if err := v.checkIssuedByAnchor(c.inter, c.root, "PCK CA certificate"); err != nil {
		c.err = err
		return c
	}
	if !bytes.Equal(c.leaf.RawIssuer, c.inter.RawSubject) {
		c.err = reject(CheckPCKChain, ErrCertChain, "PCK certificate issuer %q is not the PCK CA %q", c.leaf.Issuer.CommonName, c.inter.Subject.CommonName)
		return c
	}
	if c.leaf.IsCA {
		c.err = reject(CheckPCKChain, ErrCertChain, "the PCK certificate %q is a CA", c.leaf.Subject.CommonName)
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
//
// Everything the verdict reads from collateral comes from here, derived
// from the raw bytes whose signatures were checked (certificates and CRLs
// re-parsed from their DER, TCB info and QE identity from their signed
// bodies) — never from the exported, editable fields of a Collateral.

type verifiedCollateral struct {
	err error // the collateral cannot be used at all

	rootCRL, pckCRL       *x509.RevocationList
	rootCRLErr, pckCRLErr error
	rootCRLAnchor         *ecdsa.PublicKey // the anchor that signed the root CA CRL
	pckCRLIssuer          *x509.Certificate
	pckCRLChain           []*x509.Certificate
	rootRevoked           map[string]bool
	pckRevoked            map[string]bool

	tcbInfo       *TCBInfo
	tcbInfoErr    error
	tcbChain      []*x509.Certificate
	qeIdentity    *QEIdentity
	qeIdentityErr error
	qeChain       []*x509.Certificate

	// notAfter is the earliest NotAfter of every collateral certificate.
	notAfter time.Time
}

func (v *Verifier) collateral(col *Collateral) *verifiedCollateral {
	if col.digest == ([32]byte{}) {
		return &verifiedCollateral{err: reject(CheckTCBInfo, ErrCollateralMissing, "collateral not built by NewCollateral or ParseCollateralJSON")}
	}
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
		if e.SerialNumber != nil {
			m[string(e.SerialNumber.Bytes())] = true
		}
	}
	return m
}

// reparse returns fresh copies of certificates from their DER.
func reparse(certs []*x509.Certificate) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, len(certs))
	for i, c := range certs {
		var err error
		if out[i], err = x509.ParseCertificate(c.Raw); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (v *Verifier) verifyCollateral(col *Collateral) *verifiedCollateral {
	vc := &verifiedCollateral{}
	fail := func(check string, err error) *verifiedCollateral {
		vc.err = &Rejection{Check: check, Reason: ErrMalformed, Cause: err}
		return vc
	}
	var err error
	if vc.tcbChain, err = reparse(col.TCBInfoIssuerChain); err != nil {
		return fail(CheckTCBInfo, err)
	}
	if vc.qeChain, err = reparse(col.QEIdentityIssuerChain); err != nil {
		return fail(CheckQEIdentity, err)
	}
	if vc.pckCRLChain, err = reparse(col.PCKCRLIssuerChain); err != nil {
		return fail(CheckPCKCRL, err)
	}
	for _, ch := range [][]*x509.Certificate{vc.tcbChain, vc.qeChain, vc.pckCRLChain} {
		for _, c := range ch {
			vc.notAfter = earliest(vc.notAfter, c.NotAfter)
		}
	}
	// Root CA CRL: signed by an anchor key.
	if col.RootCACRL != nil {
		if vc.rootCRL, err = x509.ParseRevocationList(col.RootCACRL.Raw); err != nil {
			return fail(CheckRootCACRL, err)
		}
		vc.rootRevoked = serialSet(vc.rootCRL)
		vc.rootCRLAnchor, vc.rootCRLErr = v.checkCRLByAnchor(vc.rootCRL)
	}
	// PCK CRL: signed by the PCK CA named in its issuer chain, which must
	// itself chain to an anchor.
	if col.PCKCRL != nil {
		if vc.pckCRL, err = x509.ParseRevocationList(col.PCKCRL.Raw); err != nil {
			return fail(CheckPCKCRL, err)
		}
		vc.pckRevoked = serialSet(vc.pckCRL)
		vc.pckCRLErr = v.checkPCKCRL(vc)
	}
	if col.TCBInfoBody != nil {
		vc.tcbInfoErr = v.checkSignedBody(CheckTCBInfo, ErrTCBInfoSignature, "TCB info", vc.tcbChain, col.TCBInfoBody, col.TCBInfoSignature, vc)
		if vc.tcbInfoErr == nil {
			if vc.tcbInfo, err = ParseTCBInfo(col.TCBInfoBody); err != nil {
				vc.tcbInfoErr = &Rejection{Check: CheckTCBInfo, Reason: ErrMalformed, Cause: err}
			}
		}
	}
	if col.QEIdentityBody != nil {
		vc.qeIdentityErr = v.checkSignedBody(CheckQEIdentity, ErrQEIdentitySignature, "QE identity", vc.qeChain, col.QEIdentityBody, col.QEIdentitySignature, vc)
		if vc.qeIdentityErr == nil {
			if vc.qeIdentity, err = ParseQEIdentity(col.QEIdentityBody); err != nil {
				vc.qeIdentityErr = &Rejection{Check: CheckQEIdentity, Reason: ErrMalformed, Cause: err}
			}
		}
	}
	return vc
}

func (v *Verifier) checkCRLByAnchor(l *x509.RevocationList) (*ecdsa.PublicKey, error) {
	for _, a := range v.anchors {
		if err := checkCRLSignature(l, a); err == nil {
			return a, nil
		}
	}
	return nil, reject(CheckRootCACRL, ErrCRLInvalid, "root CA CRL (issuer %q) is not signed by a trust anchor", l.Issuer.CommonName)
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

func (v *Verifier) checkPCKCRL(vc *verifiedCollateral) error {
	l, ch := vc.pckCRL, vc.pckCRLChain
	if len(ch) != 2 {
		return reject(CheckPCKCRL, ErrCRLInvalid, "PCK CRL issuer chain has %d certificates, want the PCK CA and the root CA", len(ch))
	}
	if err := v.checkIssuedByAnchor(ch[0], ch[1], "PCK CRL issuer"); err != nil {
		var r *Rejection
		if errors.As(err, &r) {
			r.Check = CheckPCKCRL
		}
		return err
	}
	if !bytes.Equal(l.RawIssuer, ch[0].RawSubject) {
		return reject(CheckPCKCRL, ErrCRLInvalid, "PCK CRL issuer %q is not its issuer chain's %q", l.Issuer.CommonName, ch[0].Subject.CommonName)
	}
	if err := l.CheckSignatureFrom(ch[0]); err != nil {
		return &Rejection{Check: CheckPCKCRL, Reason: ErrCRLInvalid, Detail: fmt.Sprintf("PCK CRL not signed by %q", ch[0].Subject.CommonName), Cause: err}
	}
	vc.pckCRLIssuer = ch[0]
	return nil
}

// checkSignedBody checks a TCB info or QE identity signature: by Intel's
// TCB signing certificate (a non-CA that may sign data), issued by an
// anchor, not on the root CA CRL.
func (v *Verifier) checkSignedBody(check string, reason error, what string, chain []*x509.Certificate, body, sig []byte, vc *verifiedCollateral) error {
	if len(chain) != 2 {
		return reject(check, ErrCertChain, "%s issuer chain has %d certificates, want the TCB signing certificate and the root CA", what, len(chain))
	}
	signer, root := chain[0], chain[1]
	if err := v.checkIssuedByAnchor(signer, root, what+" signing certificate"); err != nil {
		var r *Rejection
		if errors.As(err, &r) {
			r.Check = check
		}
		return err
	}
	if signer.IsCA || (signer.KeyUsage != 0 && signer.KeyUsage&x509.KeyUsageDigitalSignature == 0) {
		return reject(check, ErrCertChain, "%s signer %q is a CA or may not sign data", what, signer.Subject.CommonName)
	}
	if !v.simulated && !strings.Contains(signer.Subject.CommonName, "SGX TCB Signing") {
		return reject(check, ErrCertChain, "%s signer %q is not Intel's SGX TCB Signing certificate", what, signer.Subject.CommonName)
	}
	if vc.rootRevoked[string(signer.SerialNumber.Bytes())] {
		return reject(check, ErrTCBSigningRevoked, "%s signing certificate %q (serial %x) is on the root CA CRL", what, signer.Subject.CommonName, signer.SerialNumber)
	}
	k, ok := signer.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return reject(check, ErrCertChain, "%s signing key is not ECDSA", what)
	}
	if len(sig) != 64 {
		return reject(check, reason, "signature is %d bytes, want 64", len(sig))
	}
	d := sha256.Sum256(body)
	if !verifyRS(k, d[:], sig) {
		return reject(check, reason, "signature by %q over the %d-byte %s body does not verify", signer.Subject.CommonName, len(body), what)
	}
	return nil
}

// sameRoot reports whether a collateral chain ends in the PCK chain's root
// key: with several anchors, one anchor's collateral must not vouch for
// another's platform.
func sameRoot(chain []*x509.Certificate, root *x509.Certificate) bool {
	if len(chain) == 0 {
		return false
	}
	k, ok := chain[len(chain)-1].PublicKey.(*ecdsa.PublicKey)
	return ok && k.Equal(root.PublicKey)
}

// crlCurrent checks a CRL's validity window at time at; a CRL without
// nextUpdate is refused (RFC 5280 requires it; Intel's carry it).
func crlCurrent(check, what string, l *x509.RevocationList, at time.Time) error {
	if l.NextUpdate.IsZero() {
		return reject(check, ErrCRLInvalid, "%s has no nextUpdate", what)
	}
	if at.Before(l.ThisUpdate) || at.After(l.NextUpdate) {
		return reject(check, ErrCRLExpired, "%s valid %s to %s, verification time %s", what,
			l.ThisUpdate.Format(time.RFC3339), l.NextUpdate.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	return nil
}

// checkRevocation checks both CRLs against the PCK chain at time at and
// returns the CRLs' earliest next update.
func (v *Verifier) checkRevocation(vc *verifiedCollateral, chain *pckChain, at time.Time) (time.Time, error) {
	if vc.rootCRLErr != nil {
		return time.Time{}, vc.rootCRLErr
	}
	if vc.pckCRLErr != nil {
		return time.Time{}, vc.pckCRLErr
	}
	if !vc.rootCRLAnchor.Equal(chain.root.PublicKey) || !bytes.Equal(vc.rootCRL.RawIssuer, chain.root.RawSubject) {
		return time.Time{}, reject(CheckRootCACRL, ErrCRLInvalid, "the root CA CRL (issuer %q) is not the CRL of the PCK chain's root %q", vc.rootCRL.Issuer.CommonName, chain.root.Subject.CommonName)
	}
	if err := crlCurrent(CheckRootCACRL, "root CA CRL", vc.rootCRL, at); err != nil {
		return time.Time{}, err
	}
	if err := crlCurrent(CheckPCKCRL, "PCK CRL", vc.pckCRL, at); err != nil {
		return time.Time{}, err
	}
	if err := certsValidAt(CheckPCKCRL, "PCK CRL issuer chain", vc.pckCRLChain, at); err != nil {
		return time.Time{}, err
	}
	if !bytes.Equal(vc.pckCRLIssuer.RawSubject, chain.inter.RawSubject) || !sameRoot(vc.pckCRLChain, chain.root) {
		return time.Time{}, reject(CheckPCKCRL, ErrCRLInvalid, "the PCK CRL is issued by %q, but the PCK certificate by %q: a CRL of the wrong CA", vc.pckCRLIssuer.Subject.CommonName, chain.inter.Subject.CommonName)
	}
	if k, ok := chain.inter.PublicKey.(*ecdsa.PublicKey); !ok || !k.Equal(vc.pckCRLIssuer.PublicKey) {
		return time.Time{}, reject(CheckPCKCRL, ErrCRLInvalid, "the PCK CRL's issuer key is not the key of the PCK certificate's issuer %q", chain.inter.Subject.CommonName)
	}
	if vc.pckRevoked[string(chain.leaf.SerialNumber.Bytes())] {
		return time.Time{}, reject(CheckPCKCRL, ErrPCKRevoked, "PCK certificate serial %x is on the %q CRL", chain.leaf.SerialNumber, chain.inter.Subject.CommonName)
	}
	if vc.rootRevoked[string(chain.inter.SerialNumber.Bytes())] {
		return time.Time{}, reject(CheckRootCACRL, ErrIntermediateRevoked, "%q (serial %x) is on the root CA CRL", chain.inter.Subject.CommonName, chain.inter.SerialNumber)
	}
	return earliest(vc.rootCRL.NextUpdate, vc.pckCRL.NextUpdate), nil
}

// checkQEReport verifies the PCK key's signature over the QE report
// (cached per PCK chain, by report and signature).
func (v *Verifier) checkQEReport(q *Quote, chain *pckChain) error {
	var kb [SGXReportLen + 64]byte
	key := string(append(append(kb[:0], q.CertData.QEReport.raw...), q.CertData.QEReportSignature[:]...))
	if _, ok := chain.qes.Load(key); ok {
		v.count(cacheQEReport, true)
		return nil
	}
	v.count(cacheQEReport, false)
	d := sha256.Sum256(q.CertData.QEReport.raw)
	if !verifyRS(chain.leafKey, d[:], q.CertData.QEReportSignature[:]) {
		return reject(CheckQEReport, ErrQEReportSignature, "the PCK key's signature over the QE report does not verify")
	}
	if v.maxCache > 0 && chain.nqes.Add(1) <= 64 {
		chain.qes.Store(key, struct{}{})
	}
	return nil
}

// parseRejection wraps a parse error: unsupported (a quote version or key
// type asps does not verify) or malformed.
func parseRejection(err error) error {
	reason := ErrMalformed
	if errors.Is(err, ErrUnsupported) {
		reason = ErrUnsupported
	}
	return &Rejection{Check: CheckParse, Reason: reason, Cause: err}
}
