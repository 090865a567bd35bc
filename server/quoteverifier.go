package server

import (
	"context"
	"fmt"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// CollateralFunc returns the collateral for a parsed quote, and whether it
// is served past its next update under an operator's grace period.
type CollateralFunc func(ctx context.Context, q *dcap.Quote) (col *dcap.Collateral, grace bool, err error)

// QuoteVerifier adapts a dcap.Verifier and a collateral source to
// ratls.QuoteVerifier: the quote in, the verified claims out.
type QuoteVerifier struct {
	DCAP       *dcap.Verifier
	Collateral CollateralFunc
	// Now is the verification time (default time.Now).
	Now func() time.Time
	// Observe, when set, is told how long each verification took and its
	// reason code ("ok" when accepted).
	Observe func(d time.Duration, reason string)
}

// Verify parses the quote, fetches its collateral, and verifies it
// completely.
func (v *QuoteVerifier) Verify(ctx context.Context, quote []byte) (*claims.Claims, error) {
	start := time.Now()
	c, err := v.verify(ctx, quote)
	if v.Observe != nil {
		reason := "ok"
		if err != nil {
			reason = "error"
			if r := dcap.ReasonOf(err); r != nil {
				reason = r.Error()
			}
		}
		v.Observe(time.Since(start), reason)
	}
	return c, err
}

func (v *QuoteVerifier) verify(ctx context.Context, quote []byte) (*claims.Claims, error) {
	q, err := dcap.ParseQuote(quote)
	if err != nil {
		return nil, &dcap.Rejection{Check: dcap.CheckParse, Reason: dcap.ErrMalformed, Cause: err}
	}
	col, grace, err := v.Collateral(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("get collateral: %w", err)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	res, err := v.DCAP.VerifyQuote(q, col, now())
	if err != nil {
		return nil, err
	}
	c := res.Claims
	c.CollateralGrace = grace
	return &c, nil
}

// StaticCollateral serves one collateral for every quote (the simulator's,
// or a file's).
func StaticCollateral(col *dcap.Collateral) CollateralFunc {
	return func(context.Context, *dcap.Quote) (*dcap.Collateral, bool, error) { return col, false, nil }
}
