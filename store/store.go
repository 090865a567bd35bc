package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Request asks for one secret.
type Request struct {
	// Name is the secret's name as the policy and the application know it.
	// It is used in error messages only.
	Name string
	// Ref is the store reference; its syntax depends on the store (see the
	// package documentation).
	Ref string
	// Token is an optional per-request credential (Intel's ASPS gives each
	// application its own Vault token). Stores without authentication
	// ignore it. It never appears in logs or errors.
	Token string
}

// Store returns secrets by reference. Implementations are safe for
// concurrent use.
type Store interface {
	// Get returns the secret's bytes. The caller owns the returned slice.
	// Every error wraps exactly one of ErrNotFound, ErrPermissionDenied and
	// ErrUnavailable, and is an *Error.
	Get(ctx context.Context, req Request) ([]byte, error)
	// Check reports whether the store is reachable and usable (for health
	// checks). A non-nil error wraps ErrUnavailable or ErrPermissionDenied.
	Check(ctx context.Context) error
	// Kind names the kind of store: "file" or "vault".
	Kind() string
}

// The sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrNotFound: the reference does not lead to a value (no such secret,
	// no such field, a deleted version, or a malformed reference).
	ErrNotFound = errors.New("not found")
	// ErrPermissionDenied: the store refused the credential, or there is
	// no credential to present.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnavailable: the store is down, sealed, overloaded, timed out or
	// unreachable; trying again later may succeed.
	ErrUnavailable = errors.New("store unavailable")
)

// Error is the error returned by the stores. It names the store, the secret
// and its reference; it never holds a secret value or a credential.
type Error struct {
	Store  string // "file" or "vault"
	Name   string // Request.Name (may be empty, e.g. for Check)
	Ref    string // Request.Ref (may be empty, e.g. for Check)
	Kind   error  // ErrNotFound, ErrPermissionDenied or ErrUnavailable
	Status int    // the HTTP status the store answered, 0 if none
	Reason string // what went wrong, for operators
	Err    error  // the underlying cause (network or context error), may be nil
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Store)
	b.WriteString(" store")
	if e.Name != "" || e.Ref != "" {
		fmt.Fprintf(&b, ": secret %q (ref %q)", e.Name, e.Ref)
	}
	b.WriteString(": ")
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString("error")
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel kind and the cause, so that errors.Is works
// for both (e.g. ErrUnavailable and context.DeadlineExceeded).
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// hasControl reports whether s holds a control character (including
// newlines), which names and references must not contain.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}
