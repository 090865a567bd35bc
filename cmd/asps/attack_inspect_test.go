package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/asps-project/asps/ratls"
)

// hostileText is what a hostile certificate puts where inspect prints
// text: a title change, an OSC 52 clipboard write and a faked line.
const hostileText = "x\x1b]0;owned\x07\x1b]52;c;cHduZWQ=\x07\r\nACCEPTED  forged\u202e"

// hostileCert writes a self-signed certificate whose subject and TCG
// claim names carry terminal escape codes, and whose quote is garbage.
func hostileCert(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claimsBuf, err := cbor.Marshal(map[string][]byte{hostileText: []byte("v")})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := cbor.Marshal(cbor.Tag{Number: ratls.TagIntelTEEQuote, Content: []any{[]byte("not a quote " + hostileText), claimsBuf}})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		Subject:         pkix.Name{CommonName: hostileText},
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: ratls.OIDTCGDICETaggedEvidence, Value: ev}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hostile.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAttack_RATLSInspectHostileCertEscapeCodes: `asps ratls inspect` of a
// certificate a hostile peer made prints its subject and claim names with
// control characters escaped, in the report and in the error, so the
// certificate cannot set the terminal title, write the clipboard or fake
// an ACCEPTED line.
func TestAttack_RATLSInspectHostileCertEscapeCodes(t *testing.T) {
	path := hostileCert(t)
	code, out, stderr := run(t, "ratls", "inspect", path)
	if code == 0 {
		t.Fatalf("a certificate with a garbage quote was accepted:\n%s", out)
	}
	for name, s := range map[string]string{"stdout": out, "stderr": stderr} {
		if i := strings.IndexFunc(s, func(r rune) bool {
			return r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f || r == '\u202e'
		}); i >= 0 {
			t.Errorf("%s carries a control character %q at byte %d:\n%q", name, s[i:i+1], i, s)
		}
		if strings.Contains(s, "\nACCEPTED") {
			t.Errorf("%s has a faked ACCEPTED line:\n%s", name, s)
		}
	}
	if !strings.Contains(out, `\x1b]0;owned`) {
		t.Errorf("the subject is not shown escaped:\n%s", out)
	}
}
