package ratls

import (
	"crypto/x509/pkix"
	"testing"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// FuzzParseEvidence feeds arbitrary extension values to the evidence
// parsers (TCG CBOR and raw quote) and, when they decode, to the quote
// parser and the binding check. Nothing may panic; what decodes must
// re-encode to itself (TCG).
func FuzzParseEvidence(f *testing.F) {
	for _, tc := range realCerts {
		cert := readRealCert(f, tc.name)
		for _, ext := range cert.Extensions {
			if fm, _ := formatOf(ext.Id); fm != formatNone {
				f.Add(ext.Value)
			}
		}
	}
	tee := newFakeTEE(f, false)
	spki := spkiOf(f, newP256(f))
	f.Add(tcgExt(f, tee, spki).Value)
	buf, _ := encodeClaimsBuffer(spki, []byte("nonce"), "sim")
	f.Add(buf)
	for _, s := range []string{"", "\xd9\xea\x60", "\xd9\xea\x60\x82\x40\x40", "\xd9\xea\x60\x82\x41\x00\xa0", "\xd9\xea\x60\x9f\xff", "\xa1\x6bpubkey-hash\x82\x01\x40", "\x04\x03\xd9\xea\x60"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, oid := range []pkix.Extension{{Id: OIDTCGDICETaggedEvidence, Value: b}, {Id: OIDGramineLegacy, Value: b}} {
			ev, err := ParseEvidence(oid, 0)
			if err != nil {
				if ev != nil {
					t.Fatalf("evidence with error %v", err)
				}
				continue
			}
			if ev.Format == FormatTCG {
				re, err := encodeTaggedEvidence(ev.Quote, ev.ClaimsBuffer)
				if err != nil {
					t.Fatal(err)
				}
				// Re-encoding is canonical; the input may not be
				// (e.g. non-minimal lengths), so only re-parse.
				ev2, err := ParseEvidence(pkix.Extension{Id: OIDTCGDICETaggedEvidence, Value: re}, 0)
				if err != nil || string(ev2.Quote) != string(ev.Quote) || string(ev2.ClaimsBuffer) != string(ev.ClaimsBuffer) {
					t.Fatalf("re-encoded evidence does not round-trip: %v", err)
				}
			}
			if q, err := dcap.ParseQuote(ev.Quote); err == nil {
				bd := CheckBinding(ev, q, b)
				switch {
				case bd.Binds != (bd.Err == nil) || bd.Binds != (bd.Kind != ""):
					t.Fatalf("binding %+v: Binds, Err and Kind disagree", bd)
				case bd.Kind == claims.BindingTCGLabelled && (ev.Claims.Domain != DomainCertificate || !exactReportData(q.ReportData(), ev.ClaimsBuffer)):
					t.Fatalf("labelled binding without the label or exact report data: %+v", bd)
				}
			}
		}
		ParseClaimsBuffer(b)
	})
}
