package collateral

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/asps-project/asps/dcap"
)

// Bundle is an offline Source over a bundle directory: no network. Every
// document is verified (signatures, chains, identity) when the bundle is
// opened; dates are checked per request against the clock, with the grace
// period if one is set.
type Bundle struct {
	c   *Cache
	dir string
}

// OpenBundle opens a bundle directory. Of the options it uses
// TrustAnchors, Verify, Now, Grace and Logger. Any file that fails
// verification fails the opening, as does a directory without documents.
func OpenBundle(dir string, o Options) (*Bundle, error) {
	o.Client, o.Dir = nil, ""
	c, err := newCache(o)
	if err != nil {
		return nil, err
	}
	if err := c.load(dir, true); err != nil {
		return nil, err
	}
	if len(c.slots) == 0 {
		return nil, &Error{Reason: ErrNotFound, Detail: fmt.Sprintf("no collateral documents in %s", dir)}
	}
	return &Bundle{c: c, dir: dir}, nil
}

// Get returns the collateral for a quote from the bundle (see Source).
func (b *Bundle) Get(ctx context.Context, tee, fmspc, ca string) (*dcap.Collateral, Info, error) {
	return b.c.Get(ctx, tee, fmspc, ca)
}

// Document returns a document of the bundle, expired or not (the mirror
// serves it; whoever verifies against it checks its dates).
func (b *Bundle) Document(ctx context.Context, k Key) (*Document, error) {
	k, err := k.Normalize()
	if err != nil {
		return nil, err
	}
	b.c.mu.Lock()
	s := b.c.slots[k]
	b.c.mu.Unlock()
	if s == nil || s.doc == nil {
		return nil, &Error{Key: k, Reason: ErrNotFound, Detail: "not in the bundle " + b.dir}
	}
	return s.doc, nil
}

// Reopen opens the bundle's directory again (after it was replaced, on
// SIGHUP) with options o, as OpenBundle does, but never goes back: a
// document of the new bundle that is older than the one b holds for the
// same item (see ErrRollback) is not taken; b's copy stays in force, and
// each such refusal is logged and returned in refused. Documents absent
// from the new bundle are dropped.
func (b *Bundle) Reopen(o Options) (nb *Bundle, refused []error, err error) {
	nb, err = OpenBundle(b.dir, o)
	if err != nil {
		return nil, nil, err
	}
	b.c.mu.Lock()
	prev := make(map[Key]*Document, len(b.c.slots))
	for k, s := range b.c.slots {
		if s.doc != nil {
			prev[k] = s.doc
		}
	}
	b.c.mu.Unlock()
	nb.c.mu.Lock()
	for k, s := range nb.c.slots {
		if s.doc == nil || prev[k] == nil || prev[k].sameContent(s.doc) {
			continue
		}
		if rb := rollback(s.doc, prev[k]); rb != nil {
			s.doc = prev[k]
			nb.c.stats.rollbacks.Add(1)
			refused = append(refused, rb)
		}
	}
	nb.c.mu.Unlock()
	for _, rb := range refused {
		nb.c.log.Warn("collateral: the reopened bundle holds an older document; keeping the copy in force",
			"dir", b.dir, "error", rb)
	}
	return nb, refused, nil
}

// Stats returns the bundle's counters (see Cache.Stats).
func (b *Bundle) Stats() Stats { return b.c.Stats() }

// Documents returns the bundle's documents, sorted by path.
func (b *Bundle) Documents() []*Document { return b.c.Documents() }

// ImportCollateral writes the documents of a collateral (as from
// dcap.ParseCollateralJSON, dcap-qvl's layout) into a bundle directory:
// the TCB info under the TEE and FMSPC it names, the QE identity under its
// TEE, the PCK CRL under its CA (from its issuer's name), the root CA CRL.
// Each is verified with verify (nil: a Checker anchored at Intel's root)
// except for its dates. A document already in the directory is replaced
// only by a newer one (by issue date). It returns the documents written.
func ImportCollateral(dir string, col *dcap.Collateral, verify VerifyFunc, now time.Time) ([]Key, error) {
	if col == nil {
		return nil, &Error{Reason: dcap.ErrCollateralMissing, Detail: "no collateral"}
	}
	if verify == nil {
		verify = NewChecker().Check
	}
	if now.IsZero() {
		now = time.Now()
	}
	type piece struct {
		k     Key
		body  []byte
		chain []byte
	}
	var pieces []piece
	if ti := col.TCBInfo; ti != nil {
		pieces = append(pieces, piece{TCBInfoKey(strings.ToLower(ti.ID), ti.FMSPC),
			pcsResponse("tcbInfo", col.TCBInfoBody, col.TCBInfoSignature), dcap.EncodeChainPEM(col.TCBInfoIssuerChain)})
	}
	if qi := col.QEIdentity; qi != nil {
		tee := TEESGX
		if qi.ID == "TD_QE" {
			tee = TEETDX
		}
		pieces = append(pieces, piece{QEIdentityKey(tee),
			pcsResponse("enclaveIdentity", col.QEIdentityBody, col.QEIdentitySignature), dcap.EncodeChainPEM(col.QEIdentityIssuerChain)})
	}
	if l := col.PCKCRL; l != nil {
		ca := dcap.PCKCAKind(l.Issuer.CommonName)
		if ca == "" {
			return nil, &Error{Key: Key{Kind: KindPCKCRL}, Reason: dcap.ErrCRLInvalid, Detail: fmt.Sprintf("PCK CRL issuer %q names neither the Processor nor the Platform CA", l.Issuer.CommonName)}
		}
		pieces = append(pieces, piece{PCKCRLKey(ca), l.Raw, dcap.EncodeChainPEM(col.PCKCRLIssuerChain)})
	}
	if l := col.RootCACRL; l != nil {
		pieces = append(pieces, piece{RootCACRLKey(), l.Raw, nil})
	}
	var docs []*Document
	for _, p := range pieces {
		d, err := ParseDocument(p.k, p.body, p.chain, "", now)
		if err != nil {
			return nil, err
		}
		if err := verify(d.col, d.Key.want(), time.Time{}); err != nil {
			return nil, rejected(d.Key, "", err)
		}
		docs = append(docs, d)
	}
	var written []Key
	for _, d := range docs {
		// An unreadable file, or one that does not verify, is replaced; a
		// good one only by a newer document that is no rollback (a lower
		// tcbEvaluationDataNumber or CRL number is refused even under a
		// later issue date).
		if old, err := readDocument(dir, d.Key); err == nil && verify(old.col, d.Key.want(), time.Time{}) == nil &&
			(!d.IssueDate.After(old.IssueDate) || rollback(d, old) != nil) {
			continue
		}
		if err := writeDocument(dir, d); err != nil {
			return written, fmt.Errorf("collateral: writing %s: %w", d.Key.Path(), err)
		}
		written = append(written, d.Key)
	}
	return written, nil
}

// pcsResponse rebuilds the PCS response around a signed body, keeping the
// body's bytes exactly.
func pcsResponse(member string, body, sig []byte) []byte {
	var b []byte
	b = append(b, `{"`+member+`":`...)
	b = append(b, body...)
	b = append(b, `,"signature":"`...)
	b = append(b, hex.EncodeToString(sig)...)
	b = append(b, `"}`...)
	return b
}

// cleanTemp removes temporary files a crash may have left in a cache
// directory.
func cleanTemp(dir string) {
	for _, sub := range []string{"tcb/sgx", "tcb/tdx", "qe", "crl"} {
		d := filepath.Join(dir, filepath.FromSlash(sub))
		es, _ := os.ReadDir(d)
		for _, e := range es {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				_ = os.Remove(filepath.Join(d, e.Name()))
			}
		}
	}
}
