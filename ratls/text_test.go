package ratls_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"

	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/ratls"
)

// TestAttack_InspectHostileSubjectEscaped: ratls.Inspect of a certificate
// whose subject carries terminal escape codes reports it escaped exactly as
// client.EscapeText escapes server text.
func TestAttack_InspectHostileSubjectEscaped(t *testing.T) {
	for _, cn := range []string{
		"plain",
		"a\x1b]0;title\x07b",
		"\x1b]52;c;cHduZWQ=\x07",
		"line\r\nACCEPTED  forged",
		"bidi\u202eevil\u200b",
		"c1\u009b31m",
		"bad utf8 \xff\xfe",
		"del\x7f tab\t",
	} {
		cert := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
		r, err := ratls.Inspect(cert)
		if err != nil {
			t.Fatal(err)
		}
		want := client.EscapeText(cert.Subject.String())
		if r.Subject != want {
			t.Errorf("subject of CN %q = %q, want %q", cn, r.Subject, want)
		}
		if strings.ContainsAny(r.Subject, "\x1b\x07\r\n\x7f\u009b\u202e\u200b") {
			t.Errorf("subject of CN %q keeps a control character: %q", cn, r.Subject)
		}
	}
}
