package attest

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// Gramine's /dev/attestation pseudo-files (Gramine documentation,
// "Attestation and Secret Provisioning", low-level /dev/attestation
// interface).
const (
	GramineAttestationType = "/dev/attestation/attestation_type"
	GramineUserReportData  = "/dev/attestation/user_report_data"
	GramineQuote           = "/dev/attestation/quote"
)

// gramineManifestHint says how to turn DCAP attestation on.
const gramineManifestHint = `add sgx.remote_attestation = "dcap" to the Gramine manifest (and run the enclave with gramine-sgx on a machine with the Intel DCAP quote provider, libsgx-dcap-default-qpl, configured for a PCCS)`

// gramineMu serializes quotes: Gramine keeps one user_report_data per
// process (the files are process-local, not thread-local), so two
// goroutines writing it at once would get each other's quote.
var gramineMu sync.Mutex

// Gramine obtains SGX DCAP quotes inside a Gramine enclave: it writes the
// report data to /dev/attestation/user_report_data and reads
// /dev/attestation/quote. It is safe for concurrent use.
type Gramine struct {
	opts Options
}

var _ Attester = (*Gramine)(nil)

// NewGramine returns the Gramine attester. It touches nothing: Quote
// checks the attestation type each time.
func NewGramine(o Options) *Gramine { return &Gramine{opts: o} }

// Name returns "gramine".
func (g *Gramine) Name() string { return NameGramine }

// Runtime returns "gramine".
func (g *Gramine) Runtime() string { return NameGramine }

// check reads the attestation type and says what is wrong with it.
func (g *Gramine) check() (seen string, err error) {
	p := g.opts.path(GramineAttestationType)
	b, err := g.opts.files().ReadFile(p)
	if err != nil {
		return describe(err), fmt.Errorf("gramine: %s: %s (not inside a Gramine enclave?)", p, describe(err))
	}
	t := strings.TrimSpace(string(b))
	seen = fmt.Sprintf("attestation type %q", t)
	switch t {
	case "dcap":
		return seen, nil
	case "none":
		return seen, fmt.Errorf("gramine: %s is %q, want \"dcap\": remote attestation is off; %s", p, t, gramineManifestHint)
	case "epid":
		return seen, fmt.Errorf("gramine: %s is %q, want \"dcap\": asps verifies DCAP (ECDSA) quotes only, EPID is retired; %s", p, t, gramineManifestHint)
	}
	return seen, fmt.Errorf("gramine: %s is %q, want \"dcap\"; %s", p, t, gramineManifestHint)
}

// Quote writes reportData to /dev/attestation/user_report_data, reads
// /dev/attestation/quote and checks that the quote is an SGX quote
// carrying reportData.
func (g *Gramine) Quote(ctx context.Context, reportData [64]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gramine: quote: %w", err)
	}
	if _, err := g.check(); err != nil {
		return nil, err
	}
	gramineMu.Lock()
	defer gramineMu.Unlock()
	fsys := g.opts.files()
	rd := g.opts.path(GramineUserReportData)
	if err := fsys.WriteFile(rd, reportData[:]); err != nil {
		return nil, fmt.Errorf("gramine: write 64 bytes of report data to %s: %s", rd, describe(err))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gramine: quote: %w", err)
	}
	qp := g.opts.path(GramineQuote)
	quote, err := fsys.ReadFile(qp)
	if err != nil {
		return nil, fmt.Errorf("gramine: read %s: %s (is the AESM service running on the host, with the DCAP quote provider configured?)", qp, describe(err))
	}
	return checkQuote("gramine", qp, quote, "sgx", reportData)
}
