package collateral

import (
	"context"
	"strings"
	"time"

	"github.com/asps-project/asps/dcap"
)

// Source gives the verifier the collateral for a quote.
type Source interface {
	// Get returns the collateral for a quote: TEE ("sgx" or "tdx"), FMSPC
	// (upper-case hex) and the PCK CA that issued its PCK certificate
	// ("processor" or "platform"). While the collateral is cached and
	// unchanged, repeated calls return the same pointer.
	Get(ctx context.Context, tee string, fmspc string, ca string) (*dcap.Collateral, Info, error)
}

// Info describes collateral a Source returned, for the audit record.
type Info struct {
	// Grace: a document had expired and no fresh copy could be fetched;
	// it was served under the operator's grace period.
	Grace bool `json:"grace"`
	// FetchedAt is when the oldest of the documents was fetched.
	FetchedAt time.Time `json:"fetched_at"`
	// NextUpdate is when the first of the documents expires (its next
	// update, or the end of an issuer certificate's validity).
	NextUpdate time.Time `json:"next_update"`
	// FromCache: nothing was fetched for this request.
	FromCache bool `json:"from_cache"`
	// VerifyAt is the time to verify the quote at: the Source's now, or
	// under grace NextUpdate (the last instant the collateral was valid),
	// since dcap.Verifier checks the collateral's dates against it.
	VerifyAt time.Time `json:"verify_at"`
}

// The sources.
var (
	_ Source = (*Cache)(nil)
	_ Source = (*Bundle)(nil)
	_ Source = (*Static)(nil)
)

// Static is a Source that returns one collateral for every request (tests,
// a collateral file). It does not check that the collateral fits the
// request: the verifier does.
type Static struct {
	col  *dcap.Collateral
	info Info
	now  func() time.Time
}

// NewStatic returns a Source over one collateral.
func NewStatic(col *dcap.Collateral) *Static {
	s := &Static{col: col, now: time.Now}
	next := func(t time.Time) {
		if !t.IsZero() && (s.info.NextUpdate.IsZero() || t.Before(s.info.NextUpdate)) {
			s.info.NextUpdate = t
		}
	}
	if col != nil {
		if col.TCBInfo != nil {
			next(col.TCBInfo.NextUpdate)
		}
		if col.QEIdentity != nil {
			next(col.QEIdentity.NextUpdate)
		}
		if col.PCKCRL != nil {
			next(col.PCKCRL.NextUpdate)
		}
		if col.RootCACRL != nil {
			next(col.RootCACRL.NextUpdate)
		}
	}
	s.info.FromCache = true
	return s
}

// LoadStatic reads a collateral file in dcap-qvl's JSON layout.
func LoadStatic(path string) (*Static, error) {
	b, err := ReadFile(path, MaxCollateralFileLen)
	if err != nil {
		return nil, err
	}
	col, err := dcap.ParseCollateralJSON(b)
	if err != nil {
		return nil, err
	}
	return NewStatic(col), nil
}

// Get returns the collateral.
func (s *Static) Get(ctx context.Context, tee, fmspc, ca string) (*dcap.Collateral, Info, error) {
	if s.col == nil {
		return nil, Info{}, &Error{Reason: ErrNotFound, Detail: "no static collateral"}
	}
	info := s.info
	info.VerifyAt = s.now()
	return s.col, info, nil
}

// ForQuote reads what a Source needs from a quote's PCK certificate: the
// TEE, the FMSPC and the PCK CA ("processor" or "platform", from the
// issuer's common name). It does not verify the quote.
func ForQuote(q *dcap.Quote) (tee, fmspc, ca string, err error) {
	if q == nil {
		return "", "", "", &Error{Reason: ErrBadRequest, Detail: "no quote"}
	}
	key := chainKey(q.CertData.PCKCertChain)
	if v, ok := forQuoteMemo.get(key); ok {
		return q.TEE(), v.fmspc, v.ca, nil
	}
	chain, err := dcap.ParseChainPEM(q.CertData.PCKCertChain, "pck_cert_chain")
	if err != nil {
		return "", "", "", &Error{Reason: dcap.ErrMalformed, Detail: "PCK certificate chain", Err: err}
	}
	ext, err := dcap.ParsePCKExtensions(chain[0])
	if err != nil {
		return "", "", "", &Error{Reason: dcap.ErrPCKExtensions, Err: err}
	}
	ca = dcap.PCKCAKind(chain[0].Issuer.CommonName)
	if ca == "" {
		return "", "", "", &Error{Reason: ErrBadRequest, Detail: "PCK certificate issuer " + strings.TrimSpace(chain[0].Issuer.CommonName) + " names neither the Processor nor the Platform CA"}
	}
	forQuoteMemo.put(key, pckInfo{fmspc: ext.FMSPCHex(), ca: ca})
	return q.TEE(), ext.FMSPCHex(), ca, nil
}

// GetForQuote asks src for the collateral of quote q (ForQuote, then Get).
// Verify the quote at info.VerifyAt.
func GetForQuote(ctx context.Context, src Source, q *dcap.Quote) (*dcap.Collateral, Info, error) {
	tee, fmspc, ca, err := ForQuote(q)
	if err != nil {
		return nil, Info{}, err
	}
	return src.Get(ctx, tee, fmspc, ca)
}
