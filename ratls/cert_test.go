package ratls

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// certSpec describes a hand-made certificate for negative tests.
type certSpec struct {
	key       crypto.Signer // the certified key (default: fresh P-256)
	signer    crypto.Signer // the signing key (default: key)
	exts      []pkix.Extension
	notBefore time.Time
	notAfter  time.Time
}

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func spkiOf(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	b, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func buildCert(t testing.TB, s certSpec) tls.Certificate {
	t.Helper()
	if s.key == nil {
		s.key = newP256(t)
	}
	if s.signer == nil {
		s.signer = s.key
	}
	if s.notBefore.IsZero() {
		s.notBefore = time.Now().Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = time.Now().Add(time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		Subject:         pkix.Name{CommonName: "test"},
		NotBefore:       s.notBefore,
		NotAfter:        s.notAfter,
		ExtraExtensions: s.exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.key.Public(), s.signer)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: s.key, Leaf: leaf}
}

// tcgExt makes a TCG evidence extension whose quote from tee commits to a
// claims buffer for spki.
func tcgExt(t testing.TB, tee *fakeTEE, spki []byte) pkix.Extension {
	t.Helper()
	buf, err := encodeClaimsBuffer(spki, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var rd [64]byte
	sum := sha256.Sum256(buf)
	copy(rd[:], sum[:])
	v, err := encodeTaggedEvidence(tee.quote(rd), buf)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: OIDTCGDICETaggedEvidence, Value: v}
}

func legacyExt(tee *fakeTEE, oid asn1.ObjectIdentifier, spki []byte) pkix.Extension {
	var rd [64]byte
	sum := sha256.Sum256(spki)
	copy(rd[:], sum[:])
	return pkix.Extension{Id: oid, Value: tee.quote(rd)}
}

func verifierFor(tees ...*fakeTEE) *fakeQuoteVerifier {
	v := &fakeQuoteVerifier{}
	for _, t := range tees {
		v.trusted = append(v.trusted, &t.attKey.PublicKey)
	}
	return v
}

func TestNewCertificateRoundTrip(t *testing.T) {
	tee := newFakeTEE(t, false)
	qv := verifierFor(tee)
	for _, tc := range []struct {
		name    string
		opts    CertOptions
		key     string
		formats []Format
	}{
		{"p256 default", CertOptions{}, "ecdsa-p256", []Format{FormatTCG}},
		{"p384", CertOptions{Curve: elliptic.P384()}, "ecdsa-p384", []Format{FormatTCG}},
		{"nonce", CertOptions{Nonce: []byte("fresh")}, "ecdsa-p256", []Format{FormatTCG}},
		{"legacy", CertOptions{Legacy: true, SubjectCN: "workload", Validity: time.Hour}, "ecdsa-p256", []Format{FormatTCG, FormatGramine}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := NewCertificate(context.Background(), tee, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			leaf := cert.Leaf
			rep, err := Inspect(leaf)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Key != tc.key || !rep.SelfSigned {
				t.Errorf("key %s self-signed %v, want %s true", rep.Key, rep.SelfSigned, tc.key)
			}
			if len(rep.Evidence) != len(tc.formats) {
				t.Fatalf("%d evidence extensions, want %d", len(rep.Evidence), len(tc.formats))
			}
			for i, e := range rep.Evidence {
				if e.Format != tc.formats[i] || !e.BindsKey || e.Error != "" {
					t.Errorf("evidence %d: format %s binds %v error %q", i, e.Format, e.BindsKey, e.Error)
				}
				if e.QuoteVersion != 3 || e.TEE != "sgx" || e.Debug {
					t.Errorf("evidence %d: quote v%d %s debug %v", i, e.QuoteVersion, e.TEE, e.Debug)
				}
			}
			tcg := rep.Evidence[0]
			if tcg.CBORTag != TagIntelTEEQuote || tcg.PubkeyHashAlg != HashSHA256 || tcg.PubkeyHashMatchesSPKI == nil || !*tcg.PubkeyHashMatchesSPKI {
				t.Errorf("TCG evidence: tag %d alg %d matches %v", tcg.CBORTag, tcg.PubkeyHashAlg, tcg.PubkeyHashMatchesSPKI)
			}
			if !bytes.Equal(tcg.Nonce, tc.opts.Nonce) {
				t.Errorf("nonce %x, want %x", tcg.Nonce, tc.opts.Nonce)
			}
			if tc.opts.SubjectCN != "" && leaf.Subject.CommonName != tc.opts.SubjectCN {
				t.Errorf("CN %q", leaf.Subject.CommonName)
			}
			if tc.opts.Validity != 0 {
				if d := leaf.NotAfter.Sub(leaf.NotBefore); d != tc.opts.Validity+time.Minute {
					t.Errorf("validity %s", d)
				}
			}
			c, err := NewVerifier(qv, VerifyOptions{}).Verify(context.Background(), leaf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.SGX.MrEnclave, tee.mrEnclave[:]) {
				t.Errorf("mr_enclave %x", c.SGX.MrEnclave)
			}
			// The private key matches the certificate.
			if _, err := tls.X509KeyPair(
				pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
				pemKey(t, cert.PrivateKey)); err != nil {
				t.Errorf("key pair: %v", err)
			}
		})
	}
}

func pemKey(t testing.TB, k crypto.PrivateKey) []byte {
	t.Helper()
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b})
}

func TestNewCertificateErrors(t *testing.T) {
	tee := newFakeTEE(t, false)
	if _, err := NewCertificate(context.Background(), nil, CertOptions{}); err == nil {
		t.Error("nil attester accepted")
	}
	if _, err := NewCertificate(context.Background(), tee, CertOptions{Curve: elliptic.P224()}); err == nil || !strings.Contains(err.Error(), "P-224") {
		t.Errorf("P-224: %v", err)
	}
	failing := attesterFunc(func(context.Context, [64]byte) ([]byte, error) { return nil, errors.New("no /dev/attestation") })
	if _, err := NewCertificate(context.Background(), failing, CertOptions{}); err == nil || !strings.Contains(err.Error(), "no /dev/attestation") {
		t.Errorf("failing attester: %v", err)
	}
}

type attesterFunc func(context.Context, [64]byte) ([]byte, error)

func (f attesterFunc) Quote(ctx context.Context, rd [64]byte) ([]byte, error) { return f(ctx, rd) }
func (attesterFunc) Name() string                                             { return "func" }

// TestOpenSSLPrintsCertificate: openssl reads what we issue.
func TestOpenSSLPrintsCertificate(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	cert, err := NewCertificate(context.Background(), newFakeTEE(t, false), CertOptions{Legacy: true, Curve: elliptic.P384()})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "x509", "-in", p, "-text", "-noout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	for _, want := range []string{"2.23.133.5.4.9", "0.6.9.42.840.113741.1337.6", "secp384r1", "CN=asps RA-TLS", "ecdsa-with-SHA384"} {
		if !strings.Contains(strings.ReplaceAll(string(out), "CN = ", "CN="), want) {
			t.Errorf("openssl output lacks %q", want)
		}
	}
}

// TestVerifyRejects: every way a certificate can fail, each with its
// reason.
func TestVerifyRejects(t *testing.T) {
	tee := newFakeTEE(t, false)
	debugTEE := newFakeTEE(t, true)
	untrustedTEE := newFakeTEE(t, false)
	qv := verifierFor(tee, debugTEE)

	keyA, keyB := newP256(t), newP256(t)
	spkiA, spkiB := spkiOf(t, keyA), spkiOf(t, keyB)
	rsaSmall, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}

	// A quote bound to a claims buffer other than the one in the extension.
	otherBuf := func() pkix.Extension {
		buf, _ := encodeClaimsBuffer(spkiA, nil, "")
		other, _ := encodeClaimsBuffer(spkiA, []byte("other"), "")
		var rd [64]byte
		sum := sha256.Sum256(other)
		copy(rd[:], sum[:])
		v, _ := encodeTaggedEvidence(tee.quote(rd), buf)
		return pkix.Extension{Id: OIDTCGDICETaggedEvidence, Value: v}
	}()
	claimsExt := func(m map[string]any) pkix.Extension {
		buf, err := encMode.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var rd [64]byte
		sum := sha256.Sum256(buf)
		copy(rd[:], sum[:])
		v, _ := encodeTaggedEvidence(tee.quote(rd), buf)
		return pkix.Extension{Id: OIDTCGDICETaggedEvidence, Value: v}
	}
	entry := func(alg uint64, h []byte) []byte {
		b, _ := encMode.Marshal([]any{alg, h})
		return b
	}
	sumA := sha256.Sum256(spkiA)
	tagged := func(tag uint64) pkix.Extension {
		b, _ := encMode.Marshal(cborTag(tag, []any{[]byte{1}, []byte{2}}))
		return pkix.Extension{Id: OIDTCGDICETaggedEvidence, Value: b}
	}
	wrapped := func() pkix.Extension {
		e := tcgExt(t, tee, spkiA)
		w, _ := asn1.Marshal(e.Value)
		return pkix.Extension{Id: OIDTCGDICETaggedEvidence, Value: w}
	}()

	for _, tc := range []struct {
		name   string
		spec   certSpec
		opts   VerifyOptions
		qv     QuoteVerifier
		reason error
		also   error  // a second errors.Is target
		msg    string // a substring of the message
	}{
		{"no evidence", certSpec{key: keyA}, VerifyOptions{}, nil, ErrNoEvidence, nil, "2.23.133.5.4.9"},
		{"TCG quote binds another key", certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, tee, spkiB)}}, VerifyOptions{}, nil, ErrBindingMismatch, nil, "pubkey-hash"},
		{"TCG quote binds other claims", certSpec{key: keyA, exts: []pkix.Extension{otherBuf}}, VerifyOptions{}, nil, ErrBindingMismatch, nil, "SHA-256(claims buffer)"},
		{"Gramine quote binds another key", certSpec{key: keyA, exts: []pkix.Extension{legacyExt(tee, OIDGramineLegacy, spkiB)}}, VerifyOptions{}, nil, ErrBindingMismatch, nil, "want SHA-256(SubjectPublicKeyInfo)"},
		{"TCG decides over a binding legacy copy", certSpec{key: keyA, exts: []pkix.Extension{legacyExt(tee, OIDSGXSDKQuote, spkiA), tcgExt(t, tee, spkiB)}}, VerifyOptions{}, nil, ErrBindingMismatch, nil, ""},
		{"no pubkey-hash", certSpec{key: keyA, exts: []pkix.Extension{claimsExt(map[string]any{"nonce": []byte{1}})}}, VerifyOptions{}, nil, ErrBindingMismatch, nil, "no \"pubkey-hash\""},
		{"unsupported hash alg", certSpec{key: keyA, exts: []pkix.Extension{claimsExt(map[string]any{"pubkey-hash": entry(2, sumA[:])})}}, VerifyOptions{}, nil, ErrBindingMismatch, nil, "algorithm 2 is not supported"},
		{"sha-384 pubkey-hash of another key", certSpec{key: keyA, exts: []pkix.Extension{claimsExt(map[string]any{"pubkey-hash": entry(7, sumA[:])})}}, VerifyOptions{}, nil, ErrBindingMismatch, nil, "sha-384"},
		{"malformed CBOR", certSpec{key: keyA, exts: []pkix.Extension{{Id: OIDTCGDICETaggedEvidence, Value: []byte{0xd9, 0xea, 0x60, 0x82, 0x59, 0xff}}}}, VerifyOptions{}, nil, ErrMalformedEvidence, nil, ""},
		{"OCTET STRING wrapped", certSpec{key: keyA, exts: []pkix.Extension{wrapped}}, VerifyOptions{}, nil, ErrMalformedEvidence, nil, "OCTET STRING"},
		{"unknown CBOR tag", certSpec{key: keyA, exts: []pkix.Extension{tagged(1234)}}, VerifyOptions{}, nil, ErrUnsupportedEvidence, nil, "tag 1234"},
		{"report tag", certSpec{key: keyA, exts: []pkix.Extension{tagged(TagIntelTEEReport)}}, VerifyOptions{}, nil, ErrUnsupportedEvidence, nil, "report"},
		{"garbage quote", certSpec{key: keyA, exts: []pkix.Extension{{Id: OIDGramineLegacy, Value: []byte("not a quote")}}}, VerifyOptions{}, nil, ErrMalformedEvidence, dcap.ErrMalformed, ""},
		{"oversized extension", certSpec{key: keyA, exts: []pkix.Extension{{Id: OIDTCGDICETaggedEvidence, Value: make([]byte, DefaultMaxEvidenceSize+1)}}}, VerifyOptions{}, nil, ErrEvidenceTooLarge, nil, "65537 bytes"},
		{"smaller cap", certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, tee, spkiA)}}, VerifyOptions{MaxEvidenceSize: 1000}, nil, ErrEvidenceTooLarge, nil, "limit 1000"},
		{"unknown critical extension", certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, tee, spkiA), {Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}}}, VerifyOptions{}, nil, ErrUnknownCriticalExtension, nil, "1.2.3.4"},
		{"signed by another key", certSpec{key: keyA, signer: keyB, exts: []pkix.Extension{tcgExt(t, tee, spkiA)}}, VerifyOptions{}, nil, ErrBadSelfSignature, nil, ""},
		{"RSA-1024 key", certSpec{key: rsaSmall}, VerifyOptions{}, nil, ErrUnsupportedKey, nil, "rsa-1024"},
		{"expired", certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, tee, spkiA)}, notBefore: time.Now().Add(-2 * time.Hour), notAfter: time.Now().Add(-time.Hour)}, VerifyOptions{}, nil, ErrCertificateValidity, nil, ""},
		{"debug enclave", certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, debugTEE, spkiA)}}, VerifyOptions{}, nil, ErrDebugEnclave, nil, "debug"},
		{"untrusted root", certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, untrustedTEE, spkiA)}}, VerifyOptions{}, nil, ErrQuoteRejected, dcap.ErrUntrustedRoot, "untrusted root"},
		{"claims check", certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, tee, spkiA)}}, VerifyOptions{Check: func(*claims.Claims) error { return errFakeVerifier }}, nil, ErrClaimsRejected, errFakeVerifier, ""},
		{"verifier about another quote", certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, tee, spkiA)}}, VerifyOptions{},
			QuoteVerifierFunc(func(context.Context, []byte) (*claims.Claims, error) {
				return &claims.Claims{ReportData: make([]byte, 64)}, nil
			}), ErrBindingMismatch, nil, "verifier's claims"},
		{"verifier returns nothing", certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, tee, spkiA)}}, VerifyOptions{},
			QuoteVerifierFunc(func(context.Context, []byte) (*claims.Claims, error) { return nil, nil }), ErrQuoteRejected, nil, "no claims"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := buildCert(t, tc.spec)
			var q QuoteVerifier = qv
			if tc.qv != nil {
				q = tc.qv
			}
			_, err := NewVerifier(q, tc.opts).Verify(context.Background(), cert.Leaf)
			if err == nil {
				t.Fatalf("accepted, want %v", tc.reason)
			}
			if !errors.Is(err, tc.reason) {
				t.Fatalf("error %v, want %v", err, tc.reason)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Errorf("error %v does not wrap %v", err, tc.also)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q lacks %q", err, tc.msg)
			}
			var re *Error
			if !errors.As(err, &re) || re.Check == "" {
				t.Errorf("error %T is not a *ratls.Error with a check", err)
			}
			// Inspect never fails on a parsed certificate.
			if _, err := Inspect(cert.Leaf); err != nil {
				t.Errorf("inspect: %v", err)
			}
		})
	}
	t.Run("nil verifier", func(t *testing.T) {
		cert := buildCert(t, certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, tee, spkiA)}})
		if _, err := NewVerifier(nil, VerifyOptions{}).Verify(context.Background(), cert.Leaf); !errors.Is(err, ErrNoVerifier) {
			t.Errorf("%v, want ErrNoVerifier", err)
		}
		var v *Verifier
		if _, err := v.Verify(context.Background(), cert.Leaf); !errors.Is(err, ErrNoVerifier) {
			t.Errorf("%v, want ErrNoVerifier", err)
		}
		if _, err := new(Verifier).Verify(context.Background(), cert.Leaf); !errors.Is(err, ErrNoVerifier) {
			t.Errorf("zero Verifier: %v, want ErrNoVerifier", err)
		}
	})
}

// TestVerifyAccepts: the legacy formats and other keys verify when bound.
func TestVerifyAccepts(t *testing.T) {
	tee := newFakeTEE(t, false)
	qv := verifierFor(tee)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		key     crypto.Signer
		ext     func(spki []byte) pkix.Extension
		runtime string
	}{
		{"gramine legacy", nil, func(s []byte) pkix.Extension { return legacyExt(tee, OIDGramineLegacy, s) }, "gramine"},
		{"gramine intended OID", nil, func(s []byte) pkix.Extension { return legacyExt(tee, OIDGramineLegacyIntended, s) }, "gramine"},
		{"sgx sdk", nil, func(s []byte) pkix.Extension { return legacyExt(tee, OIDSGXSDKQuote, s) }, "sgx-sdk"},
		{"occlum RSA", rsaKey, func(s []byte) pkix.Extension { return legacyExt(tee, OIDOcclumQuote, s) }, "occlum"},
		{"TCG P-384 sha-384 pubkey-hash", p384, func(s []byte) pkix.Extension {
			h := digest(hashSHA384, s)
			entry, _ := encMode.Marshal([]any{uint64(HashSHA384), h})
			buf, _ := encMode.Marshal(map[string][]byte{"pubkey-hash": entry, "extra": []byte("x")})
			var rd [64]byte
			sum := sha256.Sum256(buf)
			copy(rd[:], sum[:])
			v, _ := encodeTaggedEvidence(tee.quote(rd), buf)
			return pkix.Extension{Id: OIDTCGDICETaggedEvidence, Value: v}
		}, ""},
		{"TCG critical", nil, func(s []byte) pkix.Extension {
			e := tcgExt(t, tee, s)
			e.Critical = true
			return e
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = newP256(t)
			}
			cert := buildCert(t, certSpec{key: key, exts: []pkix.Extension{tc.ext(spkiOf(t, key))}})
			c, err := NewVerifier(qv, VerifyOptions{}).Verify(context.Background(), cert.Leaf)
			if err != nil {
				t.Fatal(err)
			}
			if c.Runtime != tc.runtime {
				t.Errorf("runtime %q, want %q", c.Runtime, tc.runtime)
			}
		})
	}
}

// TestSHA1SelfSignature: a SHA-1 self-signature (which crypto/x509 will not
// check) is verified by hand, and a bad one is still refused.
func TestSHA1SelfSignature(t *testing.T) {
	tee := newFakeTEE(t, false)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cert := buildCert(t, certSpec{key: key, exts: []pkix.Extension{legacyExt(tee, OIDOcclumQuote, spkiOf(t, key))}})
	der := resignSHA1(t, cert.Leaf, key)
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SignatureAlgorithm != x509.SHA1WithRSA {
		t.Fatalf("algorithm %s", leaf.SignatureAlgorithm)
	}
	if _, err := NewVerifier(verifierFor(tee), VerifyOptions{}).Verify(context.Background(), leaf); err != nil {
		t.Fatalf("SHA-1 self-signed: %v", err)
	}
	bad := bytes.Clone(der)
	bad[len(bad)-1] ^= 1
	leaf, err = x509.ParseCertificate(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier(verifierFor(tee), VerifyOptions{}).Verify(context.Background(), leaf); !errors.Is(err, ErrBadSelfSignature) {
		t.Fatalf("bad SHA-1 signature: %v", err)
	}
}

// resignSHA1 rewrites a certificate with a sha1WithRSAEncryption signature.
func resignSHA1(t testing.TB, cert *x509.Certificate, key *rsa.PrivateKey) []byte {
	t.Helper()
	var tbs asn1.RawValue
	if _, err := asn1.Unmarshal(cert.RawTBSCertificate, &tbs); err != nil {
		t.Fatal(err)
	}
	// Replace the TBS signature algorithm (the element after the version
	// and serial) with sha1WithRSAEncryption.
	var fields []asn1.RawValue
	rest := tbs.Bytes
	for len(rest) > 0 {
		var f asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &f); err != nil {
			t.Fatal(err)
		}
		fields = append(fields, f)
	}
	alg, _ := asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}, Parameters: asn1.NullRawValue})
	fields[2] = asn1.RawValue{FullBytes: alg}
	var body []byte
	for _, f := range fields {
		body = append(body, f.FullBytes...)
	}
	newTBS, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	h := sha1Sum(newTBS)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, h)
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		TBS asn1.RawValue
		Alg asn1.RawValue
		Sig asn1.BitString
	}{asn1.RawValue{FullBytes: newTBS}, asn1.RawValue{FullBytes: alg}, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}
