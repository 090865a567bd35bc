package collateral

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/asps-project/asps/dcap"
)

// Document is one collateral document as the PCS served it, verified.
// Documents are immutable once made.
type Document struct {
	Key Key
	// Body is the response body verbatim for TCB info and QE identity
	// ({"tcbInfo":…,"signature":"…"}), or the CRL in DER.
	Body []byte
	// IssuerChain is the PEM issuer chain (decoded from the response
	// header); empty for the root CA CRL, which the root itself signs.
	IssuerChain []byte
	URL         string    // where it came from ("" when imported)
	FetchedAt   time.Time // when it was fetched or imported
	// IssueDate and NextUpdate are the document's own (a CRL's
	// thisUpdate and nextUpdate).
	IssueDate, NextUpdate time.Time
	// Expires is when the document can no longer be used: its next update
	// or the end of an issuer certificate's validity, whichever is first.
	Expires time.Time

	col *dcap.Collateral // the document alone, parsed
}

// Collateral returns the document alone as a dcap.Collateral (the other
// documents absent).
func (d *Document) Collateral() *dcap.Collateral { return d.col }

func (d *Document) String() string {
	return fmt.Sprintf("%s issued %s, next update %s", d.Key, d.IssueDate.UTC().Format(time.RFC3339), d.NextUpdate.UTC().Format(time.RFC3339))
}

func (d *Document) expiredAt(t time.Time) bool { return t.After(d.Expires) }

// sameContent reports whether two documents carry the same bytes.
func (d *Document) sameContent(o *Document) bool {
	return bytes.Equal(d.Body, o.Body) && bytes.Equal(d.IssuerChain, o.IssuerChain)
}

// PCS response headers: the issuer chains (URL-encoded PEM) and the API
// key.
const (
	HeaderTCBInfoIssuerChain    = "TCB-Info-Issuer-Chain"
	HeaderSGXTCBInfoIssuerChain = "SGX-TCB-Info-Issuer-Chain" // the v3 name, still sent by some PCCS
	HeaderEnclaveIdentityChain  = "SGX-Enclave-Identity-Issuer-Chain"
	HeaderPCKCRLIssuerChain     = "SGX-PCK-CRL-Issuer-Chain"
	HeaderAPIKey                = "Ocp-Apim-Subscription-Key"
)

const (
	maxBodyLen          = dcap.MaxCollateralLen
	documentFormat      = "asps-collateral/1"
	intelRootCACRLURL   = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
	intelPCSHost        = "api.trustedservices.intel.com"
	rootCACRLPath       = "/sgx/certification/v4/rootcacrl"
	defaultUserAgent    = "asps-collateral/1"
	rejectCheckDocument = "parse collateral document"
)

// ParseDocument makes a document of kind k from a PCS response: the body
// and the PEM issuer chain (already URL-decoded). It parses and checks the
// structure only; verify the result with a VerifyFunc before trusting it.
// Errors are *Error with reason dcap.ErrMalformed or dcap.ErrCertChain.
func ParseDocument(k Key, body, issuerChain []byte, url string, fetchedAt time.Time) (*Document, error) {
	k, err := k.Normalize()
	if err != nil {
		return nil, err
	}
	bad := func(reason error, format string, args ...any) error {
		return &Error{Key: k, URL: url, Reason: reason, Err: rej(rejectCheckDocument, reason, format, args...)}
	}
	if len(body) > maxBodyLen {
		return nil, bad(dcap.ErrMalformed, "%d bytes exceeds the limit of %d", len(body), maxBodyLen)
	}
	if len(issuerChain) > maxBodyLen {
		return nil, bad(dcap.ErrMalformed, "issuer chain of %d bytes exceeds the limit", len(issuerChain))
	}
	d := &Document{Key: k, URL: url, FetchedAt: fetchedAt}
	var raw dcap.RawCollateral
	switch k.Kind {
	case KindTCBInfo, KindQEIdentity:
		if !utf8.Valid(body) {
			return nil, bad(dcap.ErrMalformed, "the %s response is not UTF-8 text", k.Kind)
		}
		d.Body = bytes.Clone(body)
		if k.Kind == KindTCBInfo {
			raw.TCBInfo = d.Body
		} else {
			raw.QEIdentity = d.Body
		}
	case KindPCKCRL, KindRootCACRL:
		l, err := dcap.ParseCRL(body, string(k.Kind))
		if err != nil {
			return nil, rejected(k, url, &dcap.Rejection{Check: rejectCheckDocument, Reason: dcap.ErrMalformed, Cause: err})
		}
		d.Body = bytes.Clone(l.Raw)
		if k.Kind == KindPCKCRL {
			raw.PCKCRL = d.Body
		} else {
			raw.RootCACRL = d.Body
		}
	}
	if k.Kind != KindRootCACRL {
		if len(bytes.TrimSpace(issuerChain)) == 0 {
			return nil, bad(dcap.ErrCertChain, "no issuer chain (the response lacks the issuer chain header)")
		}
		// Keep the chain in canonical PEM: the certificates are what
		// count, and what is served and stored is then clean text.
		certs, err := dcap.ParseChainPEM(issuerChain, string(k.Kind)+"_issuer_chain")
		if err != nil {
			return nil, rejected(k, url, &dcap.Rejection{Check: rejectCheckDocument, Reason: dcap.ErrMalformed, Cause: err})
		}
		d.IssuerChain = dcap.EncodeChainPEM(certs)
		switch k.Kind {
		case KindTCBInfo:
			raw.TCBInfoIssuerChain = d.IssuerChain
		case KindQEIdentity:
			raw.QEIdentityIssuerChain = d.IssuerChain
		case KindPCKCRL:
			raw.PCKCRLIssuerChain = d.IssuerChain
		}
	}
	col, err := dcap.NewCollateral(raw)
	if err != nil {
		return nil, rejected(k, url, &dcap.Rejection{Check: rejectCheckDocument, Reason: dcap.ErrMalformed, Cause: err})
	}
	d.col = col
	var chain []*x509.Certificate
	switch k.Kind {
	case KindTCBInfo:
		if col.TCBInfo == nil {
			return nil, bad(dcap.ErrMalformed, "the response holds no %s", "TCB info")
		}
		d.IssueDate, d.NextUpdate, chain = col.TCBInfo.IssueDate, col.TCBInfo.NextUpdate, col.TCBInfoIssuerChain
	case KindQEIdentity:
		if col.QEIdentity == nil {
			return nil, bad(dcap.ErrMalformed, "the response holds no %s", "QE identity")
		}
		d.IssueDate, d.NextUpdate, chain = col.QEIdentity.IssueDate, col.QEIdentity.NextUpdate, col.QEIdentityIssuerChain
	case KindPCKCRL:
		d.IssueDate, d.NextUpdate, chain = col.PCKCRL.ThisUpdate, col.PCKCRL.NextUpdate, col.PCKCRLIssuerChain
	case KindRootCACRL:
		d.IssueDate, d.NextUpdate = col.RootCACRL.ThisUpdate, col.RootCACRL.NextUpdate
	}
	if d.NextUpdate.IsZero() {
		return nil, bad(dcap.ErrMalformed, "the %s has no next update", k)
	}
	d.Expires = d.NextUpdate
	for _, c := range chain {
		if c.NotAfter.Before(d.Expires) {
			d.Expires = c.NotAfter
		}
	}
	return d, nil
}

// documentFile is a document's file in a bundle or cache directory.
type documentFile struct {
	Format      string    `json:"format"`
	Kind        Kind      `json:"kind"`
	TEE         string    `json:"tee,omitempty"`
	FMSPC       string    `json:"fmspc,omitempty"`
	CA          string    `json:"ca,omitempty"`
	URL         string    `json:"url,omitempty"`
	FetchedAt   time.Time `json:"fetched_at"`
	IssueDate   time.Time `json:"issue_date"`
	NextUpdate  time.Time `json:"next_update"`
	IssuerChain string    `json:"issuer_chain,omitempty"`
	Body        string    `json:"body,omitempty"`
	BodyHex     string    `json:"body_hex,omitempty"`
}

// MarshalJSON writes the document in the bundle file format (see the
// package documentation).
func (d *Document) MarshalJSON() ([]byte, error) {
	f := documentFile{
		Format: documentFormat, Kind: d.Key.Kind, TEE: d.Key.TEE, FMSPC: d.Key.FMSPC, CA: d.Key.CA,
		URL: d.URL, FetchedAt: d.FetchedAt.UTC(), IssueDate: d.IssueDate.UTC(), NextUpdate: d.NextUpdate.UTC(),
		IssuerChain: string(d.IssuerChain),
	}
	if d.Key.Kind == KindPCKCRL || d.Key.Kind == KindRootCACRL {
		f.BodyHex = hex.EncodeToString(d.Body)
	} else {
		f.Body = string(d.Body)
	}
	return json.MarshalIndent(f, "", " ")
}

// parseDocumentFile reads a bundle file; the key comes from the file's
// place and must agree with what the file says. Dates and metadata in the
// file are informational: the body is authoritative.
func parseDocumentFile(k Key, b []byte) (*Document, error) {
	if len(b) > MaxDocumentFileLen {
		return nil, &Error{Key: k, Reason: dcap.ErrMalformed, Detail: "file too large"}
	}
	var f documentFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, &Error{Key: k, Reason: dcap.ErrMalformed, Detail: "not a collateral document file", Err: err}
	}
	if f.Format != documentFormat {
		return nil, &Error{Key: k, Reason: dcap.ErrMalformed, Detail: fmt.Sprintf("format %q, want %q", f.Format, documentFormat)}
	}
	fk, err := Key{Kind: f.Kind, TEE: f.TEE, FMSPC: f.FMSPC, CA: f.CA}.Normalize()
	if err != nil || fk != k {
		return nil, &Error{Key: k, Reason: dcap.ErrMalformed, Detail: fmt.Sprintf("the file says it holds %s", Key{Kind: f.Kind, TEE: f.TEE, FMSPC: f.FMSPC, CA: f.CA})}
	}
	body := []byte(f.Body)
	if k.Kind == KindPCKCRL || k.Kind == KindRootCACRL {
		if body, err = hex.DecodeString(f.BodyHex); err != nil {
			return nil, &Error{Key: k, Reason: dcap.ErrMalformed, Detail: "body_hex is not hex", Err: err}
		}
	}
	fetched := f.FetchedAt
	return ParseDocument(k, body, []byte(f.IssuerChain), f.URL, fetched)
}
