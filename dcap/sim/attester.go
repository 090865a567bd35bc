package sim

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/asps-project/asps/attest"
	"github.com/asps-project/asps/dcap"
)

// Attester is the simulator's attest.Attester: quotes for a fixed
// identity on a simulated SGX or TDX platform, with whatever report data
// the caller asks for. Dev mode and tests use it where no TEE is present.
// It is safe for concurrent use.
type Attester struct {
	opts Options
	pl   *platform
}

var _ attest.Attester = (*Attester)(nil)

// NewAttester returns an attester for the platform and identity opts
// describe (opts.ReportData is ignored: each Quote call gives its own).
// The PCK certificate and the QE report are made once, here.
func NewAttester(opts Options) (*Attester, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	pl, err := buildPlatform(&opts)
	if err != nil {
		return nil, err
	}
	return &Attester{opts: opts, pl: pl}, nil
}

// Name returns "sim".
func (a *Attester) Name() string { return "sim" }

// Quote returns a quote whose report data is reportData.
func (a *Attester) Quote(ctx context.Context, reportData [64]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sim: quote: %w", err)
	}
	return a.pl.buildQuote(quoteParams{
		version: uint16(a.opts.QuoteVersion), bodyType: uint16(a.opts.BodyType), identity: &a.opts.Identity,
		reportData: reportData, layout: a.opts.CertData, tamper: a.opts.Tamper,
	})
}

// Root returns the simulator root the quotes chain to: the trust anchor a
// verifier needs to accept them.
func (a *Attester) Root() *x509.Certificate { return a.opts.PKI.Root }

// Options returns the attester's options, defaults filled in.
func (a *Attester) Options() Options { return a.opts }

// Collateral returns collateral for the attester's quotes, valid at at
// (zero: now).
func (a *Attester) Collateral(at time.Time) (*dcap.Collateral, error) {
	o := a.opts
	o.Now = at
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC().Truncate(time.Second)
	cp, err := buildCollateral(&o, a.pl)
	if err != nil {
		return nil, err
	}
	return cp.col, nil
}
