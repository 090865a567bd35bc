package ratls

import (
	"errors"
	"fmt"
)

// Rejection reasons. Every error returned by verification wraps exactly one
// of these, so callers branch with errors.Is; the message says which check
// failed and what was seen against what was expected.
var (
	// ErrNoEvidence: the certificate carries no evidence extension.
	ErrNoEvidence = errors.New("no evidence extension")
	// ErrMalformedEvidence: an evidence extension does not decode.
	ErrMalformedEvidence = errors.New("malformed evidence")
	// ErrUnsupportedEvidence: the evidence decodes but is of a kind this
	// package does not verify (an unknown CBOR tag, a report instead of
	// a quote).
	ErrUnsupportedEvidence = errors.New("unsupported evidence")
	// ErrEvidenceTooLarge: an evidence extension exceeds the size cap.
	ErrEvidenceTooLarge = errors.New("evidence too large")
	// ErrBindingMismatch: the quote does not commit to the certificate's
	// public key.
	ErrBindingMismatch = errors.New("evidence does not bind the certificate key")
	// ErrUnknownCriticalExtension: the certificate has a critical
	// extension this package does not understand.
	ErrUnknownCriticalExtension = errors.New("unknown critical extension")
	// ErrBadSelfSignature: the certificate is not signed by its own key.
	ErrBadSelfSignature = errors.New("bad self-signature")
	// ErrUnsupportedKey: the certificate key is of an unsupported type or
	// size.
	ErrUnsupportedKey = errors.New("unsupported certificate key")
	// ErrCertificateValidity: the certificate is expired or not yet valid.
	ErrCertificateValidity = errors.New("certificate expired or not yet valid")
	// ErrQuoteRejected: the quote verifier rejected the quote; the
	// verifier's own error is wrapped too (for DCAP, a dcap.Err* reason).
	ErrQuoteRejected = errors.New("quote rejected")
	// ErrDebugEnclave: the quote comes from a debug enclave or TD, and
	// the verifier was not told to allow those.
	ErrDebugEnclave = errors.New("debug enclave refused")
	// ErrClaimsRejected: the caller's claims check refused the claims.
	ErrClaimsRejected = errors.New("claims rejected")
	// ErrNoCertificate: the peer presented no certificate.
	ErrNoCertificate = errors.New("peer presented no certificate")
	// ErrPinMismatch: the peer's key is not among the pinned keys.
	ErrPinMismatch = errors.New("peer key does not match the pin")
	// ErrNoVerifier: a configuration has no way to verify the peer.
	ErrNoVerifier = errors.New("no verifier configured")
	// ErrNoClaims: no verified claims are known for a connection.
	ErrNoClaims = errors.New("no verified claims for this connection")
)

// Error is the error verification returns: the check that failed, the
// reason (one of the Err* values above), and what was seen versus expected.
type Error struct {
	Check  string // e.g. "check binding"
	Reason error  // one of the Err* sentinels
	Detail string // what was seen versus expected
	Cause  error  // an underlying error, if any
}

func (e *Error) Error() string {
	s := "ratls: " + e.Check + ": " + e.Reason.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap gives the reason and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Reason, e.Cause}
	}
	return []error{e.Reason}
}

func fail(check string, reason error, format string, args ...any) *Error {
	return &Error{Check: check, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func failWith(check string, reason, cause error, format string, args ...any) *Error {
	return &Error{Check: check, Reason: reason, Detail: fmt.Sprintf(format, args...), Cause: cause}
}
