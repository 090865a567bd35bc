package ratls

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// CollateralInfo says how collateral was obtained, when it matters to the
// verdict's record.
type CollateralInfo struct {
	// Grace is set when the collateral is past its next update and served
	// only because an operator allowed a grace period.
	Grace bool
	// VerifyAt, when set, is the time to verify at instead of now: under
	// grace, the moment the collateral expired.
	VerifyAt time.Time
}

// CollateralFunc returns the collateral for a parsed quote.
type CollateralFunc func(ctx context.Context, q *dcap.Quote) (*dcap.Collateral, CollateralInfo, error)

// StaticCollateral serves one collateral for every quote (a file's, or the
// simulator's).
func StaticCollateral(col *dcap.Collateral) CollateralFunc {
	return func(context.Context, *dcap.Quote) (*dcap.Collateral, CollateralInfo, error) {
		return col, CollateralInfo{}, nil
	}
}

// DCAPVerifier adapts a dcap.Verifier and a collateral source to
// QuoteVerifier: the quote in, the verified claims out.
type DCAPVerifier struct {
	// Verifier checks the quote; its trust anchors decide what is
	// trusted.
	Verifier *dcap.Verifier
	// Collateral returns the collateral for a quote (TCB info, QE
	// identity, CRLs), e.g. from a PCS/PCCS client with a cache.
	Collateral CollateralFunc
	// ChainOnly verifies only the signature chain (anchor → PCK → QE →
	// quote), with TCB status Unknown, and uses Collateral only for its
	// CRLs when set. Without it a missing Collateral source is an error.
	ChainOnly bool
	// Now overrides the clock (tests, replaying old evidence).
	Now func() time.Time
	// Observe, when set, is told how long each verification took and its
	// result: "ok" or the dcap reason.
	Observe func(d time.Duration, result string)
	// Generation, when set, reports the collateral source's generation
	// (collateral.Cache.Generation): it changes whenever a document in
	// force is replaced, and the RA-TLS verdict cache then verifies anew.
	Generation func() uint64
}

// CollateralGeneration reports Generation (0 without one):
// DCAPVerifier is CollateralVersioned.
func (d *DCAPVerifier) CollateralGeneration() uint64 {
	if d == nil || d.Generation == nil {
		return 0
	}
	return d.Generation()
}

// Verify verifies quote with the dcap verifier at the current time.
func (d *DCAPVerifier) Verify(ctx context.Context, quote []byte) (*claims.Claims, error) {
	start := time.Now()
	c, err := d.verify(ctx, quote)
	if d != nil && d.Observe != nil {
		result := "ok"
		if err != nil {
			result = "error"
			if r := dcap.ReasonOf(err); r != nil {
				result = r.Error()
			}
		}
		d.Observe(time.Since(start), result)
	}
	return c, err
}

func (d *DCAPVerifier) verify(ctx context.Context, quote []byte) (*claims.Claims, error) {
	if d == nil || d.Verifier == nil {
		return nil, errors.New("dcap adapter: no dcap verifier")
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	q, err := dcap.ParseQuote(quote)
	if err != nil {
		return nil, &dcap.Rejection{Check: dcap.CheckParse, Reason: dcap.ErrMalformed, Cause: err}
	}
	// The PCK chain first (cached): collateral is looked up by the FMSPC
	// of a certificate that must be Intel's (or the anchor's) first.
	if _, err := d.Verifier.CheckPCKChain(q, now()); err != nil {
		return nil, err
	}
	var col *dcap.Collateral
	var info CollateralInfo
	if d.Collateral != nil {
		if col, info, err = d.Collateral(ctx, q); err != nil {
			return nil, fmt.Errorf("dcap adapter: collateral: %w", err)
		}
	}
	at := now()
	if !info.VerifyAt.IsZero() {
		at = info.VerifyAt
	}
	var res *dcap.Result
	switch {
	case d.ChainOnly:
		res, err = d.Verifier.VerifyChain(quote, col, at)
	case col == nil:
		return nil, &dcap.Rejection{Check: dcap.CheckTCBInfo, Reason: dcap.ErrCollateralMissing, Detail: "no collateral source configured (and not in chain-only mode)"}
	default:
		res, err = d.Verifier.VerifyQuote(q, col, at)
	}
	if err != nil {
		return nil, err
	}
	c := res.Claims
	c.CollateralGrace = info.Grace
	return &c, nil
}
