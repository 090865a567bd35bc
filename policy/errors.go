package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Reasons a policy file is refused. A *LoadError wraps one of them; Load
// and Parse return every problem they find, joined with errors.Join, so
// errors.Is works on the result.
var (
	ErrSyntax         = errors.New("malformed policy")
	ErrUnknownField   = errors.New("unknown field")
	ErrBadValue       = errors.New("bad value")
	ErrMissingField   = errors.New("missing field")
	ErrNoSelector     = errors.New("no measurement selector")
	ErrBadMeasurement = errors.New("bad measurement")
	ErrDuplicateID    = errors.New("duplicate app id")
	ErrBadTCBStatus   = errors.New("bad tcb status")
	ErrNoSecrets      = errors.New("no secrets")
	ErrEmptySecretRef = errors.New("empty secret reference")
)

// Reasons a foreign file is not imported (see Import).
var (
	ErrUnsupportedKMS = errors.New("unsupported kms")
	ErrNotPolicy      = errors.New("not a policy")
	ErrUnknownFormat  = errors.New("unknown policy format")
)

// Reasons a workload is refused. A *Denial wraps one of them.
var (
	ErrBadClaims           = errors.New("incomplete claims")
	ErrSimulatedNotAllowed = errors.New("simulated evidence not allowed")
	ErrTEEMismatch         = errors.New("no app for this TEE")
	ErrNoMatchingApp       = errors.New("no matching app")
	ErrDebugNotAllowed     = errors.New("debug workload not allowed")
	ErrTCBStatusNotAllowed = errors.New("tcb status not allowed")
	ErrAdvisoryNotAllowed  = errors.New("advisory not allowed")
	ErrSecretNotAllowed    = errors.New("secret not allowed")
	// ErrTDAttributeNotAllowed: a TD attribute that weakens the TD's
	// isolation from its host (no SEPT_VE_DISABLE, MIGRATABLE without a
	// named service TD, a reserved debug or security bit).
	ErrTDAttributeNotAllowed = errors.New("td attribute not allowed")
	// ErrServiceTDNotAllowed: the TD is bound to a service TD (non-zero
	// MR_SERVICETD) that the app does not name.
	ErrServiceTDNotAllowed = errors.New("service td not allowed")
	// ErrBindingNotAllowed: the evidence binds the key more weakly than
	// the app's "binding" requires.
	ErrBindingNotAllowed = errors.New("binding not allowed")
	// ErrTCBEvaluationTooOld: the TCB was judged with collateral older
	// than the policy's min_tcb_evaluation_data_number.
	ErrTCBEvaluationTooOld = errors.New("tcb evaluation data number too low")
)

// LoadError is one problem in a policy file (or in a file being imported).
type LoadError struct {
	// App is the app's id when it has one.
	App string
	// Index is the app's position in the file, from 1; 0 when the problem
	// is not about one app.
	Index int
	// Field names the offending field, e.g. "mr_enclave" or "secrets.tls_key".
	Field string
	// Reason is one of the Err* values above.
	Reason error
	// Detail says what was seen and what was expected.
	Detail string
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString("policy")
	switch {
	case e.App != "":
		b.WriteString(": app " + strconv.Quote(e.App))
	case e.Index > 0:
		fmt.Fprintf(&b, ": app #%d", e.Index)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Reason.Error())
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

func (e *LoadError) Unwrap() error { return e.Reason }

// Denial is a refusal by Match or Authorize. Detail is written for
// operators: it names what was seen and what the policy expects, never a
// secret reference's token or a secret value.
type Denial struct {
	// Reason is one of the decision errors above (ErrNoMatchingApp, ...).
	Reason error
	// App is the app the decision is about: the one whose identity matched,
	// or for ErrNoMatchingApp the closest one; "" when there is none.
	App string
	// Detail says what differed, seen vs expected.
	Detail string
	// Mismatches lists, for ErrNoMatchingApp, every selector of the closest
	// app that the claims did not satisfy, with full values.
	Mismatches []Mismatch
}

func (d *Denial) Error() string {
	s := "policy: " + d.Reason.Error()
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	return s
}

func (d *Denial) Unwrap() error { return d.Reason }

// Mismatch is one selector a workload did not satisfy.
type Mismatch struct {
	Field    string // e.g. "mr_enclave", "isv_svn"
	Seen     string // the claims' value
	Expected string // what the app requires, e.g. a hex value or ">= 3"
}

// quoteShort quotes s for an error message, cutting it if it is long: error
// text must stay readable whatever the input.
func quoteShort(s string) string {
	const max = 72
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}
