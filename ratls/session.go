package ratls

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/credentials"

	"github.com/asps-project/asps/attest"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// Session evidence closes the replay of a recorded quote. A certificate's
// evidence is made before the handshake, so nothing in it can be fresh for
// the connection. Session evidence is made after it: a quote over a claims
// buffer holding the certificate key's hash, asps-domain DomainSession and,
// as "nonce", the connection's TLS exporter — a value both ends derive from
// the handshake and nobody can know before it. It travels in the gRPC
// metadata entry SessionMetadataKey of each request (one quote per
// connection; the server verifies it once per connection and evidence).
// A workload that ever quoted data an attacker chose then gave away access
// only while the attacker can make it quote again, never a replayable
// credential.
const (
	// ExporterLabel is the TLS exporter label of the session nonce.
	ExporterLabel = "EXPORTER-asps-attestation"
	// SessionMetadataKey carries the session evidence (CBOR tagged
	// evidence, as in a certificate's TCG extension).
	SessionMetadataKey = "asps-session-evidence-bin"
)

// SessionNonce returns the connection's 32-byte exporter for session
// evidence. Both ends compute the same value.
func SessionNonce(cs tls.ConnectionState) ([]byte, error) {
	if !cs.HandshakeComplete {
		return nil, errors.New("ratls: session nonce: handshake not complete")
	}
	n, err := cs.ExportKeyingMaterial(ExporterLabel, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("ratls: session nonce: %w", err)
	}
	return n, nil
}

// NewSessionEvidence quotes, with a, a claims buffer binding the key with
// DER SubjectPublicKeyInfo spki to nonce (SessionNonce of the connection),
// and returns the tagged evidence to send as SessionMetadataKey.
func NewSessionEvidence(ctx context.Context, a attest.Attester, spki, nonce []byte) ([]byte, error) {
	if a == nil {
		return nil, errors.New("ratls: session evidence: no attester")
	}
	if len(nonce) != 32 {
		return nil, fmt.Errorf("ratls: session evidence: nonce is %d bytes, want 32", len(nonce))
	}
	buf, err := encodeClaimsBufferIn(DomainSession, spki, nonce, attest.Runtime(a))
	if err != nil {
		return nil, fmt.Errorf("ratls: session evidence: %w", err)
	}
	var rd [64]byte
	sum := sha256.Sum256(buf)
	copy(rd[:], sum[:])
	quote, err := a.Quote(ctx, rd)
	if err != nil {
		return nil, fmt.Errorf("ratls: session evidence: quote from %s attester: %w", a.Name(), err)
	}
	return encodeTaggedEvidence(quote, buf)
}

// VerifySession verifies session evidence sent on the connection cs, whose
// client certificate has already been verified: its claims buffer must
// carry asps-domain DomainSession, the hash of the certificate's key and,
// as nonce, this connection's exporter; report_data must be exactly
// SHA-256 of the buffer followed by zeros; then the quote is verified like
// a certificate's. The claims returned are the fresh quote's, with Binding
// claims.BindingTCGNonce. Results are cached per connection and evidence.
func (v *Verifier) VerifySession(ctx context.Context, cs tls.ConnectionState, evidence []byte) (*claims.Claims, error) {
	const check = "verify session evidence"
	if v == nil || v.qv == nil {
		return nil, fail(check, ErrNoVerifier, "no quote verifier")
	}
	if len(cs.PeerCertificates) == 0 {
		return nil, fail(check, ErrNoCertificate, "session evidence needs the client certificate whose key it binds")
	}
	if len(evidence) > v.opts.MaxEvidenceSize {
		return nil, fail(check, ErrEvidenceTooLarge, "%d bytes, limit %d", len(evidence), v.opts.MaxEvidenceSize)
	}
	nonce, err := SessionNonce(cs)
	if err != nil {
		return nil, fail(check, ErrNoClaims, "%v", err)
	}
	spki := cs.PeerCertificates[0].RawSubjectPublicKeyInfo
	h := sha256.New()
	for _, part := range [][]byte{[]byte(DomainSession), nonce, spki, evidence} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	var key [32]byte
	h.Sum(key[:0])
	now := v.opts.Now()
	gen := v.collateralGeneration()
	if c, ok := v.cache.get(key, now, gen); ok {
		return c, nil
	}
	v.verifications.Add(1)
	c, err := v.verifySession(ctx, cs.PeerCertificates[0], spki, nonce, evidence)
	if err != nil {
		return nil, err
	}
	exp := now.Add(v.opts.CacheTTL)
	if !c.CollateralExpiry.IsZero() && c.CollateralExpiry.Before(exp) {
		exp = c.CollateralExpiry
	}
	v.cache.put(key, c, exp, gen)
	return cloneClaims(c), nil
}

func (v *Verifier) verifySession(ctx context.Context, cert *x509.Certificate, spki, nonce, evidence []byte) (*claims.Claims, error) {
	const check = "verify session evidence"
	_, quote, buf, err := parseTagged(evidence)
	if err != nil {
		return nil, err
	}
	ec, err := ParseClaimsBuffer(buf)
	if err != nil {
		return nil, err
	}
	if ec.Domain != DomainSession {
		return nil, fail(check, ErrBindingMismatch, "claims buffer asps-domain %q, want %q", ec.Domain, DomainSession)
	}
	if subtle.ConstantTimeCompare(ec.Nonce, nonce) != 1 {
		return nil, fail(check, ErrBindingMismatch, "nonce is not this connection's TLS exporter (%s): the evidence was made for another connection", ExporterLabel)
	}
	q, err := dcap.ParseQuote(quote)
	if err != nil {
		return nil, failWith("parse quote", ErrMalformedEvidence, err, "session evidence quote")
	}
	ev := &Evidence{OID: OIDTCGDICETaggedEvidence, Format: FormatTCG, Value: evidence, Quote: quote, Tag: TagIntelTEEQuote, ClaimsBuffer: buf, Claims: ec}
	if b := CheckBinding(ev, q, spki); !b.Binds {
		return nil, b.Err
	}
	rd := q.ReportData()
	if !exactReportData(rd, buf) {
		return nil, fail(check, ErrBindingMismatch, "report_data = %s, want SHA-256(claims buffer) followed by 32 zero bytes", hex.EncodeToString(rd[:]))
	}
	c, err := v.qv.Verify(ctx, quote)
	if err != nil {
		return nil, failWith("verify quote", ErrQuoteRejected, err, "session evidence quote")
	}
	if c == nil {
		return nil, fail("verify quote", ErrQuoteRejected, "quote verifier returned no claims")
	}
	c = cloneClaims(c)
	if len(c.ReportData) != 0 && !bytes.Equal(c.ReportData, rd[:]) {
		return nil, fail(check, ErrBindingMismatch, "verifier's claims are about another quote")
	}
	c.ReportData = rd[:]
	c.Binding = claims.BindingTCGNonce
	if c.Runtime == "" {
		c.Runtime = ec.Runtime
	}
	if c.Debug && !v.opts.AllowDebug {
		return nil, fail("check claims", ErrDebugEnclave, "the session quote's %s is in debug mode; debug enclaves are not allowed", teeNoun(c))
	}
	if v.opts.Check != nil {
		if err := v.opts.Check(cloneClaims(c)); err != nil {
			return nil, failWith("check claims", ErrClaimsRejected, err, "")
		}
	}
	return c, nil
}

// SameWorkload reports whether two sets of claims name the same code: the
// same TEE and main measurements (mr_enclave and mr_signer; mr_td and
// rtmr0-2). Session evidence must come from the workload its certificate
// names.
func SameWorkload(a, b *claims.Claims) bool {
	switch {
	case a == nil || b == nil || a.TEE != b.TEE:
		return false
	case a.SGX != nil && b.SGX != nil:
		return bytes.Equal(a.SGX.MrEnclave, b.SGX.MrEnclave) && bytes.Equal(a.SGX.MrSigner, b.SGX.MrSigner)
	case a.TDX != nil && b.TDX != nil:
		return bytes.Equal(a.TDX.MrTd, b.TDX.MrTd) && bytes.Equal(a.TDX.Rtmr0, b.TDX.Rtmr0) &&
			bytes.Equal(a.TDX.Rtmr1, b.TDX.Rtmr1) && bytes.Equal(a.TDX.Rtmr2, b.TDX.Rtmr2)
	}
	return false
}

// SessionCredentials returns gRPC per-RPC credentials that send session
// evidence for the connection each call runs on: quoted by a for the key of
// cert (the client certificate of that connection), once per connection.
// Use it with grpc.WithPerRPCCredentials for apps whose policy says
// "binding: tcg-nonce".
func SessionCredentials(a attest.Attester, cert tls.Certificate) credentials.PerRPCCredentials {
	return &sessionCreds{a: a, cert: cert, made: make(map[string]string)}
}

type sessionCreds struct {
	a    attest.Attester
	cert tls.Certificate
	mu   sync.Mutex
	made map[string]string // exporter -> evidence, for the last connections
}

func (s *sessionCreds) RequireTransportSecurity() bool { return true }

func (s *sessionCreds) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	ri, ok := credentials.RequestInfoFromContext(ctx)
	if !ok {
		return nil, errors.New("ratls: session evidence: no request info")
	}
	var cs tls.ConnectionState
	switch ai := ri.AuthInfo.(type) {
	case credentials.TLSInfo:
		cs = ai.State
	case AuthInfo:
		cs = ai.State
	default:
		return nil, fmt.Errorf("ratls: session evidence: connection is not TLS (%T)", ri.AuthInfo)
	}
	nonce, err := SessionNonce(cs)
	if err != nil {
		return nil, err
	}
	leaf := s.cert.Leaf
	if leaf == nil {
		if len(s.cert.Certificate) == 0 {
			return nil, errors.New("ratls: session evidence: no client certificate")
		}
		if leaf, err = x509.ParseCertificate(s.cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("ratls: session evidence: %w", err)
		}
	}
	k := string(nonce)
	s.mu.Lock()
	ev, ok := s.made[k]
	s.mu.Unlock()
	if !ok {
		b, err := NewSessionEvidence(ctx, s.a, leaf.RawSubjectPublicKeyInfo, nonce)
		if err != nil {
			return nil, err
		}
		ev = string(b)
		s.mu.Lock()
		if len(s.made) >= 16 {
			clear(s.made)
		}
		s.made[k] = ev
		s.mu.Unlock()
	}
	return map[string]string{SessionMetadataKey: ev}, nil
}
