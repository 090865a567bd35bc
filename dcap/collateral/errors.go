package collateral

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/asps-project/asps/dcap"
)

// Reasons for errors of this package. Every error a Source, Client or
// Bundle returns is an *Error whose Reason is one of these or, for a
// document that fails verification, one of dcap's Err* sentinels
// (dcap.ErrMalformed for garbage, dcap.ErrFMSPCMismatch, dcap.ErrTCBInfoSignature,
// dcap.ErrCollateralExpired, dcap.ErrUntrustedRoot, …). Branch with errors.Is.
var (
	// ErrUnavailable: the PCS or PCCS could not be reached, timed out or
	// answered 5xx, after the retries.
	ErrUnavailable = errors.New("collateral service unavailable")
	// ErrNotFound: the service answered 404 (no collateral for this
	// FMSPC), or a bundle has no such document.
	ErrNotFound = errors.New("collateral not found")
	// ErrRefused: the service refused the request with another 4xx status
	// (bad API key, bad parameter, rate limit).
	ErrRefused = errors.New("collateral service refused the request")
	// ErrExpired: what is cached has expired (past its next update, and
	// past the grace period if any) and no fresh copy could be fetched.
	// Fail closed. An *Error with this reason also matches
	// dcap.ErrCollateralExpired.
	ErrExpired = errors.New("collateral expired and no fresh copy could be obtained")
	// ErrBadRequest: the caller asked for something that cannot exist
	// (TEE not sgx/tdx, FMSPC not 12 hex digits, CA not processor/platform).
	ErrBadRequest = errors.New("invalid collateral request")
	// ErrClosed: the Cache was closed.
	ErrClosed = errors.New("collateral source closed")
	// ErrBusy: the fetch was not started: too many documents never held
	// before were asked for recently (Options.UnknownBurst), or the mirror
	// tracks too many clients. Nothing was sent to the service.
	ErrBusy = errors.New("collateral fetch limit reached")
	// ErrRateLimited: the mirror refused to start a fetch for this client,
	// which started too many recently (HandlerOptions).
	ErrRateLimited = errors.New("collateral fetch rate limit of this client reached")
	// ErrPlainHTTP: the service URL is plain http on a host other than
	// loopback, and ClientOptions.AllowHTTP was not set. Anyone on the
	// path could serve older (validly signed) collateral or read the API
	// key.
	ErrPlainHTTP = errors.New("plain-http collateral service refused")
	// ErrRedirect: the service redirected to another origin that is not
	// allowed (ClientOptions.RedirectOrigins), or from https to http.
	ErrRedirect = errors.New("collateral service redirect refused")
	// ErrRollback: a document is older than the one already in force for
	// the same item (a lower tcbEvaluationDataNumber, an older issue date,
	// a lower CRL number or an older CRL thisUpdate). The newer copy stays
	// in force; this reason is reported (logged, counted in
	// Stats.Rollbacks) and, when nothing valid is left to serve, returned.
	ErrRollback = errors.New("collateral older than the copy in force")
)

// Error is the error of this package: which document, from where, why.
type Error struct {
	Key      Key    // the document, when one is concerned
	URL      string // where it was fetched from, if it was
	Status   int    // the HTTP status, if one was received
	Attempts int    // HTTP attempts made
	Reason   error  // one of the Err* above or a dcap.Err* sentinel
	Detail   string // what was seen versus expected
	Err      error  // the underlying error, if any
}

func (e *Error) Error() string {
	s := "collateral"
	if e.Key.Kind != "" {
		s += " " + e.Key.String()
	}
	if e.URL != "" {
		s += " from " + redactURL(e.URL)
	}
	var r *dcap.Rejection
	if errors.As(e.Err, &r) && r.Reason == e.Reason && e.Detail == "" {
		return s + ": " + e.Err.Error()
	}
	s += ": " + e.Reason.Error()
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap gives the reason and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Reason, e.Err}
	}
	return []error{e.Reason}
}

// Is makes ErrExpired match dcap.ErrCollateralExpired too.
func (e *Error) Is(target error) bool {
	return e.Reason == ErrExpired && target == dcap.ErrCollateralExpired
}

// rejected wraps a verification failure of document k: the reason is the
// dcap reason the failure carries (dcap.ErrMalformed when none).
func rejected(k Key, url string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	reason := dcap.ReasonOf(err)
	if reason == nil {
		reason = dcap.ErrMalformed
	}
	return &Error{Key: k, URL: url, Reason: reason, Err: err}
}

// redactURL hides the password of a URL's user info (a PCCS behind basic
// authentication) as net/http does in its own errors: errors reach logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
