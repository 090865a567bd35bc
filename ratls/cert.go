package ratls

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/asps-project/asps/attest"
)

// CertOptions shape an issued RA-TLS certificate.
type CertOptions struct {
	// Curve of the fresh ECDSA key: elliptic.P256() (default) or
	// elliptic.P384().
	Curve elliptic.Curve
	// Legacy adds, besides the TCG extension, a Gramine-style legacy
	// extension (OID 0.6.9.42.840.113741.1337.6, as Gramine writes it)
	// holding a second quote whose report_data = SHA-256(spki) ‖ 0³², for
	// verifiers that only read that format. It costs a second quote.
	Legacy bool
	// Nonce, when non-nil, is put in the claims buffer as "nonce".
	Nonce []byte
	// Validity is the certificate lifetime from now (default 24h). The
	// certificate's NotBefore is one minute in the past for clock skew.
	Validity time.Duration
	// SubjectCN is the subject (and issuer) common name (default
	// "asps RA-TLS").
	SubjectCN string
	// Now overrides the clock (tests).
	Now func() time.Time
}

// NewCertificate creates a fresh key pair and a self-signed certificate
// whose TCG DICE evidence extension carries a quote from a that commits to
// the key (see the package documentation for the encoding).
func NewCertificate(ctx context.Context, a attest.Attester, opts CertOptions) (tls.Certificate, error) {
	if a == nil {
		return tls.Certificate{}, errors.New("ratls: new certificate: no attester")
	}
	curve := opts.Curve
	if curve == nil {
		curve = elliptic.P256()
	}
	if curve != elliptic.P256() && curve != elliptic.P384() {
		return tls.Certificate{}, fmt.Errorf("ratls: new certificate: curve %s is not supported (P-256 or P-384)", curve.Params().Name)
	}
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: new certificate: generate key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: new certificate: encode public key: %w", err)
	}

	claimsBuf, err := encodeClaimsBufferIn(DomainCertificate, spki, opts.Nonce, attest.Runtime(a))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: new certificate: %w", err)
	}
	var rd [64]byte
	sum := sha256.Sum256(claimsBuf)
	copy(rd[:], sum[:])
	quote, err := a.Quote(ctx, rd)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: new certificate: quote from %s attester: %w", a.Name(), err)
	}
	value, err := encodeTaggedEvidence(quote, claimsBuf)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: new certificate: %w", err)
	}
	exts := []pkix.Extension{{Id: OIDTCGDICETaggedEvidence, Value: value}}
	if opts.Legacy {
		var rd [64]byte
		sum := sha256.Sum256(spki)
		copy(rd[:], sum[:])
		legacy, err := a.Quote(ctx, rd)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("ratls: new certificate: legacy quote from %s attester: %w", a.Name(), err)
		}
		exts = append(exts, pkix.Extension{Id: OIDGramineLegacy, Value: legacy})
	}
	for _, e := range exts {
		if len(e.Value) > DefaultMaxEvidenceSize {
			return tls.Certificate{}, fmt.Errorf("ratls: new certificate: evidence extension %s is %d bytes, limit %d", e.Id, len(e.Value), DefaultMaxEvidenceSize)
		}
	}

	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	validity := opts.Validity
	if validity <= 0 {
		validity = 24 * time.Hour
	}
	cn := opts.SubjectCN
	if cn == "" {
		cn = "asps RA-TLS"
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: new certificate: serial: %w", err)
	}
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             t.Add(-time.Minute),
		NotAfter:              t.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		ExtraExtensions:       exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: new certificate: sign: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: new certificate: reparse: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// KeyName names a certificate's key: "ecdsa-p256", "ecdsa-p384",
// "ecdsa-p521", "rsa-3072", "ed25519".
func KeyName(cert *x509.Certificate) string {
	switch k := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ecdsa-p256"
		case elliptic.P384():
			return "ecdsa-p384"
		case elliptic.P521():
			return "ecdsa-p521"
		}
		return "ecdsa-unknown"
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	case ed25519.PublicKey:
		return "ed25519"
	}
	return fmt.Sprintf("unknown (%s)", cert.PublicKeyAlgorithm)
}

// checkKey accepts ECDSA P-256/384/521, RSA of 2048 bits or more (older
// SGX RA-TLS libraries, Occlum) and Ed25519.
func checkKey(cert *x509.Certificate) error {
	switch k := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return nil
		}
	case ed25519.PublicKey:
		return nil
	}
	return fail("check certificate", ErrUnsupportedKey, "%s, want ECDSA P-256/P-384/P-521, RSA >= 2048 bits or Ed25519", KeyName(cert))
}

// checkSelfSignature verifies that cert is signed by its own key. SHA-1
// signatures (which crypto/x509 refuses) are checked here by hand: some
// RA-TLS libraries (Occlum) still make them, and they matter little — what
// authenticates the key is the quote's binding and the TLS handshake.
func checkSelfSignature(cert *x509.Certificate) error {
	err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature)
	var insecure x509.InsecureAlgorithmError
	if err != nil && errors.As(err, &insecure) {
		err = checkSHA1Signature(cert)
	}
	if err != nil {
		return failWith("check certificate", ErrBadSelfSignature, err, "signature (%s) does not verify with the certificate's own key", cert.SignatureAlgorithm)
	}
	return nil
}

func checkSHA1Signature(cert *x509.Certificate) error {
	h := sha1.Sum(cert.RawTBSCertificate)
	switch cert.SignatureAlgorithm {
	case x509.SHA1WithRSA:
		k, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return errors.New("SHA1WithRSA signature with a non-RSA key")
		}
		return rsa.VerifyPKCS1v15(k, crypto.SHA1, h[:], cert.Signature)
	case x509.ECDSAWithSHA1:
		k, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok {
			return errors.New("ECDSAWithSHA1 signature with a non-ECDSA key")
		}
		if !ecdsa.VerifyASN1(k, h[:], cert.Signature) {
			return errors.New("ECDSA signature invalid")
		}
		return nil
	}
	return fmt.Errorf("algorithm %s is not accepted", cert.SignatureAlgorithm)
}

// unknownCritical lists the critical extensions neither crypto/x509 nor
// this package understands.
func unknownCritical(cert *x509.Certificate) []string {
	var out []string
	for _, oid := range cert.UnhandledCriticalExtensions {
		if f, _ := formatOf(oid); f != formatNone {
			continue
		}
		out = append(out, oid.String())
	}
	return out
}

// SPKIHash returns SHA-256 of the certificate's DER SubjectPublicKeyInfo:
// the value pinned by ServerByPin and printed by Inspect.
func SPKIHash(cert *x509.Certificate) [32]byte {
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo)
}
