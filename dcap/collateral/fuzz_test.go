package collateral

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asps-project/asps/dcap"
)

var fuzzKeys = []Key{TCBInfoKey(TEESGX, fmspcA), TCBInfoKey(TEETDX, fmspcB), QEIdentityKey(TEESGX), QEIdentityKey(TEETDX), PCKCRLKey(CAProcessor), PCKCRLKey(CAPlatform), RootCACRLKey()}

// corpusSeeds returns the real collaterals, read without the testing
// helpers (a fuzz seed corpus may be empty).
func corpusSeeds() []*dcap.Collateral {
	d := os.Getenv("ASPS_TESTDATA")
	if d == "" {
		d = filepath.Join("..", "..", "..", "shared", "testdata")
	}
	paths, _ := filepath.Glob(filepath.Join(d, "dcap", "*", "collateral.json"))
	var out []*dcap.Collateral
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			if c, err := dcap.ParseCollateralJSON(b); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// FuzzParseDocument: no PCS response (body and issuer chain header)
// panics the parser or the checker; what parses survives a round trip
// through the bundle file format; every failure carries a reason.
func FuzzParseDocument(f *testing.F) {
	for _, c := range corpusSeeds() {
		tcb := pcsResponse("tcbInfo", c.TCBInfoBody, c.TCBInfoSignature)
		qe := pcsResponse("enclaveIdentity", c.QEIdentityBody, c.QEIdentitySignature)
		f.Add(uint8(0), tcb, EncodeChainHeader(dcap.EncodeChainPEM(c.TCBInfoIssuerChain)))
		f.Add(uint8(1), tcb[:len(tcb)/3], string(dcap.EncodeChainPEM(c.TCBInfoIssuerChain)))
		f.Add(uint8(2), qe, EncodeChainHeader(dcap.EncodeChainPEM(c.QEIdentityIssuerChain)))
		f.Add(uint8(4), c.PCKCRL.Raw, EncodeChainHeader(dcap.EncodeChainPEM(c.PCKCRLIssuerChain)))
		f.Add(uint8(6), c.RootCACRL.Raw, "")
	}
	f.Add(uint8(0), []byte(`{"tcbInfo":{},"signature":"00"}`), "%zz")
	f.Add(uint8(5), []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), "+")
	checker := NewChecker()
	at := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, kind uint8, body []byte, header string) {
		k := fuzzKeys[int(kind)%len(fuzzKeys)]
		d, err := ParseDocument(k, body, DecodeChainHeader(header), "", at)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == nil {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if d.Collateral() == nil || d.Expires.IsZero() {
			t.Fatal("a parsed document without collateral or expiry")
		}
		_ = checker.Check(d.Collateral(), k.want(), at)
		_ = checker.Check(d.Collateral(), Want{}, time.Time{})
		b, err := d.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		d2, err := parseDocumentFile(k, b)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if !d2.sameContent(d) || d2.Collateral().Digest() != d.Collateral().Digest() {
			t.Fatalf("round trip changed the document: body %v chain %v %q", bytes.Equal(d2.Body, d.Body), bytes.Equal(d2.IssuerChain, d.IssuerChain), d.IssuerChain[:min(len(d.IssuerChain), 80)])
		}
	})
}

// FuzzDocumentFile: no bundle file panics the loader.
func FuzzDocumentFile(f *testing.F) {
	for _, c := range corpusSeeds() {
		d, err := ParseDocument(TCBInfoKey(c.TCBInfo.ID, c.TCBInfo.FMSPC), pcsResponse("tcbInfo", c.TCBInfoBody, c.TCBInfoSignature), dcap.EncodeChainPEM(c.TCBInfoIssuerChain), "", time.Time{})
		if err == nil {
			b, _ := d.MarshalJSON()
			f.Add(uint8(0), b)
			f.Add(uint8(1), bytes.ReplaceAll(b, []byte("tcb_info"), []byte("pck_crl")))
		}
	}
	f.Add(uint8(4), []byte(`{"format":"asps-collateral/1","kind":"pck_crl","ca":"processor","body_hex":"zz"}`))
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		k := fuzzKeys[int(kind)%len(fuzzKeys)]
		d, err := parseDocumentFile(k, b)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == nil {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if d.Key != k {
			t.Fatalf("file for %s parsed as %s", k, d.Key)
		}
		// Invariant: a cache file stands for its signed document; written
		// back and read again it is the same document, with the same
		// collateral and the same dates (rollback decisions rest on them).
		out, err := d.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		d2, err := parseDocumentFile(k, out)
		if err != nil {
			t.Fatalf("a file this package wrote does not parse: %v", err)
		}
		if !d2.sameContent(d) || d2.Collateral().Digest() != d.Collateral().Digest() ||
			!d2.IssueDate.Equal(d.IssueDate) || !d2.Expires.Equal(d.Expires) || rollback(d2, d) != nil || rollback(d, d2) != nil {
			t.Fatal("the file changed through write and read")
		}
	})
}

// FuzzRollbackOrder: the order rollback protection keeps is consistent:
// a document never refuses itself; two documents refuse each other only
// when their number and issue date disagree on which is newer (the copy
// in force then stays); two that refuse neither carry the same number and
// issue date; every refusal carries ErrRollback.
func FuzzRollbackOrder(f *testing.F) {
	pki := newTestPKI(f, "Fuzz")
	f.Add(uint8(0), 17, 16, int64(0), int64(86400))
	f.Add(uint8(2), 5, 5, int64(-1), int64(1))
	f.Add(uint8(4), 1, 2, int64(0), int64(0))
	f.Add(uint8(6), 0, 0, int64(3600), int64(0))
	f.Fuzz(func(t *testing.T, kind uint8, n1, n2 int, s1, s2 int64) {
		k := fuzzKeys[int(kind)%len(fuzzKeys)]
		n1, n2 = n1&0xffff, n2&0xffff
		s1, s2 = s1%(365*86400), s2%(365*86400)
		doc := func(n int, s int64) *Document {
			issue := t0.Add(time.Duration(s) * time.Second).Truncate(time.Second)
			body, chain := docVersion(t, pki, k, version{issue, issue.Add(2 * 365 * 24 * time.Hour), n})
			d, err := ParseDocument(k, body, chain, "", t0)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		a, b := doc(n1, s1), doc(n2, s2)
		if rollback(a, a) != nil || rollback(b, b) != nil {
			t.Fatal("a document refuses itself")
		}
		ab, ba := rollback(a, b), rollback(b, a)
		if ab != nil && ba != nil && (n1 == n2 || a.IssueDate.Equal(b.IssueDate) || (n1 > n2) == a.IssueDate.After(b.IssueDate)) {
			t.Fatalf("each refuses the other: %v / %v", ab, ba)
		}
		if ab == nil && ba == nil && (n1 != n2 || !a.IssueDate.Equal(b.IssueDate)) {
			t.Fatalf("numbers %d/%d, issued %s/%s: neither refuses the other", n1, n2, a.IssueDate, b.IssueDate)
		}
		if ab != nil && !errors.Is(ab, ErrRollback) {
			t.Fatalf("refusal without the reason: %v", ab)
		}
	})
}
