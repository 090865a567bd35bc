package ratls

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"
)

// FuzzScreen feeds arbitrary certificates to Verifier.Screen, the cheap
// structural check a server runs inside the TLS handshake: as DER, and as
// a well-formed self-signed certificate carrying an arbitrary evidence
// extension (critical or not). Beyond not panicking: the screen runs no
// quote verification; a refusal is a typed *Error with a sentinel reason;
// what it passes has a supported key, no unknown critical extension and
// evidence that FindEvidence returns within the size cap; and it never
// refuses a certificate that full verification accepts (that would lock a
// genuine workload out at the handshake, where it learns nothing).
func FuzzScreen(f *testing.F) {
	ctx := context.Background()
	tee := newFakeTEE(f, false)
	good, err := NewCertificate(ctx, tee, CertOptions{})
	if err != nil {
		f.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(good.Certificate[0])
	if err != nil {
		f.Fatal(err)
	}
	var ext []byte
	for _, e := range leaf.Extensions {
		if e.Id.Equal(OIDTCGDICETaggedEvidence) {
			ext = e.Value
		}
	}
	f.Add(good.Certificate[0], ext, false)
	f.Add(good.Certificate[0], ext, true)
	for _, tc := range realCerts {
		c := readRealCert(f, tc.name)
		for _, e := range c.Extensions {
			if fm, _ := formatOf(e.Id); fm != formatNone {
				f.Add(c.Raw, e.Value, e.Critical)
			}
		}
	}
	f.Add([]byte{}, []byte{}, false)
	f.Add([]byte("\x30\x03\x02\x01\x00"), []byte("\xd9\xea\x60\x82\x40\x40"), true)

	key := newP256(f)
	qv := &fakeQuoteVerifier{trusted: []*ecdsa.PublicKey{&tee.attKey.PublicKey}}
	v := NewVerifier(qv, VerifyOptions{})
	check := func(t *testing.T, cert *x509.Certificate) {
		before := qv.calls.Load()
		err := v.Screen([]*x509.Certificate{cert})
		if qv.calls.Load() != before {
			t.Fatal("the handshake screen ran a quote verification")
		}
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || re.Reason == nil {
				t.Fatalf("screen refusal %T %v: want a typed *Error", err, err)
			}
			if _, verr := v.Verify(ctx, cert); verr == nil {
				t.Fatalf("the screen refuses (%v) a certificate that verification accepts", err)
			}
			return
		}
		if checkKey(cert) != nil || len(unknownCritical(cert)) > 0 {
			t.Fatal("the screen passed an unsupported key or an unknown critical extension")
		}
		evs, ferr := FindEvidence(cert, DefaultMaxEvidenceSize)
		if ferr != nil || len(evs) == 0 {
			t.Fatalf("the screen passed a certificate without usable evidence: %v", ferr)
		}
		for _, ev := range evs {
			if len(ev.Value) > DefaultMaxEvidenceSize {
				t.Fatalf("the screen passed %d bytes of evidence (cap %d)", len(ev.Value), DefaultMaxEvidenceSize)
			}
		}
	}
	f.Fuzz(func(t *testing.T, der, evidence []byte, critical bool) {
		if cert, err := x509.ParseCertificate(der); err == nil {
			check(t, cert)
		}
		if len(evidence) > 2*DefaultMaxEvidenceSize {
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtraExtensions: []pkix.Extension{{Id: OIDTCGDICETaggedEvidence, Critical: critical, Value: evidence}},
		}
		raw, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return
		}
		cert, err := x509.ParseCertificate(raw)
		if err != nil {
			return
		}
		check(t, cert)
	})
}
