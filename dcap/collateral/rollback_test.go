package collateral

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// version is one release of a document: its dates, and the number that
// orders it (tcbEvaluationDataNumber, or the CRL number).
type version struct {
	issue, next time.Time
	number      int
}

func numberedCRL(t testing.TB, issuer *x509.Certificate, key *ecdsa.PrivateKey, v version) []byte {
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(int64(v.number)), ThisUpdate: v.issue, NextUpdate: v.next,
	}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// docVersion is the PCS response for version v of document k.
func docVersion(t testing.TB, p *testPKI, k Key, v version) (body, chain []byte) {
	setNum := func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"tcbEvaluationDataNumber":17`), []byte(`"tcbEvaluationDataNumber":`+strconv.Itoa(v.number)), 1)
	}
	switch k.Kind {
	case KindTCBInfo:
		return p.signed(t, "tcbInfo", setNum(tcbInfoBody(t, k.TEE, k.FMSPC, v.issue, v.next))), p.signingChain()
	case KindQEIdentity:
		return p.signed(t, "enclaveIdentity", setNum(qeIdentityBody(t, k.TEE, v.issue, v.next))), p.signingChain()
	case KindPCKCRL:
		return numberedCRL(t, p.processor, p.processorKey, v), p.caChain(CAProcessor)
	default:
		return numberedCRL(t, p.root, p.rootKey, v), nil
	}
}

// serveVersion makes the fake PCS answer k with version v.
func (e *env) serveVersion(t testing.TB, k Key, v version) {
	body, chain := docVersion(t, e.pki, k, v)
	e.pcs.setFault(func(got Key, w http.ResponseWriter, r *http.Request) bool {
		if got != k {
			return false
		}
		writeDoc(w, k, body, chain)
		return true
	})
}

func docNumber(d *Document) int {
	if n, ok := d.evaluationDataNumber(); ok {
		return n
	}
	if n := d.crlNumber(); n != nil {
		return int(n.Int64())
	}
	return -1
}

// rollbackCases: after a newer document (issued t0, number 17, valid a
// month), a PCCS serves an older one that is still validly signed and
// outlives it: a lower number under a later issue date, or the same number
// under an earlier issue date.
var rollbackCases = []struct {
	name     string
	k        Key
	old      version
	wantText string
}{
	{"TCB info: lower tcbEvaluationDataNumber, later issue date", TCBInfoKey(TEESGX, fmspcA),
		version{t0.Add(24 * time.Hour), t0.Add(3 * month), 16}, "tcbEvaluationDataNumber 16 is lower than 17"},
	{"TCB info: same number, earlier issue date", TCBInfoKey(TEETDX, fmspcB),
		version{t0.Add(-24 * time.Hour), t0.Add(3 * month), 17}, "before 2025-06-01T00:00:00Z"},
	{"QE identity: lower tcbEvaluationDataNumber", QEIdentityKey(TEESGX),
		version{t0.Add(24 * time.Hour), t0.Add(3 * month), 15}, "tcbEvaluationDataNumber 15 is lower than 17"},
	{"PCK CRL: lower CRL number", PCKCRLKey(CAProcessor),
		version{t0.Add(24 * time.Hour), t0.Add(3 * month), 16}, "CRL number 16 is lower than 17"},
	{"root CA CRL: earlier thisUpdate", RootCACRLKey(),
		version{t0.Add(-24 * time.Hour), t0.Add(3 * month), 17}, "before 2025-06-01T00:00:00Z"},
}

// TestAttack_PCCSServesOlderTCBInfoAfterNewer: a PCCS (lagging, hostile,
// or anyone on a plain-http path) answers a refresh with an older,
// validly signed document. The cache keeps the newer one while it is
// valid, refuses the older one with ErrRollback once the newer one has
// expired (fail closed, no serving of the old one as fresh), counts and
// keeps the newer copy on disk.
func TestAttack_PCCSServesOlderTCBInfoAfterNewer(t *testing.T) {
	for _, tc := range rollbackCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			ctx := context.Background()
			newer := version{t0, t0.Add(month), 17}
			e.serveVersion(t, tc.k, newer)
			if d, err := e.cache.Document(ctx, tc.k); err != nil || docNumber(d) != 17 {
				t.Fatalf("first fetch: %v %v", d, err)
			}
			// Due for a refresh: the PCCS answers with the older document.
			e.serveVersion(t, tc.k, tc.old)
			e.clock.Set(t0.Add(month - 30*time.Minute))
			if err := e.cache.RefreshDue(ctx); err != nil {
				t.Fatalf("refresh: %v", err)
			}
			d, _, err := e.cache.document(ctx, tc.k, e.clock.Now(), false)
			if err != nil || !d.IssueDate.Equal(t0) || docNumber(d) != 17 {
				t.Fatalf("after the rollback attempt the cache serves %v (number %d), %v; want the newer copy", d, docNumber(d), err)
			}
			if n := e.cache.Stats().Rollbacks; n != 1 {
				t.Errorf("Stats.Rollbacks = %d, want 1", n)
			}
			// Past the newer copy's expiry, the older one (still valid by
			// its own dates) must not become the copy in force.
			e.clock.Set(t0.Add(month + time.Hour))
			_, _, err = e.cache.document(ctx, tc.k, e.clock.Now(), false)
			var ce *Error
			if !errors.Is(err, ErrExpired) || !errors.Is(err, ErrRollback) || !errors.As(err, &ce) {
				t.Fatalf("after expiry: %v; want ErrExpired caused by ErrRollback", err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tc.wantText)) {
				t.Errorf("error %q does not say %q", err, tc.wantText)
			}
			// On disk, and after a restart, the newer copy is what is kept.
			disk, err := readDocument(e.dir, tc.k)
			if err != nil || docNumber(disk) != 17 || !disk.IssueDate.Equal(t0) {
				t.Fatalf("disk holds %v (number %d), %v", disk, docNumber(disk), err)
			}
		})
	}
}

// TestAttack_DiskCacheNotOverwrittenByOlderDocument: a second process
// sharing the cache directory (or an operator's import) put a newer copy
// there; a cache that fetches an older one does not write it over.
func TestAttack_DiskCacheNotOverwrittenByOlderDocument(t *testing.T) {
	for _, tc := range rollbackCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			body, chain := docVersion(t, e.pki, tc.k, version{t0, t0.Add(month), 17})
			newer, err := ParseDocument(tc.k, body, chain, "", t0)
			if err != nil {
				t.Fatal(err)
			}
			if err := writeDocument(e.dir, newer); err != nil {
				t.Fatal(err)
			}
			e.serveVersion(t, tc.k, tc.old)
			e.clock.Set(t0.Add(48 * time.Hour))
			if _, err := e.cache.Document(context.Background(), tc.k); err != nil {
				t.Fatal(err)
			}
			disk, err := readDocument(e.dir, tc.k)
			if err != nil || !disk.sameContent(newer) {
				t.Fatalf("disk holds %v (number %d), %v; want the newer copy", disk, docNumber(disk), err)
			}
			if n := e.cache.Stats().Rollbacks; n != 1 {
				t.Errorf("Stats.Rollbacks = %d, want 1", n)
			}
		})
	}
}

// TestAttack_BundleReloadWithOlderDocument: `collateral serve` reopens its
// bundle on SIGHUP; a bundle copied over it with older documents does not
// take the newer ones out of force.
func TestAttack_BundleReloadWithOlderDocument(t *testing.T) {
	for _, tc := range rollbackCases {
		t.Run(tc.name, func(t *testing.T) {
			pki := newTestPKI(t, "Test")
			dir := t.TempDir()
			write := func(v version) *Document {
				body, chain := docVersion(t, pki, tc.k, v)
				d, err := ParseDocument(tc.k, body, chain, "", t0)
				if err != nil {
					t.Fatal(err)
				}
				if err := writeDocument(dir, d); err != nil {
					t.Fatal(err)
				}
				return d
			}
			newer := write(version{t0, t0.Add(month), 17})
			o := Options{TrustAnchors: []*x509.Certificate{pki.root}, Logger: quietLogger()}
			b, err := OpenBundle(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			write(tc.old)
			nb, refused, err := b.Reopen(o)
			if err != nil {
				t.Fatal(err)
			}
			d, err := nb.Document(context.Background(), tc.k)
			if err != nil || !d.sameContent(newer) {
				t.Fatalf("after reload: %v (number %d), %v; want the newer copy", d, docNumber(d), err)
			}
			if len(refused) != 1 || !errors.Is(refused[0], ErrRollback) || nb.Stats().Rollbacks != 1 {
				t.Fatalf("refused %v, Rollbacks %d", refused, nb.Stats().Rollbacks)
			}
			// A newer bundle is taken.
			newest := write(version{t0.Add(48 * time.Hour), t0.Add(2 * month), 18})
			nb2, refused, err := nb.Reopen(o)
			if err != nil || len(refused) != 0 {
				t.Fatal(err, refused)
			}
			if d, _ := nb2.Document(context.Background(), tc.k); !d.sameContent(newest) {
				t.Fatalf("newer bundle not taken: %v", d)
			}
		})
	}
}

// TestAttack_ImportOlderEvaluationNumberUnderLaterIssueDate: `collateral
// import` replaced a document by any with a later issue date; one with a
// lower tcbEvaluationDataNumber (or CRL number) is no update.
func TestAttack_ImportOlderEvaluationNumberUnderLaterIssueDate(t *testing.T) {
	pki := newTestPKI(t, "Test")
	dir := t.TempDir()
	verify := NewChecker(pki.root).Check
	k := TCBInfoKey(TEESGX, fmspcA)
	imp := func(v version) []Key {
		body, chain := docVersion(t, pki, k, v)
		d, err := ParseDocument(k, body, chain, "", t0)
		if err != nil {
			t.Fatal(err)
		}
		written, err := ImportCollateral(dir, d.Collateral(), verify, t0)
		if err != nil {
			t.Fatal(err)
		}
		return written
	}
	if w := imp(version{t0, t0.Add(month), 17}); len(w) != 1 {
		t.Fatalf("first import wrote %v", w)
	}
	if w := imp(version{t0.Add(24 * time.Hour), t0.Add(2 * month), 16}); len(w) != 0 {
		t.Fatalf("an older tcbEvaluationDataNumber under a later issue date was imported: %v", w)
	}
	if d, err := readDocument(dir, k); err != nil || docNumber(d) != 17 {
		t.Fatalf("bundle holds %v, %v", d, err)
	}
	if w := imp(version{t0.Add(24 * time.Hour), t0.Add(2 * month), 18}); len(w) != 1 {
		t.Fatalf("a newer document was not imported: %v", w)
	}
}
