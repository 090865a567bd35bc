package dcap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"
	"time"
)

func acceptedCases(t *testing.T) []corpusCase {
	var out []corpusCase
	for _, c := range loadCorpus(t) {
		if c.exp.Accepted {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatal("no accepted case in the corpus")
	}
	return out
}

// TestCorpusIdentity: the identity fields of every case decode to the
// values the independent verifier gave.
func TestCorpusIdentity(t *testing.T) {
	for _, c := range loadCorpus(t) {
		t.Run(c.name, func(t *testing.T) {
			q, err := ParseQuote(c.quote)
			if err != nil {
				t.Fatal(err)
			}
			cl := q.Claims()
			check := func(field, got, want string) {
				t.Helper()
				if want != "" && got != want {
					t.Errorf("%s = %s, want %s", field, got, want)
				}
			}
			if int(q.Header.Version) != c.exp.QuoteVersion {
				t.Errorf("version %d, want %d", q.Header.Version, c.exp.QuoteVersion)
			}
			check("tee", string(cl.TEE), c.exp.TEE)
			check("report_data", cl.ReportData.String(), c.exp.ReportData)
			if cl.Debug != c.exp.Debug {
				t.Errorf("debug %v, want %v", cl.Debug, c.exp.Debug)
			}
			if c.exp.BodyType != 0 && int(q.BodyType) != c.exp.BodyType {
				t.Errorf("body type %d, want %d", q.BodyType, c.exp.BodyType)
			}
			chain, err := ParseChainPEM(q.CertData.PCKCertChain, "chain")
			if err != nil {
				t.Fatal(err)
			}
			ext, err := ParsePCKExtensions(chain[0])
			if err != nil {
				t.Fatal(err)
			}
			check("fmspc", ext.FMSPCHex(), c.exp.FMSPC)
			switch cl.TEE {
			case "sgx":
				check("mr_enclave", cl.SGX.MrEnclave.String(), c.exp.MrEnclave)
				check("mr_signer", cl.SGX.MrSigner.String(), c.exp.MrSigner)
				if c.exp.IsvProdID == nil || int(cl.SGX.IsvProdID) != *c.exp.IsvProdID || int(cl.SGX.IsvSvn) != *c.exp.IsvSvn {
					t.Errorf("isv_prod_id/isv_svn %d/%d, want %v/%v", cl.SGX.IsvProdID, cl.SGX.IsvSvn, c.exp.IsvProdID, c.exp.IsvSvn)
				}
			case "tdx":
				check("mr_td", cl.TDX.MrTd.String(), c.exp.MrTd)
				check("rtmr0", cl.TDX.Rtmr0.String(), c.exp.Rtmr0)
				check("td_attributes", cl.TDX.TdAttributes.String(), c.exp.TdAttributes)
			default:
				t.Fatalf("tee %q", cl.TEE)
			}
		})
	}
}

// TestCorpusOutsideWindow: accepted cases are rejected before and after
// the collateral's validity window.
func TestCorpusOutsideWindow(t *testing.T) {
	v := NewVerifier()
	for _, c := range acceptedCases(t) {
		for _, tc := range []struct {
			name string
			at   time.Time
		}{
			{"after", c.exp.CollateralValidUntil.Add(time.Second)},
			{"before", c.exp.CollateralValidFrom.Add(-time.Second)},
			{"long-after", c.exp.CollateralValidUntil.AddDate(1, 0, 0)},
		} {
			t.Run(c.name+"/"+tc.name, func(t *testing.T) {
				_, err := v.Verify(c.quote, c.collateral, tc.at)
				if !errors.Is(err, ErrCollateralExpired) && !errors.Is(err, ErrCRLExpired) {
					t.Fatalf("at %s: got %v, want collateral or CRL expired", tc.at, err)
				}
			})
		}
		// The window's edges are inside.
		for _, at := range []time.Time{c.exp.CollateralValidFrom, c.exp.CollateralValidUntil} {
			if _, err := v.Verify(c.quote, c.collateral, at); err != nil {
				t.Errorf("%s at the window's edge %s: %v", c.name, at, err)
			}
		}
	}
}

// quoteRegions gives, for a parsed quote, the offsets of its parts.
type region struct {
	name       string
	start, end int
	reason     error
}

func quoteRegions(t *testing.T, q *Quote) []region {
	b := q.Raw()
	body := len(q.SignedData)
	bodyStart := HeaderLen
	if q.Header.Version == 5 {
		bodyStart += 6
	}
	sig := body + 4
	ak := sig + 64
	qe := ak + 64
	if q.Header.Version != 3 {
		qe += 6
	}
	qeSig := qe + SGXReportLen
	auth := qeSig + 64 + 2
	if !bytes.Equal(b[qe:qeSig], q.CertData.QEReport.Raw()) {
		t.Fatal("region offsets are off")
	}
	return []region{
		{"header.qe_svn..pce_svn", 8, 12, ErrQuoteSignature},
		{"header.qe_vendor_id", 12, 28, ErrQEVendor},
		{"header.user_data", 28, 48, ErrQuoteSignature},
		{"body", bodyStart, body, ErrQuoteSignature},
		{"quote signature", sig, sig + 64, ErrQuoteSignature},
		{"attestation key", ak, ak + 64, ErrQEReportData},
		{"qe report", qe, qeSig, ErrQEReportSignature},
		{"qe report signature", qeSig, qeSig + 64, ErrQEReportSignature},
		{"qe auth data", auth, auth + len(q.CertData.QEAuthData), ErrQEReportData},
	}
}

// TestCorpusByteFlips: any single byte changed in the header, body, QE
// report, QE auth data or a signature is rejected for that part's reason.
func TestCorpusByteFlips(t *testing.T) {
	v := NewVerifier()
	for _, c := range acceptedCases(t) {
		q, err := ParseQuote(c.quote)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range quoteRegions(t, q) {
			t.Run(c.name+"/"+r.name, func(t *testing.T) {
				for i := r.start; i < r.end; i++ {
					m := bytes.Clone(c.quote)
					m[i] ^= 0x01
					_, err := v.Verify(m, c.collateral, c.exp.VerifyAt)
					if !errors.Is(err, r.reason) {
						t.Fatalf("byte %d flipped: got %v, want %v", i, err, r.reason)
					}
				}
			})
		}
		// Header fields the parser judges: version, key type, TEE type.
		for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7} {
			m := bytes.Clone(c.quote)
			m[i] ^= 0x01
			_, err := v.Verify(m, c.collateral, c.exp.VerifyAt)
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrQuoteSignature) {
				t.Errorf("%s header byte %d flipped: got %v", c.name, i, err)
			}
			if err == nil {
				t.Errorf("%s header byte %d flipped: accepted", c.name, i)
			}
		}
	}
}

// TestCorpusUntrustedRoot: with another anchor in place of Intel's root,
// real quotes are rejected as chaining to an untrusted root.
func TestCorpusUntrustedRoot(t *testing.T) {
	other := selfSigned(t, "not Intel")
	v := NewVerifier(WithTrustAnchors(other))
	for _, c := range acceptedCases(t) {
		_, err := v.Verify(c.quote, c.collateral, c.exp.VerifyAt)
		if !errors.Is(err, ErrUntrustedRoot) {
			t.Errorf("%s: got %v, want ErrUntrustedRoot", c.name, err)
		}
	}
}

// TestCorpusCollateralTampered: a changed TCB info or QE identity body or
// signature is rejected for that document's signature.
func TestCorpusCollateralTampered(t *testing.T) {
	v := NewVerifier()
	for _, c := range acceptedCases(t) {
		raw := rawOf(c.collateral)
		cases := []struct {
			name   string
			edit   func(r *RawCollateral)
			reason error
		}{
			{"tcb info status", func(r *RawCollateral) {
				r.TCBInfo = bytes.Replace(r.TCBInfo, []byte(`"OutOfDate"`), []byte(`"UpToDate"`), 1)
			}, ErrTCBInfoSignature},
			{"tcb info date", func(r *RawCollateral) {
				r.TCBInfo = bytes.Replace(r.TCBInfo, []byte(`"nextUpdate":"20`), []byte(`"nextUpdate":"21`), 1)
			}, ErrTCBInfoSignature},
			{"tcb info signature", func(r *RawCollateral) { r.TCBInfoSignature = flipHex(r.TCBInfoSignature) }, ErrTCBInfoSignature},
			{"qe identity mrsigner", func(r *RawCollateral) {
				r.QEIdentity = bytes.Replace(r.QEIdentity, []byte(`"isvprodid":`), []byte(`"isvprodid":1`), 1)
			}, ErrQEIdentitySignature},
			{"qe identity signature", func(r *RawCollateral) { r.QEIdentitySignature = flipHex(r.QEIdentitySignature) }, ErrQEIdentitySignature},
		}
		for _, tc := range cases {
			t.Run(c.name+"/"+tc.name, func(t *testing.T) {
				r := raw
				r.TCBInfo, r.QEIdentity = bytes.Clone(raw.TCBInfo), bytes.Clone(raw.QEIdentity)
				r.TCBInfoSignature, r.QEIdentitySignature = bytes.Clone(raw.TCBInfoSignature), bytes.Clone(raw.QEIdentitySignature)
				tc.edit(&r)
				col, err := NewCollateral(r)
				if err != nil {
					t.Fatalf("edited collateral does not parse: %v", err)
				}
				if col.Digest() == c.collateral.Digest() {
					t.Fatal("the edit changed nothing")
				}
				_, err = v.Verify(c.quote, col, c.exp.VerifyAt)
				if !errors.Is(err, tc.reason) {
					t.Fatalf("got %v, want %v", err, tc.reason)
				}
			})
		}
	}
}

// TestCorpusMissingCollateral: each piece of collateral is required.
func TestCorpusMissingCollateral(t *testing.T) {
	v := NewVerifier()
	c := acceptedCases(t)[0]
	raw := rawOf(c.collateral)
	for _, tc := range []struct {
		name   string
		edit   func(r *RawCollateral)
		reason error
	}{
		{"tcb info", func(r *RawCollateral) { r.TCBInfo = nil }, ErrCollateralMissing},
		{"qe identity", func(r *RawCollateral) { r.QEIdentity = nil }, ErrCollateralMissing},
		{"pck crl", func(r *RawCollateral) { r.PCKCRL = nil }, ErrCRLMissing},
		{"root crl", func(r *RawCollateral) { r.RootCACRL = nil }, ErrCRLMissing},
		{"tcb issuer chain", func(r *RawCollateral) { r.TCBInfoIssuerChain = nil }, ErrCertChain},
		{"pck crl issuer chain", func(r *RawCollateral) { r.PCKCRLIssuerChain = nil }, ErrCRLInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := raw
			tc.edit(&r)
			col, err := NewCollateral(r)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(c.quote, col, c.exp.VerifyAt); !errors.Is(err, tc.reason) {
				t.Fatalf("got %v, want %v", err, tc.reason)
			}
		})
	}
	if _, err := v.Verify(c.quote, nil, c.exp.VerifyAt); !errors.Is(err, ErrCollateralMissing) {
		t.Fatalf("nil collateral: got %v", err)
	}
}

// TestCorpusChainOnly: without TCB info, chain-only mode verifies the
// signatures and reports the status as unknown.
func TestCorpusChainOnly(t *testing.T) {
	v := NewVerifier()
	for _, c := range loadCorpus(t) {
		res, err := v.VerifyChain(c.quote, nil, c.exp.VerifyAt)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.TCBStatus != "Unknown" || res.RevocationChecked {
			t.Errorf("%s: status %s revocation %v, want Unknown without revocation", c.name, res.TCBStatus, res.RevocationChecked)
		}
		// With CRLs it checks revocation too.
		res, err = v.VerifyChain(c.quote, c.collateral, c.exp.VerifyAt)
		if err != nil || !res.RevocationChecked {
			t.Fatalf("%s with CRLs: %v", c.name, err)
		}
		m := bytes.Clone(c.quote)
		m[len(m)/2] ^= 0xff
		if _, err := v.VerifyChain(m, nil, c.exp.VerifyAt); err == nil {
			t.Errorf("%s: a changed byte passed chain-only verification", c.name)
		}
	}
}

// TestEmbeddedIntelRoot: the embedded anchor is Intel's SGX Root CA, by the
// fingerprint Intel publishes, and has the corpus root's key.
func TestEmbeddedIntelRoot(t *testing.T) {
	root := IntelRootCA()
	const want = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
	if got := sha256Hex(root.Raw); got != want {
		t.Fatalf("embedded root fingerprint %s, want %s", got, want)
	}
	corpus, err := ParseChainPEM(testdataRoot(t), "root")
	if err != nil {
		t.Fatal(err)
	}
	if !corpus[0].PublicKey.(*ecdsa.PublicKey).Equal(root.PublicKey) {
		t.Fatal("the corpus root's key is not the embedded root's")
	}
}

func rawOf(c *Collateral) RawCollateral {
	crl := func(l *x509.RevocationList) []byte {
		if l == nil {
			return nil
		}
		return l.Raw
	}
	return RawCollateral{
		PCKCRLIssuerChain:     EncodeChainPEM(c.PCKCRLIssuerChain),
		RootCACRL:             crl(c.RootCACRL),
		PCKCRL:                crl(c.PCKCRL),
		TCBInfoIssuerChain:    EncodeChainPEM(c.TCBInfoIssuerChain),
		TCBInfo:               bytes.Clone(c.TCBInfoBody),
		TCBInfoSignature:      []byte(hex.EncodeToString(c.TCBInfoSignature)),
		QEIdentityIssuerChain: EncodeChainPEM(c.QEIdentityIssuerChain),
		QEIdentity:            bytes.Clone(c.QEIdentityBody),
		QEIdentitySignature:   []byte(hex.EncodeToString(c.QEIdentitySignature)),
	}
}

func flipHex(h []byte) []byte {
	b, _ := hex.DecodeString(string(h))
	b[10] ^= 1
	return []byte(hex.EncodeToString(b))
}

func selfSigned(t *testing.T, cn string) *x509.Certificate {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Unix(0, 0), NotAfter: time.Now().AddDate(50, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}
