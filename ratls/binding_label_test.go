package ratls

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"testing"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/policy"
)

// labelledExt makes a TCG extension for spki with the given domain claim
// and report data made from the claims buffer by rd.
func labelledExt(t testing.TB, tee *fakeTEE, spki []byte, domain string, rd func(buf []byte) [64]byte) pkix.Extension {
	t.Helper()
	buf, err := encodeClaimsBufferIn(domain, spki, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := encodeTaggedEvidence(tee.quote(rd(buf)), buf)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: OIDTCGDICETaggedEvidence, Value: v}
}

// TestAttack_QuoteOracleEvidenceRefusedWhenAppRequiresLabel: an allowed
// enclave that quotes data a caller chose ("attest my public key", "quote
// this hash") hands the caller certificate evidence for the caller's own
// key in every format that binds by a hash prefix: a raw quote over
// SHA-256(spki), a TCG claims buffer without asps's domain label, or a
// labelled buffer whose report data leaves bytes to the caller. An app with
// "binding: tcg-labelled" refuses all of them with ErrBindingNotAllowed;
// the certificate asps's own client makes passes.
func TestAttack_QuoteOracleEvidenceRefusedWhenAppRequiresLabel(t *testing.T) {
	tee := newFakeTEE(t, false)
	v := NewVerifier(verifierFor(tee), VerifyOptions{CacheSize: -1})
	pol, err := policy.Parse(fmt.Appendf(nil, `apps:
  - id: strict
    tee: sgx
    mr_enclave: %x
    binding: tcg-labelled
    secrets: {k: v}
  - id: lax
    tee: sgx
    mr_enclave: %x
    runtime: lax
    secrets: {k: v}
`, tee.mrEnclave, tee.mrEnclave), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	sha256Only := func(buf []byte) (rd [64]byte) { s := sha256.Sum256(buf); copy(rd[:], s[:]); return }
	key := newP256(t)
	spki := spkiOf(t, key)
	for _, tc := range []struct {
		name    string
		ext     pkix.Extension
		binding string
	}{
		{"gramine legacy raw quote over sha-256(spki)", legacyExt(tee, OIDGramineLegacy, spki), claims.BindingReportData},
		{"sgx sdk raw quote", legacyExt(tee, OIDSGXSDKQuote, spki), claims.BindingReportData},
		{"occlum raw quote", legacyExt(tee, OIDOcclumQuote, spki), claims.BindingReportData},
		{"tcg without the domain label", tcgExt(t, tee, spki), claims.BindingTCG},
		{"tcg with another domain", labelledExt(t, tee, spki, DomainSession, sha256Only), claims.BindingTCG},
		{"tcg labelled, caller-chosen tail in report data", labelledExt(t, tee, spki, DomainCertificate, func(buf []byte) [64]byte {
			rd := sha256Only(buf)
			copy(rd[32:], "attacker-chosen bytes")
			return rd
		}), claims.BindingTCG},
		{"tcg labelled, sha-512 of the buffer", labelledExt(t, tee, spki, DomainCertificate, func(buf []byte) [64]byte { return sha512.Sum512(buf) }), claims.BindingTCG},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := buildCert(t, certSpec{key: key, exts: []pkix.Extension{tc.ext}})
			c, err := v.Verify(context.Background(), cert.Leaf)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if c.Binding != tc.binding {
				t.Fatalf("binding %q, want %q", c.Binding, tc.binding)
			}
			_, err = pol.Match(c)
			var d *policy.Denial
			if !errors.As(err, &d) || d.Reason != policy.ErrBindingNotAllowed || d.App != "strict" {
				t.Fatalf("want %v from app strict, got %v", policy.ErrBindingNotAllowed, err)
			}
			// The same evidence still serves an app that did not opt in.
			c.Runtime = "lax"
			if a, err := pol.Match(c); err != nil || a.ID != "lax" {
				t.Fatalf("app lax: %v", err)
			}
		})
	}
	t.Run("asps client certificate", func(t *testing.T) {
		cert, err := NewCertificate(context.Background(), tee, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(context.Background(), cert.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		if c.Binding != claims.BindingTCGLabelled {
			t.Fatalf("binding %q", c.Binding)
		}
		if a, err := pol.Match(c); err != nil || a.ID != "strict" {
			t.Fatalf("refused: %v", err)
		}
	})
}
