package ratls

import (
	"crypto/x509"
	"errors"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// Report describes a certificate's evidence without verifying any quote.
// Text taken from the certificate (Subject, claim names, error text) has
// control and invisible format characters escaped (\x1b, \u202e): a
// hostile certificate cannot drive the terminal the report is printed on.
type Report struct {
	Subject            string     `json:"subject"`
	NotBefore          time.Time  `json:"not_before"`
	NotAfter           time.Time  `json:"not_after"`
	Key                string     `json:"key"`
	SPKISHA256         claims.Hex `json:"spki_sha256"`
	SignatureAlgorithm string     `json:"signature_algorithm"`
	// SelfSigned is true when the certificate's signature verifies with
	// its own key.
	SelfSigned bool `json:"self_signed"`
	// UnknownCritical lists critical extensions nobody here understands.
	UnknownCritical []string `json:"unknown_critical_extensions,omitempty"`
	// Evidence has one entry per evidence extension, in verification
	// priority order (the first one is what Verify judges).
	Evidence []EvidenceReport `json:"evidence"`
}

// EvidenceReport describes one evidence extension. JSON names follow the
// shared corpus's expected.json files.
type EvidenceReport struct {
	OID      string `json:"oid"`
	Format   Format `json:"format"`
	Critical bool   `json:"critical,omitempty"`
	Size     int    `json:"size"`
	// Error says why the extension or its quote does not decode; the
	// fields below are then partly empty.
	Error string `json:"error,omitempty"`

	// The quote.
	QuoteVersion int        `json:"quote_version,omitempty"`
	AttKeyType   int        `json:"att_key_type,omitempty"`
	TEE          string     `json:"tee,omitempty"`
	QuoteLen     int        `json:"quote_len"`
	MrEnclave    claims.Hex `json:"mr_enclave,omitempty"`
	MrSigner     claims.Hex `json:"mr_signer,omitempty"`
	IsvProdID    *uint16    `json:"isv_prod_id,omitempty"`
	IsvSvn       *uint16    `json:"isv_svn,omitempty"`
	MrTd         claims.Hex `json:"mr_td,omitempty"`
	MrSeam       claims.Hex `json:"mr_seam,omitempty"`
	Debug        bool       `json:"debug"`
	ReportData   claims.Hex `json:"report_data,omitempty"`
	// FMSPC is read from the quote's PCK certificate when it carries its
	// chain (certification data type 5).
	FMSPC string `json:"fmspc,omitempty"`

	// TCG format.
	CBORTag               uint64     `json:"cbor_tag,omitempty"`
	Claims                []string   `json:"claims,omitempty"`
	PubkeyHashAlg         uint64     `json:"pubkey_hash_alg,omitempty"`
	PubkeyHashMatchesSPKI *bool      `json:"pubkey_hash_matches_spki,omitempty"`
	Nonce                 claims.Hex `json:"nonce,omitempty"`

	// The binding of the quote to the certificate key.
	BindsKey bool `json:"binds_key"`
	// ReportDataBinds repeats BindsKey under the name the corpus's
	// expected.json files use.
	ReportDataBinds bool   `json:"report_data_binds"`
	Binding         string `json:"binding,omitempty"`       // how it binds
	BindingError    string `json:"binding_error,omitempty"` // why it does not
	// Verification is filled by callers that verify the quote (asps
	// ratls inspect); Inspect leaves it nil.
	Verification *QuoteVerification `json:"verification,omitempty"`

	quote []byte
}

// Quote returns the raw quote of the extension (nil if it did not decode).
func (r *EvidenceReport) Quote() []byte { return r.quote }

// QuoteVerification is the outcome of verifying an extension's quote.
type QuoteVerification struct {
	Mode   string         `json:"mode"` // "full" or "chain-only"
	OK     bool           `json:"ok"`
	Error  string         `json:"error,omitempty"`
	Reason string         `json:"reason,omitempty"`
	Claims *claims.Claims `json:"claims,omitempty"`
}

// Inspect lists every evidence extension of cert — OID, the quote's
// identity fields, the claims, and whether the quote binds the certificate
// key — without verifying any quote. An extension that does not decode is
// reported with its error; Inspect fails only on a nil certificate.
func Inspect(cert *x509.Certificate) (*Report, error) {
	if cert == nil {
		return nil, errors.New("ratls: inspect: nil certificate")
	}
	sum := SPKIHash(cert)
	r := &Report{
		Subject:            displayText(cert.Subject.String()),
		NotBefore:          cert.NotBefore.UTC(),
		NotAfter:           cert.NotAfter.UTC(),
		Key:                KeyName(cert),
		SPKISHA256:         sum[:],
		SignatureAlgorithm: cert.SignatureAlgorithm.String(),
		SelfSigned:         checkSelfSignature(cert) == nil,
		UnknownCritical:    unknownCritical(cert),
		Evidence:           []EvidenceReport{},
	}
	type found struct {
		prio int
		er   EvidenceReport
	}
	var all []found
	for _, ext := range cert.Extensions {
		f, prio := formatOf(ext.Id)
		if f == formatNone {
			continue
		}
		er := EvidenceReport{OID: ext.Id.String(), Format: f, Critical: ext.Critical, Size: len(ext.Value)}
		ev, err := ParseEvidence(ext, 0)
		if ev == nil && err != nil {
			er.Error = displayText(err.Error())
			all = append(all, found{prio, er})
			continue
		}
		inspectEvidence(&er, ev, cert.RawSubjectPublicKeyInfo)
		all = append(all, found{prio, er})
	}
	// Priority order, stable among equals.
	for p := range len(evidenceOIDs) {
		for _, f := range all {
			if f.prio == p {
				r.Evidence = append(r.Evidence, f.er)
			}
		}
	}
	return r, nil
}

func inspectEvidence(er *EvidenceReport, ev *Evidence, spki []byte) {
	er.quote = ev.Quote
	er.QuoteLen = len(ev.Quote)
	if ev.Format == FormatTCG {
		er.CBORTag = ev.Tag
		if c := ev.Claims; c != nil {
			er.Claims = displayList(c.Keys)
			er.PubkeyHashAlg = c.PubkeyHashAlg
			er.Nonce = c.Nonce
			if c.PubkeyHashAlg != 0 {
				match := false
				if h, _, ok := hashByID(c.PubkeyHashAlg); ok {
					match = string(digest(h, spki)) == string(c.PubkeyHash)
				}
				er.PubkeyHashMatchesSPKI = &match
			}
		}
	}
	q, err := dcap.ParseQuote(ev.Quote)
	if err != nil {
		er.Error = displayText("quote: " + err.Error())
		return
	}
	er.QuoteVersion = int(q.Header.Version)
	er.AttKeyType = int(q.Header.AttKeyType)
	er.TEE = q.TEE()
	er.Debug = q.Debug()
	rd := q.ReportData()
	er.ReportData = rd[:]
	if q.SGX != nil {
		er.MrEnclave = q.SGX.MrEnclave[:]
		er.MrSigner = q.SGX.MrSigner[:]
		er.IsvProdID, er.IsvSvn = &q.SGX.IsvProdID, &q.SGX.IsvSVN
	}
	if q.TD != nil {
		er.MrTd = q.TD.MrTd[:]
		er.MrSeam = q.TD.MrSeam[:]
	}
	if chain, err := dcap.ParseChainPEM(q.CertData.PCKCertChain, "pck_cert_chain"); err == nil && len(chain) > 0 {
		if ext, err := dcap.ParsePCKExtensions(chain[0]); err == nil {
			er.FMSPC = ext.FMSPCHex()
		}
	}
	b := CheckBinding(ev, q, spki)
	er.BindsKey, er.ReportDataBinds = b.Binds, b.Binds
	er.Binding = b.Method
	if b.Err != nil {
		er.BindingError = displayText(b.Err.Error())
	}
}
