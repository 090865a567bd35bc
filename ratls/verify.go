package ratls

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// QuoteVerifier verifies a quote — signature, certificate chain, collateral,
// TCB — and returns what it proved. It does not know about certificates;
// binding the quote to the TLS key is this package's job. A server adapts
// a dcap.Verifier and a collateral source to it.
type QuoteVerifier interface {
	Verify(ctx context.Context, quote []byte) (*claims.Claims, error)
}

// CollateralVersioned is a QuoteVerifier whose verdicts rest on collateral
// that can be replaced while the process runs (a PCCS cache): its
// CollateralGeneration changes whenever a document in force is replaced.
// The Verifier keeps cached verdicts only for the generation they were
// reached with, so a PCK put on a CRL, or a TCB level gone out of date, is
// refused from the next connection on, not when the cached verdict
// expires.
type CollateralVersioned interface {
	CollateralGeneration() uint64
}

// QuoteVerifierFunc adapts a function to QuoteVerifier.
type QuoteVerifierFunc func(ctx context.Context, quote []byte) (*claims.Claims, error)

// Verify calls f.
func (f QuoteVerifierFunc) Verify(ctx context.Context, quote []byte) (*claims.Claims, error) {
	return f(ctx, quote)
}

// VerifyOptions tune a Verifier. The zero value is strict.
type VerifyOptions struct {
	// AllowDebug accepts quotes from debug enclaves and debug TDs. Off,
	// they are refused with ErrDebugEnclave: a debug enclave's memory is
	// open to the host.
	AllowDebug bool
	// Check, when set, is called with the verified claims; an error
	// rejects the peer (ErrClaimsRejected). A client pins the server's
	// measurements here.
	Check func(*claims.Claims) error
	// MaxEvidenceSize caps an evidence extension (default
	// DefaultMaxEvidenceSize, 64 KiB).
	MaxEvidenceSize int
	// IgnoreValidity skips the certificate's NotBefore/NotAfter check.
	IgnoreValidity bool
	// CacheBytes bounds the verdict cache — verified claims by
	// certificate hash — by the bytes its entries are estimated to hold
	// (default DefaultCacheBytes; a negative value disables caching).
	// CacheSize, when positive, also bounds its number of entries (a
	// negative CacheSize disables caching too).
	CacheBytes int64
	CacheSize  int
	// CacheTTL bounds how long a result is reused (default 10 minutes);
	// it is also bounded by the claims' CollateralExpiry and the
	// certificate's NotAfter.
	CacheTTL time.Duration
	// NegativeCacheBytes bounds the negative cache (default
	// DefaultNegativeCacheBytes; a negative value disables it),
	// NegativeCacheSize, when positive, its number of entries, and
	// NegativeCacheTTL how long a failure is remembered (default 30s): the
	// same refused certificate presented again is refused from memory,
	// without running the quote verification again. Failures that may heal
	// on their own (a cancelled or timed-out verification, collateral that
	// could not be fetched) are not remembered. A remembered failure keeps
	// its check and reasons; its texts are cut to 512 bytes.
	NegativeCacheBytes int64
	NegativeCacheSize  int
	NegativeCacheTTL   time.Duration
	// Timeout bounds a verification started by a TLS handshake that has
	// no context of its own (client side; default 30s).
	Timeout time.Duration
	// Now overrides the clock (tests).
	Now func() time.Time
}

// Verifier verifies RA-TLS certificates: evidence, binding, then the quote
// through a QuoteVerifier. It caches results by certificate hash. It is
// safe for concurrent use.
type Verifier struct {
	qv    QuoteVerifier
	opts  VerifyOptions
	cache *resultCache
	neg   *failureCache
	// verifications counts quote verifications run (neither cache
	// answered).
	verifications atomic.Uint64
}

// Default cache bounds. A cached verdict costs about 1.2 KB (SGX) to
// 1.7 KB (TDX) as the bound counts it, a little more than it holds on the
// heap (0.95 and 1.5 KB, TestVerdictCacheEntryBytes), so the default
// holds 3,700 to 5,400 verdicts; a typical remembered failure about
// 0.55 KB (at most about 2 KB: its texts are cut), so about 3,700 of them.
const (
	DefaultCacheBytes         = 6 << 20
	DefaultNegativeCacheBytes = 2 << 20
)

// VerifierStats describes a Verifier's caches.
type VerifierStats struct {
	// Verdicts is the verdict cache (verified claims): a hit answers a
	// certificate without verifying its quote.
	Verdicts CacheStats
	// Failures is the negative cache: a hit refuses a certificate seen
	// failing recently, without verifying it again.
	Failures CacheStats
	// Verifications are the verifications run because neither cache
	// answered (certificates and session evidence).
	Verifications uint64
}

// Stats returns the cache counters (for metrics).
func (v *Verifier) Stats() VerifierStats {
	if v == nil {
		return VerifierStats{}
	}
	return VerifierStats{Verdicts: v.cache.stats(), Failures: v.neg.stats(), Verifications: v.verifications.Load()}
}

// NewVerifier returns a Verifier over qv. A nil qv rejects everything with
// ErrNoVerifier.
func NewVerifier(qv QuoteVerifier, opts VerifyOptions) *Verifier {
	if opts.MaxEvidenceSize <= 0 {
		opts.MaxEvidenceSize = DefaultMaxEvidenceSize
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.CacheSize < 0 {
		opts.CacheBytes = -1
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 10 * time.Minute
	}
	if opts.NegativeCacheBytes == 0 {
		opts.NegativeCacheBytes = DefaultNegativeCacheBytes
	}
	if opts.NegativeCacheSize < 0 {
		opts.NegativeCacheBytes = -1
	}
	if opts.NegativeCacheTTL <= 0 {
		opts.NegativeCacheTTL = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Verifier{qv: qv, opts: opts, cache: newResultCache(opts.CacheBytes, opts.CacheSize),
		neg: newFailureCache(opts.NegativeCacheBytes, opts.NegativeCacheSize)}
}

// Verify checks an RA-TLS certificate and returns the verified claims of
// its quote. Checks, in order: supported key, no unknown critical
// extension, valid self-signature, validity period, an evidence extension
// (TCG first, then Gramine, SGX SDK, Occlum), its size and structure, the
// quote's structure, the binding of the quote to the certificate key, then
// the quote itself (QuoteVerifier), debug mode and the caller's Check.
// A result is cached by the certificate's SHA-256 until the claims'
// CollateralExpiry, the certificate's NotAfter or CacheTTL, whichever
// comes first.
func (v *Verifier) Verify(ctx context.Context, cert *x509.Certificate) (*claims.Claims, error) {
	if v == nil {
		return nil, fail("verify certificate", ErrNoVerifier, "nil Verifier")
	}
	if cert == nil {
		return nil, fail("verify certificate", ErrNoCertificate, "nil certificate")
	}
	now := time.Now()
	if v.opts.Now != nil {
		now = v.opts.Now()
	}
	key := sha256.Sum256(cert.Raw)
	gen := v.collateralGeneration()
	if c, ok := v.cache.get(key, now, gen); ok {
		return c, nil
	}
	if err, ok := v.neg.get(key, now, gen); ok {
		return nil, err
	}
	v.verifications.Add(1)
	c, err := v.verify(ctx, cert, now)
	if err != nil {
		var re *Error
		if errors.As(err, &re) && rememberFailure(re) {
			v.neg.put(key, compactError(re), now.Add(v.opts.NegativeCacheTTL), gen)
		}
		return nil, err
	}
	exp := now.Add(v.opts.CacheTTL)
	if !c.CollateralExpiry.IsZero() && c.CollateralExpiry.Before(exp) {
		exp = c.CollateralExpiry
	}
	if cert.NotAfter.Before(exp) && !v.opts.IgnoreValidity {
		exp = cert.NotAfter
	}
	v.cache.put(key, c, exp, gen)
	return cloneClaims(c), nil
}

// collateralGeneration is the quote verifier's collateral generation (0
// when its collateral never changes).
func (v *Verifier) collateralGeneration() uint64 {
	if cv, ok := v.qv.(CollateralVersioned); ok {
		return cv.CollateralGeneration()
	}
	return 0
}

func (v *Verifier) verify(ctx context.Context, cert *x509.Certificate, now time.Time) (*claims.Claims, error) {
	if v.qv == nil {
		return nil, fail("verify quote", ErrNoVerifier, "no quote verifier")
	}
	if err := checkKey(cert); err != nil {
		return nil, err
	}
	if crit := unknownCritical(cert); len(crit) > 0 {
		return nil, fail("check certificate", ErrUnknownCriticalExtension, "%v", crit)
	}
	if err := checkSelfSignature(cert); err != nil {
		return nil, err
	}
	if !v.opts.IgnoreValidity && (now.Before(cert.NotBefore) || now.After(cert.NotAfter)) {
		return nil, fail("check certificate", ErrCertificateValidity, "valid %s to %s, now %s",
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	evs, err := FindEvidence(cert, v.opts.MaxEvidenceSize)
	if err != nil {
		return nil, err
	}
	// The first extension in priority order decides; the others are
	// ignored (the SGX SDK's legacy copy does not bind the key).
	ev := evs[0]
	q, err := dcap.ParseQuote(ev.Quote)
	if err != nil {
		reason := ErrMalformedEvidence
		if errors.Is(err, dcap.ErrUnsupported) {
			reason = ErrUnsupportedEvidence
		}
		return nil, failWith("parse quote", reason, err, "quote in extension %s", ev.OID)
	}
	b := CheckBinding(ev, q, cert.RawSubjectPublicKeyInfo)
	if !b.Binds {
		return nil, b.Err
	}
	c, err := v.qv.Verify(ctx, ev.Quote)
	if err != nil {
		return nil, failWith("verify quote", ErrQuoteRejected, err, "quote in extension %s", ev.OID)
	}
	if c == nil {
		return nil, fail("verify quote", ErrQuoteRejected, "quote verifier returned no claims")
	}
	c = cloneClaims(c)
	c.Binding = b.Kind
	rd := q.ReportData()
	switch {
	case len(c.ReportData) == 0:
		c.ReportData = rd[:]
	case !bytes.Equal(c.ReportData, rd[:]):
		// A verifier answering about another quote would break the
		// binding just checked.
		return nil, fail("verify quote", ErrBindingMismatch, "verifier's claims have report_data %s, the quote has %s",
			hex.EncodeToString(c.ReportData), hex.EncodeToString(rd[:]))
	}
	if c.Runtime == "" && ev.Claims != nil && ev.Claims.Runtime != "" {
		r := ev.Claims.Runtime
		if (r == "tdx-guest") != (c.TEE == claims.TDX) && r != "sim" {
			return nil, fail("check claims", ErrMalformedEvidence, "runtime claim %q does not fit a %s quote", r, c.TEE)
		}
		c.Runtime = r
	}
	if c.Runtime == "" {
		c.Runtime = map[Format]string{FormatGramine: "gramine", FormatSGXSDK: "sgx-sdk", FormatOcclum: "occlum"}[ev.Format]
	}
	if c.Debug && !v.opts.AllowDebug {
		return nil, fail("check claims", ErrDebugEnclave, "the quote's %s is in debug mode; debug enclaves are not allowed", teeNoun(c))
	}
	if v.opts.Check != nil {
		if err := v.opts.Check(cloneClaims(c)); err != nil {
			return nil, failWith("check claims", ErrClaimsRejected, err, "")
		}
	}
	return c, nil
}

func teeNoun(c *claims.Claims) string {
	if c.TEE == claims.TDX {
		return "TD"
	}
	return "enclave"
}

// cloneClaims deep-copies claims so cached values cannot be changed by a
// caller.
func cloneClaims(c *claims.Claims) *claims.Claims {
	if c == nil {
		return nil
	}
	out := *c
	out.ReportData = bytes.Clone(c.ReportData)
	out.AdvisoryIDs = append([]string(nil), c.AdvisoryIDs...)
	if c.AdvisoryIDs != nil && out.AdvisoryIDs == nil {
		out.AdvisoryIDs = []string{}
	}
	if c.SGX != nil {
		s := *c.SGX
		for _, h := range []*claims.Hex{&s.MrEnclave, &s.MrSigner, &s.ConfigID, &s.IsvExtProdID, &s.IsvFamilyID, &s.Attributes, &s.CPUSvn} {
			*h = bytes.Clone(*h)
		}
		out.SGX = &s
	}
	if c.TDX != nil {
		t := *c.TDX
		for _, h := range []*claims.Hex{&t.TeeTcbSvn, &t.MrSeam, &t.MrSignerSeam, &t.SeamAttributes, &t.TdAttributes, &t.Xfam,
			&t.MrTd, &t.MrConfigID, &t.MrOwner, &t.MrOwnerConfig, &t.Rtmr0, &t.Rtmr1, &t.Rtmr2, &t.Rtmr3, &t.TeeTcbSvn2, &t.MrServiceTd} {
			*h = bytes.Clone(*h)
		}
		out.TDX = &t
	}
	return &out
}

// rememberFailure says whether a failed verification may be answered
// from the negative cache: only verdicts about the certificate itself, not
// failures that may heal (a cancelled or timed-out verification, no
// verifier, collateral that could not be obtained).
func rememberFailure(e *Error) bool {
	if e.Reason == ErrNoVerifier || errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded) {
		return false
	}
	if e.Reason != ErrQuoteRejected {
		return true
	}
	switch r := dcap.ReasonOf(e); r {
	case nil, dcap.ErrCollateralMissing, dcap.ErrCollateralExpired, dcap.ErrCRLMissing, dcap.ErrCRLExpired:
		return false
	}
	return true
}

// Known reports whether cert has a cached successful verification that is
// still valid: a caller can then serve it even while refusing costly new
// verifications.
func (v *Verifier) Known(cert *x509.Certificate) bool {
	if v == nil || cert == nil {
		return false
	}
	now := time.Now()
	if v.opts.Now != nil {
		now = v.opts.Now()
	}
	_, ok := v.cache.peek(sha256.Sum256(cert.Raw), now, v.collateralGeneration())
	return ok
}

// Screen does the cheap structural checks of a TLS peer's certificate —
// present, a supported key, no unknown critical extension, an evidence
// extension within the size cap — without verifying any signature or
// quote. A server refuses at the handshake what fails them, so a peer
// without an RA-TLS certificate costs a handshake and nothing more.
func (v *Verifier) Screen(peer []*x509.Certificate) error {
	if len(peer) == 0 {
		return fail("screen peer", ErrNoCertificate, "want a self-signed RA-TLS certificate")
	}
	cert := peer[0]
	if err := checkKey(cert); err != nil {
		return err
	}
	if crit := unknownCritical(cert); len(crit) > 0 {
		return fail("check certificate", ErrUnknownCriticalExtension, "%d unknown critical extensions", len(crit))
	}
	max := DefaultMaxEvidenceSize
	if v != nil {
		max = v.opts.MaxEvidenceSize
	}
	_, err := FindEvidence(cert, max)
	return err
}

// verifyLeaf verifies the first certificate of a TLS peer.
func (v *Verifier) verifyLeaf(ctx context.Context, peer []*x509.Certificate) (*claims.Claims, error) {
	if len(peer) == 0 {
		return nil, fail("verify peer", ErrNoCertificate, "want a self-signed RA-TLS certificate")
	}
	return v.Verify(ctx, peer[0])
}
