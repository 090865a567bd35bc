package dcap

import (
	"errors"
	"fmt"
)

// Verdict reasons. Every rejection wraps exactly one of these, so a caller
// branches with errors.Is; the message adds which check failed and what was
// seen against what was expected. The names follow Intel's specifications
// and its quote verification library's status codes.
var (
	// Input.
	ErrMalformed   = errors.New("malformed input")
	ErrUnsupported = errors.New("unsupported quote")

	// Certificates and CRLs.
	ErrUntrustedRoot        = errors.New("untrusted root")
	ErrCertChain            = errors.New("certificate chain invalid")
	ErrCertExpired          = errors.New("certificate expired or not yet valid")
	ErrPCKRevoked           = errors.New("PCK certificate revoked")
	ErrIntermediateRevoked  = errors.New("PCK CA certificate revoked")
	ErrTCBSigningRevoked    = errors.New("TCB signing certificate revoked")
	ErrCRLMissing           = errors.New("CRL missing")
	ErrCRLInvalid           = errors.New("CRL invalid for this chain")
	ErrCRLExpired           = errors.New("CRL expired or not yet valid")
	ErrPCKExtensions        = errors.New("PCK certificate SGX extensions invalid")
	ErrCollateralMissing    = errors.New("collateral missing")
	ErrCollateralExpired    = errors.New("collateral expired")
	ErrTCBInfoSignature     = errors.New("TCB info signature invalid")
	ErrQEIdentitySignature  = errors.New("QE identity signature invalid")
	ErrTCBInfoMismatch      = errors.New("TCB info does not fit the quote")
	ErrFMSPCMismatch        = errors.New("TCB info FMSPC does not match the PCK certificate")
	ErrPCEIDMismatch        = errors.New("TCB info PCE ID does not match the PCK certificate")
	ErrQEIdentityMismatch   = errors.New("QE identity mismatch")
	ErrQEReportSignature    = errors.New("QE report signature invalid")
	ErrQEReportData         = errors.New("QE report data does not bind the attestation key")
	ErrQuoteSignature       = errors.New("quote signature invalid")
	ErrQEVendor             = errors.New("QE vendor is not Intel")
	ErrNoMatchingTCBLevel   = errors.New("no matching TCB level")
	ErrQENoMatchingTCBLevel = errors.New("no matching QE TCB level")
	ErrTDXModuleMismatch    = errors.New("TDX module identity mismatch")
	ErrTDXModuleTCB         = errors.New("no matching TDX module TCB level")
	ErrTCBRevoked           = errors.New("TCB revoked")
)

// Rejection is the error a verifier returns: the check that failed, its
// reason (one of the Err* values above) and what was seen versus expected.
type Rejection struct {
	Check  string // the check by its name in Intel's specification, e.g. "verify PCK certificate chain"
	Reason error  // one of the Err* sentinels
	Detail string // what was seen versus expected
	Cause  error  // an underlying error, if any
}

func (r *Rejection) Error() string {
	s := r.Check + ": " + r.Reason.Error()
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	if r.Cause != nil {
		s += ": " + r.Cause.Error()
	}
	return s
}

// Unwrap gives the reason and the cause to errors.Is and errors.As.
func (r *Rejection) Unwrap() []error {
	if r.Cause != nil {
		return []error{r.Reason, r.Cause}
	}
	return []error{r.Reason}
}

func reject(check string, reason error, format string, args ...any) *Rejection {
	return &Rejection{Check: check, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the verdict reason an error carries (one of the Err*
// sentinels), or nil. Metrics and audit records label decisions with it.
func ReasonOf(err error) error {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Reason
	}
	if errors.Is(err, ErrMalformed) {
		return ErrMalformed
	}
	if errors.Is(err, ErrUnsupported) {
		return ErrUnsupported
	}
	return nil
}

// FormatError reports malformed input: a quote, a certificate extension or a
// collateral document that does not have the structure Intel specifies.
type FormatError struct {
	Field string
	Msg   string
	// Unsupported marks well-formed input that asps does not verify (a
	// quote version or attestation key type): it matches ErrUnsupported
	// instead of ErrMalformed.
	Unsupported bool
}

func (e *FormatError) Error() string {
	if e.Unsupported {
		return fmt.Sprintf("unsupported %s: %s", e.Field, e.Msg)
	}
	return fmt.Sprintf("malformed %s: %s", e.Field, e.Msg)
}

// Is makes a FormatError match ErrMalformed, or ErrUnsupported.
func (e *FormatError) Is(target error) bool {
	if e.Unsupported {
		return target == ErrUnsupported
	}
	return target == ErrMalformed
}
