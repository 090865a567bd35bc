package collateral

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/asps-project/asps/dcap"
)

// Want is what collateral must be for: empty fields are not checked.
type Want struct {
	TEE   string // "sgx" or "tdx": TCB info id SGX/TDX, QE identity id QE/TD_QE
	FMSPC string // the TCB info's FMSPC
	CA    string // "processor" or "platform": the PCK CRL's issuer
}

// VerifyFunc verifies collateral on its own, before it is used or cached:
// whichever documents col holds (a fetched document is checked as a
// collateral holding just that document). A zero at skips the date checks.
// It returns a *dcap.Rejection (or an error wrapping one) on failure.
type VerifyFunc func(col *dcap.Collateral, want Want, at time.Time) error

// Checker verifies collateral documents without a quote: the signatures
// and issuer chains up to a trust anchor (pinned by key), the validity
// dates, and that each document is the one asked for. It is what a Cache
// runs on everything it fetches or loads.
type Checker struct {
	anchors []*ecdsa.PublicKey
}

// NewChecker returns a checker anchored at the given roots, pinned by key;
// with none, at Intel's SGX Root CA.
func NewChecker(anchors ...*x509.Certificate) *Checker {
	if len(anchors) == 0 {
		anchors = []*x509.Certificate{dcap.IntelRootCA()}
	}
	c := &Checker{}
	for _, a := range anchors {
		if k, ok := a.PublicKey.(*ecdsa.PublicKey); ok {
			c.anchors = append(c.anchors, k)
		}
	}
	return c
}

func (c *Checker) anchored(k any) bool {
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return false
	}
	for _, a := range c.anchors {
		if a.Equal(ek) {
			return true
		}
	}
	return false
}

func rej(check string, reason error, format string, args ...any) *dcap.Rejection {
	return &dcap.Rejection{Check: check, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Check verifies whatever col holds (see VerifyFunc). The root CA CRL
// comes first, so that the signing certificates of the other documents are
// checked against it when it is present.
func (c *Checker) Check(col *dcap.Collateral, want Want, at time.Time) error {
	if col == nil {
		return rej(dcap.CheckTCBInfo, dcap.ErrCollateralMissing, "no collateral")
	}
	var rootRevoked map[string]bool
	if l := col.RootCACRL; l != nil {
		if err := c.checkRootCRL(l, at); err != nil {
			return err
		}
		rootRevoked = map[string]bool{}
		for _, e := range l.RevokedCertificateEntries {
			if e.SerialNumber != nil {
				rootRevoked[string(e.SerialNumber.Bytes())] = true
			}
		}
	}
	revoked := func(cert *x509.Certificate) bool {
		return rootRevoked != nil && cert.SerialNumber != nil && rootRevoked[string(cert.SerialNumber.Bytes())]
	}

	if ti := col.TCBInfo; ti != nil {
		const check = dcap.CheckTCBInfo
		if err := c.checkSigned(check, dcap.ErrTCBInfoSignature, "TCB info", col.TCBInfoIssuerChain, col.TCBInfoBody, col.TCBInfoSignature, at); err != nil {
			return err
		}
		if s := col.TCBInfoIssuerChain[0]; revoked(s) {
			return rej(check, dcap.ErrTCBSigningRevoked, "TCB info signing certificate %q (serial %x) is on the root CA CRL", s.Subject.CommonName, s.SerialNumber)
		}
		if want.TEE != "" {
			id := strings.ToUpper(want.TEE)
			if ti.ID != id {
				return rej(check, dcap.ErrTCBInfoMismatch, "TCB info id %q, asked for %s", ti.ID, id)
			}
			if id == "TDX" && ti.Version < 3 {
				return rej(check, dcap.ErrTCBInfoMismatch, "TDX TCB info version %d, want 3", ti.Version)
			}
		}
		if want.FMSPC != "" && ti.FMSPC != strings.ToUpper(want.FMSPC) {
			return rej(check, dcap.ErrFMSPCMismatch, "TCB info for FMSPC %s, asked for %s", ti.FMSPC, strings.ToUpper(want.FMSPC))
		}
		if err := inWindow(check, dcap.ErrCollateralExpired, "TCB info", ti.IssueDate, ti.NextUpdate, at); err != nil {
			return err
		}
	}

	if qi := col.QEIdentity; qi != nil {
		const check = dcap.CheckQEIdentity
		if err := c.checkSigned(check, dcap.ErrQEIdentitySignature, "QE identity", col.QEIdentityIssuerChain, col.QEIdentityBody, col.QEIdentitySignature, at); err != nil {
			return err
		}
		if s := col.QEIdentityIssuerChain[0]; revoked(s) {
			return rej(check, dcap.ErrTCBSigningRevoked, "QE identity signing certificate %q (serial %x) is on the root CA CRL", s.Subject.CommonName, s.SerialNumber)
		}
		if want.TEE != "" {
			id := map[string]string{TEESGX: "QE", TEETDX: "TD_QE"}[strings.ToLower(want.TEE)]
			if qi.ID != id {
				return rej(check, dcap.ErrQEIdentityMismatch, "QE identity id %q, asked for %s (%s)", qi.ID, id, want.TEE)
			}
		}
		if err := inWindow(check, dcap.ErrCollateralExpired, "QE identity", qi.IssueDate, qi.NextUpdate, at); err != nil {
			return err
		}
	}

	if l := col.PCKCRL; l != nil {
		const check = dcap.CheckPCKCRL
		chain := col.PCKCRLIssuerChain
		if err := c.checkChain(check, "PCK CRL", chain, at); err != nil {
			return err
		}
		issuer := chain[0]
		if !bytes.Equal(l.RawIssuer, issuer.RawSubject) {
			return rej(check, dcap.ErrCRLInvalid, "PCK CRL issuer %q is not its issuer chain's %q", l.Issuer.CommonName, issuer.Subject.CommonName)
		}
		if err := l.CheckSignatureFrom(issuer); err != nil {
			return &dcap.Rejection{Check: check, Reason: dcap.ErrCRLInvalid, Detail: fmt.Sprintf("PCK CRL not signed by %q", issuer.Subject.CommonName), Cause: err}
		}
		if revoked(issuer) {
			return rej(check, dcap.ErrIntermediateRevoked, "%q (serial %x) is on the root CA CRL", issuer.Subject.CommonName, issuer.SerialNumber)
		}
		if want.CA != "" {
			if got := caOf(issuer.Subject.CommonName); got != strings.ToLower(want.CA) {
				return rej(check, dcap.ErrCRLInvalid, "PCK CRL of %q, asked for the %s CA", issuer.Subject.CommonName, want.CA)
			}
		}
		if err := crlWindow(check, "PCK CRL", l, at); err != nil {
			return err
		}
	}
	return nil
}

// caOf maps a PCK CA's common name to "processor" or "platform" ("" when
// neither).
func caOf(cn string) string {
	switch {
	case strings.Contains(cn, "Processor"):
		return CAProcessor
	case strings.Contains(cn, "Platform"):
		return CAPlatform
	}
	return ""
}

func (c *Checker) checkRootCRL(l *x509.RevocationList, at time.Time) error {
	const check = dcap.CheckRootCACRL
	if l.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		return rej(check, dcap.ErrCRLInvalid, "root CA CRL signature algorithm %v, want ECDSA with SHA-256", l.SignatureAlgorithm)
	}
	d := sha256.Sum256(l.RawTBSRevocationList)
	signed := false
	for _, a := range c.anchors {
		if ecdsa.VerifyASN1(a, d[:], l.Signature) {
			signed = true
			break
		}
	}
	if !signed {
		return rej(check, dcap.ErrCRLInvalid, "root CA CRL (issuer %q) is not signed by a trust anchor", l.Issuer.CommonName)
	}
	return crlWindow(check, "root CA CRL", l, at)
}

// checkChain checks an issuer chain (signer first, root last): each
// certificate issued and signed by the next, the root self-signed and a
// trust anchor by key, and (unless at is zero) all valid at at.
func (c *Checker) checkChain(check, what string, chain []*x509.Certificate, at time.Time) error {
	if len(chain) < 2 {
		return rej(check, dcap.ErrCertChain, "%s issuer chain has %d certificates, want the signer and the root CA", what, len(chain))
	}
	root := chain[len(chain)-1]
	if !c.anchored(root.PublicKey) {
		s := sha256.Sum256(root.RawSubjectPublicKeyInfo)
		return rej(check, dcap.ErrUntrustedRoot, "%s issuer chain ends at %q (key SHA-256 %x), which is not a trust anchor", what, root.Subject.CommonName, s[:8])
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return &dcap.Rejection{Check: check, Reason: dcap.ErrCertChain, Detail: what + " issuer chain: root CA certificate is not self-signed", Cause: err}
	}
	for i := 0; i+1 < len(chain); i++ {
		cert, parent := chain[i], chain[i+1]
		if !bytes.Equal(cert.RawIssuer, parent.RawSubject) {
			return rej(check, dcap.ErrCertChain, "%s issuer chain: %q is issued by %q, not by the next certificate %q", what, cert.Subject.CommonName, cert.Issuer.CommonName, parent.Subject.CommonName)
		}
		if err := cert.CheckSignatureFrom(parent); err != nil {
			return &dcap.Rejection{Check: check, Reason: dcap.ErrCertChain, Detail: fmt.Sprintf("%s issuer chain: %q not signed by %q", what, cert.Subject.CommonName, parent.Subject.CommonName), Cause: err}
		}
	}
	if at.IsZero() {
		return nil
	}
	for _, cert := range chain {
		if at.Before(cert.NotBefore) || at.After(cert.NotAfter) {
			return rej(check, dcap.ErrCertExpired, "%s issuer chain: %q valid %s to %s, time %s", what, cert.Subject.CommonName,
				cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339), at.Format(time.RFC3339))
		}
	}
	return nil
}

// checkSigned checks a signed JSON body: its chain, then the signer's
// ECDSA P-256 signature (r‖s) over the exact body bytes.
func (c *Checker) checkSigned(check string, reason error, what string, chain []*x509.Certificate, body, sig []byte, at time.Time) error {
	if err := c.checkChain(check, what, chain, at); err != nil {
		return err
	}
	signer := chain[0]
	k, ok := signer.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return rej(check, dcap.ErrCertChain, "%s signing key of %q is not ECDSA", what, signer.Subject.CommonName)
	}
	if len(sig) != 64 {
		return rej(check, reason, "%s signature is %d bytes, want 64 (r‖s)", what, len(sig))
	}
	d := sha256.Sum256(body)
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(k, d[:], r, s) {
		return rej(check, reason, "signature by %q over the %d-byte %s body does not verify", signer.Subject.CommonName, len(body), what)
	}
	return nil
}

func inWindow(check string, reason error, what string, from, until, at time.Time) error {
	if at.IsZero() {
		return nil
	}
	if at.Before(from) {
		return rej(check, reason, "%s is not yet valid: issued %s, time %s", what, from.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	if at.After(until) {
		return rej(check, reason, "%s expired: next update was due %s, time %s", what, until.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	return nil
}

func crlWindow(check, what string, l *x509.RevocationList, at time.Time) error {
	if at.IsZero() {
		return nil
	}
	if l.NextUpdate.IsZero() {
		return rej(check, dcap.ErrCRLExpired, "%s has no next update", what)
	}
	return inWindow(check, dcap.ErrCRLExpired, what, l.ThisUpdate, l.NextUpdate, at)
}

var _ VerifyFunc = (*Checker)(nil).Check
