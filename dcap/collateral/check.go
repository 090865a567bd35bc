package collateral

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/asps-project/asps/dcap"
)

// Want is what collateral must be for: empty fields are not checked.
type Want = dcap.CollateralWant

// VerifyFunc verifies collateral on its own, before it is used or cached:
// whichever documents col holds (a fetched document is checked as a
// collateral holding just that document). A zero at skips the date checks.
// It returns a *dcap.Rejection (or an error wrapping one) on failure.
type VerifyFunc func(col *dcap.Collateral, want Want, at time.Time) error

// Checker verifies collateral documents without a quote, with the
// verifier's own checks (dcap.Verifier.CheckCollateral): the signatures
// and issuer chains up to a trust anchor (pinned by key), the validity
// dates, and that each document is the one asked for. It is what a Cache
// runs on everything it fetches or loads.
type Checker struct {
	v *dcap.Verifier
}

// NewChecker returns a checker anchored at the given roots, pinned by key;
// with none, at Intel's SGX Root CA.
func NewChecker(anchors ...*x509.Certificate) *Checker {
	if len(anchors) == 0 {
		return &Checker{v: dcap.NewVerifier(dcap.WithCacheSize(0))}
	}
	return &Checker{v: dcap.NewVerifier(dcap.WithTrustAnchors(anchors...), dcap.WithCacheSize(0))}
}

// Check verifies whatever col holds (see VerifyFunc).
func (c *Checker) Check(col *dcap.Collateral, want Want, at time.Time) error {
	return c.v.CheckCollateral(col, want, at)
}

var _ VerifyFunc = (*Checker)(nil).Check

func rej(check string, reason error, format string, args ...any) *dcap.Rejection {
	return &dcap.Rejection{Check: check, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}
