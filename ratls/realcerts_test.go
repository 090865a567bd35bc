package ratls

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/asps-project/asps/internal/testdata"
)

var realCerts = []struct {
	name string
	// at is a time inside the certificate's validity and its PCK
	// certificate's.
	at time.Time
	// evidenceOIDs in verification priority order.
	evidenceOIDs []string
}{
	{"gramine-cert", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), []string{"2.23.133.5.4.9", "0.6.9.42.840.113741.1337.6"}},
	{"intel-sgxsdk-cert", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), []string{"2.23.133.5.4.9", "1.2.840.113741.1.13.1"}},
	{"rats-tls-cert", time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC), []string{"2.23.133.5.4.9"}},
}

func readRealCert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	b := testdata.Read(t, "ratls", name+".pem")
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s.pem: no CERTIFICATE block", name)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s.pem: %v", name, err)
	}
	return cert
}

type expectedCert struct {
	Key        string           `json:"key"`
	SPKISHA256 string           `json:"spki_sha256"`
	Evidence   []map[string]any `json:"evidence"`
}

// TestRealCertificatesInspect checks Inspect against expected.json: every
// evidence extension found, every field the independent decoder wrote
// (identity fields, CBOR tag, claims, binding) equal.
func TestRealCertificatesInspect(t *testing.T) {
	for _, tc := range realCerts {
		t.Run(tc.name, func(t *testing.T) {
			cert := readRealCert(t, tc.name)
			var want expectedCert
			if err := json.Unmarshal(testdata.Read(t, "ratls", tc.name+".expected.json"), &want); err != nil {
				t.Fatal(err)
			}
			rep, err := Inspect(cert)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Key != want.Key {
				t.Errorf("key = %s, want %s", rep.Key, want.Key)
			}
			if rep.SPKISHA256.String() != want.SPKISHA256 {
				t.Errorf("spki_sha256 = %s, want %s", rep.SPKISHA256, want.SPKISHA256)
			}
			if !rep.SelfSigned {
				t.Errorf("self-signature does not verify")
			}
			if len(rep.UnknownCritical) != 0 {
				t.Errorf("unknown critical extensions %v", rep.UnknownCritical)
			}
			var gotOIDs []string
			for _, e := range rep.Evidence {
				gotOIDs = append(gotOIDs, e.OID)
				if e.Error != "" {
					t.Errorf("%s: %s", e.OID, e.Error)
				}
			}
			if !reflect.DeepEqual(gotOIDs, tc.evidenceOIDs) {
				t.Fatalf("evidence OIDs %v, want %v", gotOIDs, tc.evidenceOIDs)
			}
			if len(rep.Evidence) != len(want.Evidence) {
				t.Fatalf("%d evidence extensions, expected.json lists %d", len(rep.Evidence), len(want.Evidence))
			}
			// Compare through JSON: every key of expected.json must be
			// present with the same value.
			js, err := json.Marshal(rep.Evidence)
			if err != nil {
				t.Fatal(err)
			}
			var got []map[string]any
			if err := json.Unmarshal(js, &got); err != nil {
				t.Fatal(err)
			}
			for _, w := range want.Evidence {
				var g map[string]any
				for _, c := range got {
					if c["oid"] == w["oid"] {
						g = c
					}
				}
				if g == nil {
					t.Errorf("extension %v not found", w["oid"])
					continue
				}
				for k, wv := range w {
					if !reflect.DeepEqual(g[k], wv) {
						t.Errorf("%v: %s = %v, want %v", w["oid"], k, g[k], wv)
					}
				}
			}
		})
	}
}

// TestRealCertificatesEncoding pins down the exact encoding: the extension
// value is the CBOR tag itself (no inner OCTET STRING), and our claims
// buffer encoder reproduces Gramine's and the SGX SDK's bytes exactly.
func TestRealCertificatesEncoding(t *testing.T) {
	for _, tc := range realCerts {
		t.Run(tc.name, func(t *testing.T) {
			cert := readRealCert(t, tc.name)
			evs, err := FindEvidence(cert, 0)
			if err != nil {
				t.Fatal(err)
			}
			tcg := evs[0]
			if tcg.Format != FormatTCG {
				t.Fatalf("first evidence is %s", tcg.Format)
			}
			// d9 ea60: tag 60000; 82: array(2); 59 xxxx: bstr(quote).
			if !bytes.HasPrefix(tcg.Value, []byte{0xd9, 0xea, 0x60, 0x82, 0x59}) {
				t.Errorf("extension value starts %x, want d9ea608259", tcg.Value[:5])
			}
			if tcg.Critical {
				t.Errorf("TCG extension is critical")
			}
			re, err := encodeTaggedEvidence(tcg.Quote, tcg.ClaimsBuffer)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(re, tcg.Value) {
				t.Errorf("re-encoded evidence differs from the certificate's")
			}
			if tc.name == "rats-tls-cert" {
				return // carries extra claims key_0, key_1
			}
			buf, err := encodeClaimsBuffer(cert.RawSubjectPublicKeyInfo, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, tcg.ClaimsBuffer) {
				t.Errorf("claims buffer\n got %x\nwant %x", buf, tcg.ClaimsBuffer)
			}
		})
	}
}

// TestRealCertificatesVerify runs the whole RA-TLS verification on the real
// certificates, with a quote verifier that only parses (their TCB info is
// not in the corpus): binding holds, the debug enclaves are refused by
// default and accepted when allowed.
func TestRealCertificatesVerify(t *testing.T) {
	wantEnclave := map[string]string{
		"gramine-cert":      "0866e7ca11b9f4efe4bf39b2607f4e1299f111920d96d95719080f01b62b7585",
		"intel-sgxsdk-cert": "09e218a4be9dadbf7cdc82c45497d6d4f676d3b75445fc37a376f0b65b47de6a",
		"rats-tls-cert":     "38e1b40b8c68186f359c97ecb6a89965d9d8638f2df06fbe18e84d79a266c041",
	}
	for _, tc := range realCerts {
		t.Run(tc.name, func(t *testing.T) {
			cert := readRealCert(t, tc.name)
			at := func() time.Time { return tc.at }
			v := NewVerifier(parseOnlyVerifier, VerifyOptions{AllowDebug: true, Now: at})
			c, err := v.Verify(context.Background(), cert)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(c.SGX.MrEnclave); got != wantEnclave[tc.name] {
				t.Errorf("mr_enclave %s, want %s", got, wantEnclave[tc.name])
			}
			strict := NewVerifier(parseOnlyVerifier, VerifyOptions{Now: at})
			if _, err := strict.Verify(context.Background(), cert); !errors.Is(err, ErrDebugEnclave) {
				t.Errorf("strict verifier: %v, want ErrDebugEnclave", err)
			}
			late := NewVerifier(parseOnlyVerifier, VerifyOptions{AllowDebug: true, Now: func() time.Time { return cert.NotAfter.Add(time.Second) }})
			if _, err := late.Verify(context.Background(), cert); !errors.Is(err, ErrCertificateValidity) {
				t.Errorf("after NotAfter: %v, want ErrCertificateValidity", err)
			}
		})
	}
}

// TestSGXSDKLegacyExtensionDoesNotBind: the SDK's 1.2.840.113741.1.13.1
// copy of the quote commits to the claims buffer, not the key; judged on
// its own it is rejected.
func TestSGXSDKLegacyExtensionDoesNotBind(t *testing.T) {
	cert := readRealCert(t, "intel-sgxsdk-cert")
	evs, err := FindEvidence(cert, 0)
	if err != nil {
		t.Fatal(err)
	}
	legacy := evs[1]
	if legacy.Format != FormatSGXSDK {
		t.Fatalf("second evidence is %s", legacy.Format)
	}
	q, err := parseQuoteT(legacy.Quote)
	if err != nil {
		t.Fatal(err)
	}
	b := CheckBinding(legacy, q, cert.RawSubjectPublicKeyInfo)
	if b.Binds || !errors.Is(b.Err, ErrBindingMismatch) {
		t.Fatalf("legacy binding = %+v, want ErrBindingMismatch", b)
	}
	t.Logf("as expected: %v", b.Err)
}
