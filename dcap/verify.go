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
	"math/big"
	"slices"
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

// IntelRootCA returns Intel's SGX Root CA certificate (a fresh copy).
func IntelRootCA() *x509.Certificate {
	c, err := x509.ParseCertificate(intelRootDER())
	if err != nil {
		panic("dcap: embedded Intel root: " + err.Error()) // a build defect, not input
	}
	return c
}

var intelRootDER = sync.OnceValue(func() []byte {
	blk, _ := pem.Decode(IntelRootCAPEM)
	if blk == nil {
		panic("dcap: embedded Intel root is not PEM") // a build defect, not input
	}
	return blk.Bytes
})

var intelRootSPKI = sync.OnceValue(func() []byte { return IntelRootCA().RawSubjectPublicKeyInfo })

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
// to the next: verified PCK chains (with the QE reports their keys signed),
// verified collateral, and intermediate certificates verified under an
// anchor. Each cache is bounded by bytes and evicts the least recently used
// entries. Time-dependent checks (validity windows) are made on every call.
type Verifier struct {
	anchors []anchor

	chains *lru[[32]byte, *pckChain]
	cols   *lru[[32]byte, *verifiedCollateral]
	issued *lru[[32]byte, struct{}]
	// cas holds parsed PCK CA certificates by the digest of their DER:
	// many platforms, two CAs.
	cas *lru[[32]byte, *x509.Certificate]

	chainBytes, colBytes int64

	// roots holds root certificates other than the configured ones whose
	// key is an anchor and whose self-signature was checked: Intel has
	// issued more than one certificate for its root key. Bounded.
	rootsMu sync.Mutex
	roots   map[[32]byte]bool

	qeHits, qeMisses atomic.Uint64
}

// anchor is a trust anchor: its key, and the certificate it was given as.
type anchor struct {
	key  *ecdsa.PublicKey
	cert *x509.Certificate
}

// Default cache bounds, in estimated bytes held.
const (
	DefaultChainCacheBytes      = 32 << 20
	DefaultCollateralCacheBytes = 32 << 20
	issuedCacheBytes            = 256 << 10
	maxPinnedRoots              = 16
	maxQEReportsPerChain        = 4
)

// CacheStats counts cache hits, misses and evictions and the estimated
// bytes each cache holds, for metrics.
type CacheStats struct {
	ChainHits, ChainMisses           uint64
	CollateralHits, CollateralMisses uint64
	QEReportHits, QEReportMisses     uint64

	Chain, Collateral, Intermediate LRUStats
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithTrustAnchors replaces Intel's SGX Root CA with the given roots,
// pinned by key. Use it for tests and the simulator. Whether a verdict is
// Simulated is decided per quote, by the root its chain ends in: only
// Intel's root key gives a verdict that is not simulated.
func WithTrustAnchors(roots ...*x509.Certificate) Option {
	return func(v *Verifier) {
		v.anchors = nil
		for _, r := range roots {
			own, err := x509.ParseCertificate(r.Raw) // a private copy
			if err != nil {
				continue
			}
			k, ok := own.PublicKey.(*ecdsa.PublicKey)
			if !ok {
				continue
			}
			v.anchors = append(v.anchors, anchor{key: k, cert: own})
		}
	}
}

// WithCacheSize bounds the PCK-chain and collateral caches to about n
// entries each (0 disables caching, for measuring the cold path). Prefer
// WithCacheBytes.
func WithCacheSize(n int) Option {
	return func(v *Verifier) {
		v.chainBytes, v.colBytes = int64(n)*(chainEntryBytes+8<<10), int64(n)*(collateralEntryBytes+48<<10)
	}
}

// WithCacheBytes bounds the PCK-chain cache (one entry per platform) and
// the collateral cache (one entry per collateral set) by the bytes their
// entries are estimated to hold; 0 disables a cache.
func WithCacheBytes(chains, collateral int64) Option {
	return func(v *Verifier) { v.chainBytes, v.colBytes = max(chains, 0), max(collateral, 0) }
}

// NewVerifier returns a verifier anchored at Intel's SGX Root CA unless an
// option says otherwise.
func NewVerifier(opts ...Option) *Verifier {
	v := &Verifier{chainBytes: DefaultChainCacheBytes, colBytes: DefaultCollateralCacheBytes, roots: map[[32]byte]bool{}}
	intel := IntelRootCA()
	v.anchors = []anchor{{key: intel.PublicKey.(*ecdsa.PublicKey), cert: intel}}
	for _, o := range opts {
		o(v)
	}
	v.chains = newLRU[[32]byte, *pckChain](v.chainBytes)
	v.cols = newLRU[[32]byte, *verifiedCollateral](v.colBytes)
	if v.chainBytes > 0 || v.colBytes > 0 {
		v.issued = newLRU[[32]byte, struct{}](issuedCacheBytes)
		v.cas = newLRU[[32]byte, *x509.Certificate](issuedCacheBytes)
	}
	return v
}

// Stats returns the cache counters.
func (v *Verifier) Stats() CacheStats {
	ch, co := v.chains.stats(), v.cols.stats()
	return CacheStats{
		ChainHits: ch.Hits, ChainMisses: ch.Misses,
		CollateralHits: co.Hits, CollateralMisses: co.Misses,
		QEReportHits: v.qeHits.Load(), QEReportMisses: v.qeMisses.Load(),
		Chain: ch, Collateral: co, Intermediate: v.issued.stats(),
	}
}

// ForgetPlatforms drops the cached PCK chains and the QE reports seen
// under them; verified collateral and intermediate certificates stay.
// The next quote of every platform is verified as a new platform's.
func (v *Verifier) ForgetPlatforms() { v.chains.clear() }

// anchoredKey reports whether a certificate carries an anchor's key.
// Keys are compared by their DER SubjectPublicKeyInfo, which for a P-256
// key as crypto/x509 accepts it has one encoding.
func (v *Verifier) anchoredKey(c *x509.Certificate) bool {
	for _, a := range v.anchors {
		if bytes.Equal(a.cert.RawSubjectPublicKeyInfo, c.RawSubjectPublicKeyInfo) {
			return true
		}
	}
	return false
}

// isIntel reports whether a root certificate carries Intel's root key.
func isIntel(root *x509.Certificate) bool {
	return bytes.Equal(root.RawSubjectPublicKeyInfo, intelRootSPKI())
}

// Result is an accepted quote: the claims and how the status was reached.
type Result struct {
	claims.Claims
	PlatformTCBStatus  string `json:"platform_tcb_status,omitempty"`
	QETCBStatus        string `json:"qe_tcb_status,omitempty"`
	TDXModuleTCBStatus string `json:"tdx_module_tcb_status,omitempty"`
	// CurrentTCBStatus (TD 1.5) is the status of the TCB the TD would run
	// on if relaunched (TEE_TCB_SVN2), converged with the QE's.
	CurrentTCBStatus        string `json:"current_tcb_status,omitempty"`
	TCBEvaluationDataNumber int    `json:"tcb_evaluation_data_number,omitempty"`
	RevocationChecked       bool   `json:"revocation_checked"`
	// QuoteLen is the length of the quote proper (header, body, signature
	// data), SignedLen the part the attestation key signs; zero padding
	// after the quote is not counted.
	QuoteLen  int `json:"quote_len"`
	SignedLen int `json:"signed_len"`
	// Quote is the verifier's own parse of the quote's bytes (the claims
	// were read from it before it was returned; changing it changes
	// nothing), PCK a copy of the PCK certificate's SGX extensions.
	Quote *Quote         `json:"-"`
	PCK   *PCKExtensions `json:"-"`
}

// Verify parses and verifies a quote against collateral at time at. The
// verifier reads its own copy of quote.
func (v *Verifier) Verify(quote []byte, col *Collateral, at time.Time) (*Result, error) {
	q, err := ParseQuote(bytes.Clone(quote))
	if err != nil {
		return nil, parseRejection(err)
	}
	if err := requireFull(col); err != nil {
		return nil, err
	}
	return v.verify(q, col, at, true)
}

// VerifyQuote verifies a parsed quote completely: PCK chain to the anchor,
// CRLs, TCB info, QE identity, QE report, quote signature, TCB level. It
// verifies the bytes q was parsed from, parsed anew: the exported fields
// of q are not read, so changing them changes no verdict and no claim.
func (v *Verifier) VerifyQuote(q *Quote, col *Collateral, at time.Time) (*Result, error) {
	own, err := q.reparse()
	if err != nil {
		return nil, err
	}
	if err := requireFull(col); err != nil {
		return nil, err
	}
	return v.verify(own, col, at, true)
}

// requireFull checks that collateral holds everything a full verdict
// needs, as the verifier will read it (not its exported fields).
func requireFull(col *Collateral) error {
	if col == nil || col.parts == nil || col.parts.tcbBody == nil || col.parts.qeBody == nil {
		return reject(CheckTCBInfo, ErrCollateralMissing, "TCB info and QE identity are required (use chain-only verification to check just the signatures)")
	}
	if col.parts.pckCRL == nil || col.parts.rootCRL == nil {
		return reject(CheckPCKCRL, ErrCRLMissing, "PCK CRL and root CA CRL are required")
	}
	return nil
}

// reparse returns a fresh parse of a private copy of the bytes q was
// parsed from.
func (q *Quote) reparse() (*Quote, error) {
	if q == nil || q.raw == nil {
		return nil, reject(CheckParse, ErrMalformed, "not a parsed quote")
	}
	own, err := ParseQuote(bytes.Clone(q.raw))
	if err != nil {
		return nil, parseRejection(err)
	}
	return own, nil
}

// CheckPCKChain verifies the quote's PCK certificate chain to a trust
// anchor and its validity at time at (cached like every chain), and
// returns the PCK certificate's SGX extensions. A server calls it before it
// fetches collateral for the FMSPC the certificate names, so that a forged
// certificate cannot make it look up made-up platforms upstream.
func (v *Verifier) CheckPCKChain(q *Quote, at time.Time) (*PCKExtensions, error) {
	own, err := q.reparse()
	if err != nil {
		return nil, err
	}
	chain := v.pckChain(own.CertData.PCKCertChain, v.newMemo())
	if chain.err != nil {
		return nil, chain.err
	}
	if err := chain.validAt(at); err != nil {
		return nil, err
	}
	return chain.ext.clone(), nil
}

// VerifyChain checks only the cryptographic chain — anchor → PCK
// certificate → QE report → quote — for when no TCB info is at hand. CRLs
// in col (which may be nil) are checked when present. The TCB status is
// reported as Unknown.
func (v *Verifier) VerifyChain(quote []byte, col *Collateral, at time.Time) (*Result, error) {
	q, err := ParseQuote(bytes.Clone(quote))
	if err != nil {
		return nil, parseRejection(err)
	}
	return v.verify(q, col, at, false)
}

// verify checks q, which the verifier parsed itself from its own copy of
// the bytes.
func (v *Verifier) verify(q *Quote, col *Collateral, at time.Time, full bool) (*Result, error) {
	if q == nil || (q.SGX == nil) == (q.TD == nil) || len(q.SignedData) == 0 {
		return nil, reject(CheckParse, ErrMalformed, "not a parsed quote")
	}
	if q.Header.QEVendorID != IntelQEVendorID {
		return nil, reject(CheckQEVendor, ErrQEVendor, "QE vendor ID %x, want %x", q.Header.QEVendorID, IntelQEVendorID)
	}
	tdx := q.TD != nil
	memo := v.newMemo()

	// PCK certificate chain (cached), then its validity at this time.
	chain := v.pckChain(q.CertData.PCKCertChain, memo)
	if chain.err != nil {
		return nil, chain.err
	}
	if err := chain.validAt(at); err != nil {
		return nil, err
	}
	expiry := chain.notAfter

	res := &Result{Quote: q, PCK: chain.ext.clone(), QuoteLen: q.Len(), SignedLen: len(q.SignedData)}

	// Collateral: signatures and CRL issuers (cached), then dates.
	var vc *verifiedCollateral
	if col != nil {
		if vc = v.collateral(col, memo); vc.err != nil {
			return nil, vc.err
		}
	}
	if full && (vc == nil || vc.pckCRL == nil || vc.rootCRL == nil) {
		// Checked again on what was verified, whatever the caller's
		// Collateral says.
		return nil, reject(CheckPCKCRL, ErrCRLMissing, "PCK CRL and root CA CRL are required")
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
	res.Simulated = !isIntel(chain.root)
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
	// qes holds the digests of the QE reports (report ‖ signature) this
	// PCK key was seen to sign; a platform has one QE, so a few at most.
	qmu sync.Mutex
	qes [][32]byte

	leaf, inter, root   *x509.Certificate
	leafKey             *ecdsa.PublicKey
	ext                 *PCKExtensions
	notBefore, notAfter time.Time
	err                 error
	cost                int64
}

// A cached PCK chain is counted as twice its DER plus chainEntryBytes
// (parsed certificates, extensions, QE report digests, bookkeeping); a
// cached collateral set as three times its raw size plus
// collateralEntryBytes (parsed CRLs and documents, revoked-serial sets).
// TestCacheEntryBytes checks these against the heap: about 10.6 KB per
// platform and 36 KB per collateral set measured.
const (
	chainEntryBytes      = 7 << 10
	collateralEntryBytes = 16 << 10
)

func (c *pckChain) validAt(at time.Time) error {
	if err := certsValidAt(CheckPCKChain, "PCK certificate chain", []*x509.Certificate{c.leaf, c.inter, c.root}, at); err != nil {
		return err
	}
	return nil
}

const (
	pemBegin = "-----BEGIN CERTIFICATE-----"
	pemEnd   = "-----END CERTIFICATE-----"
)

// splitPEMChain decodes the PCK certification data strictly: PEM
// certificate blocks without headers, separated and surrounded by
// whitespace only, optionally followed by NUL bytes (Intel's quoting
// library ends the data with one). Anything else around the chain is
// refused, so that one chain cannot be presented in many byte forms.
func splitPEMChain(b []byte, field string) ([][]byte, error) {
	var ders [][]byte
	rest := b
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(bytes.TrimLeft(rest, "\x00")) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte(pemBegin)) {
			return nil, &FormatError{Field: field, Msg: fmt.Sprintf("bytes other than whitespace around the PEM certificates, at offset %d", len(b)-len(rest))}
		}
		end := bytes.Index(rest, []byte(pemEnd))
		if end < 0 {
			return nil, &FormatError{Field: field, Msg: fmt.Sprintf("certificate %d has no PEM end line", len(ders))}
		}
		seg := rest[:end+len(pemEnd)]
		blk, tail := pem.Decode(seg)
		if blk == nil || len(tail) != 0 {
			return nil, &FormatError{Field: field, Msg: fmt.Sprintf("certificate %d is not a PEM block", len(ders))}
		}
		if len(blk.Headers) != 0 {
			return nil, &FormatError{Field: field, Msg: fmt.Sprintf("certificate %d has PEM headers", len(ders))}
		}
		ders = append(ders, blk.Bytes)
		if len(ders) > 8 {
			return nil, &FormatError{Field: field, Msg: "more than 8 certificates"}
		}
		rest = rest[end+len(pemEnd):]
	}
	if len(ders) == 0 {
		return nil, &FormatError{Field: field, Msg: "no PEM certificate"}
	}
	return ders, nil
}

// pckChain verifies (or finds verified) the PCK certificate chain of
// certification data. The cache holds one entry per chain of
// certificates, keyed by the digest of the chain's canonical PEM (the
// DER re-encoded), never by the bytes as presented: certification data in
// that canonical form (Intel's, up to trailing NULs) is found without
// decoding; any other accepted form (other whitespace) is decoded
// strictly and finds the same entry. Failures are not cached, so a flood
// of bad chains evicts nothing.
func (v *Verifier) pckChain(pemChain []byte, memo *sigMemo) *pckChain {
	caching := v.chains.max > 0
	if caching {
		if c, ok := v.chains.peek(sha256.Sum256(bytes.TrimRight(pemChain, "\x00"))); ok {
			v.chains.hits.Add(1)
			return c
		}
	}
	ders, err := splitPEMChain(pemChain, "pck_cert_chain")
	if err != nil {
		return &pckChain{err: &Rejection{Check: CheckPCKChain, Reason: ErrMalformed, Cause: err}}
	}
	var key [32]byte
	if caching {
		key = canonicalChainKey(ders)
		if c, ok := v.chains.get(key); ok {
			return c
		}
	}
	c := v.buildPCKChain(ders, memo)
	if c.err == nil && caching {
		v.chains.add(key, c, c.cost)
	}
	return c
}

// canonicalChainKey is the SHA-256 of the chain's PEM as pem.Encode
// writes it.
func canonicalChainKey(ders [][]byte) [32]byte {
	h := sha256.New()
	for _, d := range ders {
		_ = pem.Encode(h, &pem.Block{Type: "CERTIFICATE", Bytes: d})
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (v *Verifier) buildPCKChain(ders [][]byte, memo *sigMemo) *pckChain {
	c := &pckChain{}
	if len(ders) != 3 {
		c.err = reject(CheckPCKChain, ErrCertChain, "%d certificates, want 3 (PCK, PCK CA, root CA)", len(ders))
		return c
	}
	certs := make([]*x509.Certificate, 3)
	var caKey [32]byte
	caParsed := false
	for i, d := range ders {
		if a := v.anchorCert(d); a != nil && i == 2 {
			certs[i] = a // the pinned root, parsed once
			c.cost += int64(len(d))
			continue
		}
		if i == 1 && v.cas != nil {
			caKey = sha256.Sum256(d)
			if x, ok := v.cas.get(caKey); ok {
				certs[i] = x // parsed before (and never changed: the verifier's own)
				c.cost += int64(len(d))
				continue
			}
		}
		x, err := x509.ParseCertificate(d)
		if err != nil {
			c.err = &Rejection{Check: CheckPCKChain, Reason: ErrMalformed, Cause: &FormatError{Field: "pck_cert_chain", Msg: fmt.Sprintf("certificate %d: %v", i, err)}}
			return c
		}
		certs[i] = x
		c.cost += int64(len(d))
		caParsed = caParsed || i == 1
	}
	c.cost = 2*c.cost + chainEntryBytes
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
	if err := v.checkIssuedByAnchor(c.inter, c.root, "PCK CA certificate", memo); err != nil {
		c.err = err
		return c
	}
	if caParsed && v.cas != nil {
		// Kept only once verified: a flood of made-up CAs keeps nothing.
		v.cas.add(caKey, c.inter, 4*int64(len(ders[1]))+2048)
	}
	if !bytes.Equal(c.leaf.RawIssuer, c.inter.RawSubject) {
		c.err = reject(CheckPCKChain, ErrCertChain, "PCK certificate issuer %q is not the PCK CA %q", c.leaf.Issuer.CommonName, c.inter.Subject.CommonName)
		return c
	}
	if c.leaf.IsCA {
		c.err = reject(CheckPCKChain, ErrCertChain, "the PCK certificate %q is a CA", c.leaf.Subject.CommonName)
		return c
	}
	k, ok := c.leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve.Params().Name != "P-256" {
		c.err = reject(CheckPCKChain, ErrCertChain, "PCK certificate key is not ECDSA P-256")
		return c
	}
	var err error
	if c.ext, err = ParsePCKExtensions(c.leaf); err != nil {
		c.err = &Rejection{Check: CheckPCKChain, Reason: ErrPCKExtensions, Cause: err}
		return c
	}
	if err := checkCertSignature(c.leaf, c.inter); err != nil {
		c.err = &Rejection{Check: CheckPCKChain, Reason: ErrCertChain, Detail: "PCK certificate not signed by the PCK CA", Cause: err}
		return c
	}
	c.leafKey = k
	return c
}

// sigMemo remembers, for one verification, which certificates were
// verified under which anchored root, and consults the verifier's bounded
// cache of them (when caching is on), so that a certificate appearing in
// several chains (the PCK CA, the TCB signing certificate) is verified
// once.
type sigMemo struct {
	v     *Verifier
	local [][2][]byte // cert DER, root DER
}

func (v *Verifier) newMemo() *sigMemo { return &sigMemo{v: v} }

func (m *sigMemo) has(cert, root *x509.Certificate) bool {
	for _, l := range m.local {
		if bytes.Equal(l[0], cert.Raw) && bytes.Equal(l[1], root.Raw) {
			return true
		}
	}
	if m.v.issued == nil {
		return false
	}
	_, ok := m.v.issued.get(issuedKey(cert, root))
	return ok
}

func (m *sigMemo) add(cert, root *x509.Certificate) {
	m.local = append(m.local, [2][]byte{cert.Raw, root.Raw})
	if m.v.issued != nil {
		m.v.issued.add(issuedKey(cert, root), struct{}{}, 128)
	}
}

func issuedKey(cert, root *x509.Certificate) [32]byte {
	h := sha256.New()
	rh := sha256.Sum256(root.Raw)
	h.Write(rh[:])
	h.Write(cert.Raw)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// anchorCert returns the configured anchor certificate whose DER is der.
func (v *Verifier) anchorCert(der []byte) *x509.Certificate {
	for _, a := range v.anchors {
		if bytes.Equal(der, a.cert.Raw) {
			return a.cert
		}
	}
	return nil
}

// checkRoot accepts a root certificate that is a configured anchor
// (pinned: its signature is not checked per quote), or another
// certificate for an anchor's key whose self-signature verifies (checked
// once, remembered for a bounded number of such certificates).
func (v *Verifier) checkRoot(root *x509.Certificate, what string) error {
	if v.anchorCert(root.Raw) != nil {
		return nil
	}
	if !v.anchoredKey(root) {
		return reject(CheckPCKChain, ErrUntrustedRoot, "%s chains to %q (key SHA-256 %s), which is not a trust anchor", what, root.Subject.CommonName, keyID(root))
	}
	h := sha256.Sum256(root.Raw)
	v.rootsMu.Lock()
	ok := v.roots[h]
	v.rootsMu.Unlock()
	if ok {
		return nil
	}
	if err := checkCertSignature(root, root); err != nil {
		return &Rejection{Check: CheckPCKChain, Reason: ErrCertChain, Detail: "root CA certificate is not self-signed", Cause: err}
	}
	v.rootsMu.Lock()
	if len(v.roots) < maxPinnedRoots {
		v.roots[h] = true
	}
	v.rootsMu.Unlock()
	return nil
}

// checkIssuedByAnchor checks that cert is signed by root and that root is
// a trust anchor.
func (v *Verifier) checkIssuedByAnchor(cert, root *x509.Certificate, what string, memo *sigMemo) error {
	if err := v.checkRoot(root, what); err != nil {
		return err
	}
	if !bytes.Equal(cert.RawIssuer, root.RawSubject) {
		return reject(CheckPCKChain, ErrCertChain, "%s issuer %q is not the root %q", what, cert.Issuer.CommonName, root.Subject.CommonName)
	}
	if memo.has(cert, root) {
		return nil
	}
	if err := checkCertSignature(cert, root); err != nil {
		return &Rejection{Check: CheckPCKChain, Reason: ErrCertChain, Detail: what + " not signed by the root CA", Cause: err}
	}
	memo.add(cert, root)
	return nil
}

func keyID(c *x509.Certificate) string {
	s := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(s[:8])
}

// Verified collateral: what does not depend on the time, cached by digest.
//
// Everything the verdict reads from collateral comes from here, derived
// from the collateral's private parse of the raw bytes whose signatures
// were checked — never from the exported, editable fields of a Collateral.

type verifiedCollateral struct {
	err error // the collateral cannot be used at all

	rootCRL, pckCRL       *x509.RevocationList
	rootCRLErr, pckCRLErr error
	rootCRLAnchor         []byte // the SubjectPublicKeyInfo of the anchor that signed the root CA CRL
	pckCRLIssuer          *x509.Certificate
	pckCRLChain           []*x509.Certificate
	rootRevoked           revokedSet
	pckRevoked            revokedSet

	tcbInfo       *TCBInfo
	tcbInfoErr    error
	tcbChain      []*x509.Certificate
	qeIdentity    *QEIdentity
	qeIdentityErr error
	qeChain       []*x509.Certificate

	// notAfter is the earliest NotAfter of every collateral certificate.
	notAfter time.Time
}

func (v *Verifier) collateral(col *Collateral, memo *sigMemo) *verifiedCollateral {
	if col.parts == nil {
		return &verifiedCollateral{err: reject(CheckTCBInfo, ErrCollateralMissing, "collateral not built by NewCollateral or ParseCollateralJSON")}
	}
	if vc, ok := v.cols.get(col.parts.digest); ok {
		return vc
	}
	vc := v.verifyCollateral(col.parts, memo)
	v.cols.add(col.parts.digest, vc, 3*col.parts.size+collateralEntryBytes)
	return vc
}

// revokedSet answers whether a serial number is on a CRL: from a map
// when the verified collateral is cached (built once), by a scan of the
// CRL otherwise (cold: a few lookups do not pay for a map).
type revokedSet struct {
	l *x509.RevocationList
	m map[string]bool
}

func newRevokedSet(l *x509.RevocationList, indexed bool) revokedSet {
	s := revokedSet{l: l}
	if indexed {
		s.m = make(map[string]bool, len(l.RevokedCertificateEntries))
		for _, e := range l.RevokedCertificateEntries {
			if e.SerialNumber != nil {
				s.m[string(e.SerialNumber.Bytes())] = true
			}
		}
	}
	return s
}

func (s revokedSet) has(serial *big.Int) bool {
	if s.l == nil || serial == nil {
		return false
	}
	if s.m != nil {
		return s.m[string(serial.Bytes())]
	}
	for _, e := range s.l.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(serial) == 0 {
			return true
		}
	}
	return false
}

func (v *Verifier) verifyCollateral(p *colParts, memo *sigMemo) *verifiedCollateral {
	vc := &verifiedCollateral{tcbChain: p.tcbChain, qeChain: p.qeChain, pckCRLChain: p.pckCRLChain}
	for _, ch := range [][]*x509.Certificate{vc.tcbChain, vc.qeChain, vc.pckCRLChain} {
		for _, c := range ch {
			vc.notAfter = earliest(vc.notAfter, c.NotAfter)
		}
	}
	// Root CA CRL: signed by an anchor key.
	if p.rootCRL != nil {
		vc.rootCRL = p.rootCRL
		vc.rootRevoked = newRevokedSet(vc.rootCRL, v.cols.max > 0)
		vc.rootCRLAnchor, vc.rootCRLErr = v.checkCRLByAnchor(vc.rootCRL)
	}
	// PCK CRL: signed by the PCK CA named in its issuer chain, which must
	// itself chain to an anchor.
	if p.pckCRL != nil {
		vc.pckCRL = p.pckCRL
		vc.pckRevoked = newRevokedSet(vc.pckCRL, v.cols.max > 0)
		vc.pckCRLErr = v.checkPCKCRL(vc, memo)
	}
	if p.tcbBody != nil {
		vc.tcbInfoErr = v.checkSignedBody(CheckTCBInfo, ErrTCBInfoSignature, "TCB info", vc.tcbChain, p.tcbBody, p.tcbSig, vc, memo)
		if vc.tcbInfoErr == nil {
			vc.tcbInfo = p.tcbInfo
		}
	}
	if p.qeBody != nil {
		vc.qeIdentityErr = v.checkSignedBody(CheckQEIdentity, ErrQEIdentitySignature, "QE identity", vc.qeChain, p.qeBody, p.qeSig, vc, memo)
		if vc.qeIdentityErr == nil {
			vc.qeIdentity = p.qeIdentity
		}
	}
	return vc
}

func (v *Verifier) checkCRLByAnchor(l *x509.RevocationList) ([]byte, error) {
	// The anchor the CRL names as its issuer first: one signature check.
	for _, named := range []bool{true, false} {
		for _, a := range v.anchors {
			if bytes.Equal(l.RawIssuer, a.cert.RawSubject) != named {
				continue
			}
			if err := checkCRLSignature(l, a.key); err == nil {
				return a.cert.RawSubjectPublicKeyInfo, nil
			}
		}
	}
	return nil, reject(CheckRootCACRL, ErrCRLInvalid, "root CA CRL (issuer %q) is not signed by a trust anchor", l.Issuer.CommonName)
}

// signatureChecks counts the signature verifications made, for the
// tests that show each signature is verified once per tier.
var signatureChecks atomic.Int64

func checkCertSignature(c, parent *x509.Certificate) error {
	signatureChecks.Add(1)
	return c.CheckSignatureFrom(parent)
}

func checkCRLSignatureFrom(l *x509.RevocationList, issuer *x509.Certificate) error {
	signatureChecks.Add(1)
	return l.CheckSignatureFrom(issuer)
}

func checkCRLSignature(l *x509.RevocationList, k *ecdsa.PublicKey) error {
	signatureChecks.Add(1)
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

func (v *Verifier) checkPCKCRL(vc *verifiedCollateral, memo *sigMemo) error {
	l, ch := vc.pckCRL, vc.pckCRLChain
	if len(ch) != 2 {
		return reject(CheckPCKCRL, ErrCRLInvalid, "PCK CRL issuer chain has %d certificates, want the PCK CA and the root CA", len(ch))
	}
	if err := v.checkIssuedByAnchor(ch[0], ch[1], "PCK CRL issuer", memo); err != nil {
		var r *Rejection
		if errors.As(err, &r) {
			r.Check = CheckPCKCRL
		}
		return err
	}
	if !bytes.Equal(l.RawIssuer, ch[0].RawSubject) {
		return reject(CheckPCKCRL, ErrCRLInvalid, "PCK CRL issuer %q is not its issuer chain's %q", l.Issuer.CommonName, ch[0].Subject.CommonName)
	}
	if err := checkCRLSignatureFrom(l, ch[0]); err != nil {
		return &Rejection{Check: CheckPCKCRL, Reason: ErrCRLInvalid, Detail: fmt.Sprintf("PCK CRL not signed by %q", ch[0].Subject.CommonName), Cause: err}
	}
	vc.pckCRLIssuer = ch[0]
	return nil
}

// checkSignedBody checks a TCB info or QE identity signature: by Intel's
// TCB signing certificate (a non-CA that may sign data), issued by an
// anchor, not on the root CA CRL.
func (v *Verifier) checkSignedBody(check string, reason error, what string, chain []*x509.Certificate, body, sig []byte, vc *verifiedCollateral, memo *sigMemo) error {
	if len(chain) != 2 {
		return reject(check, ErrCertChain, "%s issuer chain has %d certificates, want the TCB signing certificate and the root CA", what, len(chain))
	}
	signer, root := chain[0], chain[1]
	if err := v.checkIssuedByAnchor(signer, root, what+" signing certificate", memo); err != nil {
		var r *Rejection
		if errors.As(err, &r) {
			r.Check = check
		}
		return err
	}
	if signer.IsCA || (signer.KeyUsage != 0 && signer.KeyUsage&x509.KeyUsageDigitalSignature == 0) {
		return reject(check, ErrCertChain, "%s signer %q is a CA or may not sign data", what, signer.Subject.CommonName)
	}
	if isIntel(root) && !strings.Contains(signer.Subject.CommonName, "SGX TCB Signing") {
		return reject(check, ErrCertChain, "%s signer %q is not Intel's SGX TCB Signing certificate", what, signer.Subject.CommonName)
	}
	if vc.rootRevoked.has(signer.SerialNumber) {
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
	return len(chain) > 0 && bytes.Equal(chain[len(chain)-1].RawSubjectPublicKeyInfo, root.RawSubjectPublicKeyInfo)
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
	if !bytes.Equal(vc.rootCRLAnchor, chain.root.RawSubjectPublicKeyInfo) || !bytes.Equal(vc.rootCRL.RawIssuer, chain.root.RawSubject) {
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
	if !bytes.Equal(chain.inter.RawSubjectPublicKeyInfo, vc.pckCRLIssuer.RawSubjectPublicKeyInfo) {
		return time.Time{}, reject(CheckPCKCRL, ErrCRLInvalid, "the PCK CRL's issuer key is not the key of the PCK certificate's issuer %q", chain.inter.Subject.CommonName)
	}
	if vc.pckRevoked.has(chain.leaf.SerialNumber) {
		return time.Time{}, reject(CheckPCKCRL, ErrPCKRevoked, "PCK certificate serial %x is on the %q CRL", chain.leaf.SerialNumber, chain.inter.Subject.CommonName)
	}
	if vc.rootRevoked.has(chain.inter.SerialNumber) {
		return time.Time{}, reject(CheckRootCACRL, ErrIntermediateRevoked, "%q (serial %x) is on the root CA CRL", chain.inter.Subject.CommonName, chain.inter.SerialNumber)
	}
	return earliest(vc.rootCRL.NextUpdate, vc.pckCRL.NextUpdate), nil
}

// checkQEReport verifies the PCK key's signature over the QE report
// (remembered per PCK chain, by the digest of report and signature).
func (v *Verifier) checkQEReport(q *Quote, chain *pckChain) error {
	h := sha256.New()
	h.Write(q.CertData.QEReport.raw)
	h.Write(q.CertData.QEReportSignature[:])
	var key [32]byte
	h.Sum(key[:0])
	chain.qmu.Lock()
	seen := slices.Contains(chain.qes, key)
	chain.qmu.Unlock()
	if seen {
		v.qeHits.Add(1)
		return nil
	}
	v.qeMisses.Add(1)
	d := sha256.Sum256(q.CertData.QEReport.raw)
	if !verifyRS(chain.leafKey, d[:], q.CertData.QEReportSignature[:]) {
		return reject(CheckQEReport, ErrQEReportSignature, "the PCK key's signature over the QE report does not verify")
	}
	chain.qmu.Lock()
	if len(chain.qes) < maxQEReportsPerChain {
		chain.qes = append(chain.qes, key)
	}
	chain.qmu.Unlock()
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
