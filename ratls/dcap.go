package ratls

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// DCAPVerifier adapts a dcap.Verifier to QuoteVerifier.
type DCAPVerifier struct {
	// Verifier checks the quote; its trust anchors decide what is
	// trusted.
	Verifier *dcap.Verifier
	// Collateral returns the collateral for a quote (TCB info, QE
	// identity, CRLs), e.g. from a PCS/PCCS client with a cache.
	Collateral func(ctx context.Context, q *dcap.Quote) (*dcap.Collateral, error)
	// ChainOnly verifies only the signature chain (anchor → PCK → QE →
	// quote), with TCB status Unknown, and uses Collateral only for its
	// CRLs when set. Without it a missing Collateral source is an error.
	ChainOnly bool
	// Now overrides the clock (tests, replaying old evidence).
	Now func() time.Time
}

// Verify verifies quote with the dcap verifier at the current time.
func (d *DCAPVerifier) Verify(ctx context.Context, quote []byte) (*claims.Claims, error) {
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
	var col *dcap.Collateral
	if d.Collateral != nil {
		if col, err = d.Collateral(ctx, q); err != nil {
			return nil, fmt.Errorf("dcap adapter: collateral: %w", err)
		}
	}
	var res *dcap.Result
	switch {
	case d.ChainOnly:
		res, err = d.Verifier.VerifyChain(quote, col, now())
	case col == nil:
		return nil, &dcap.Rejection{Check: dcap.CheckTCBInfo, Reason: dcap.ErrCollateralMissing, Detail: "no collateral source configured (and not in chain-only mode)"}
	default:
		res, err = d.Verifier.VerifyQuote(q, col, now())
	}
	if err != nil {
		return nil, err
	}
	return &res.Claims, nil
}
