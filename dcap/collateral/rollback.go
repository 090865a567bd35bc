package collateral

import (
	"fmt"
	"math/big"
	"time"
)

// Rollback protection. Older collateral is validly signed for as long as
// it has not expired, so whoever stands between a verifier and the PCS (a
// plain-http path, a lagging or hostile PCCS, a copied bundle) could serve
// a TCB info from before an advisory was published and have a platform
// that is now OutOfDate judged UpToDate, or a CRL from before a PCK
// certificate was revoked. Each item — the TCB info of a TEE and FMSPC,
// the QE identity of a TEE, the CRL of an issuer — therefore only moves
// forward: a document never replaces one in force that is newer.

// evaluationDataNumber is the tcbEvaluationDataNumber of a TCB info or QE
// identity; ok is false for CRLs.
func (d *Document) evaluationDataNumber() (n int, ok bool) {
	if d.col == nil {
		return 0, false
	}
	switch d.Key.Kind {
	case KindTCBInfo:
		if d.col.TCBInfo != nil {
			return d.col.TCBInfo.TCBEvaluationDataNumber, true
		}
	case KindQEIdentity:
		if d.col.QEIdentity != nil {
			return d.col.QEIdentity.TCBEvaluationDataNumber, true
		}
	}
	return 0, false
}

// rollback returns an *Error with reason ErrRollback when d is older than
// cur, the copy in force for the same item: a lower tcbEvaluationDataNumber
// (TCB info, QE identity), a lower CRL number (CRLs), or an older issue
// date (a CRL's thisUpdate). It returns nil when d may replace cur (it is
// as new or newer, or cur is nil or another item).
func rollback(d, cur *Document) *Error {
	if cur == nil || d.Key != cur.Key {
		return nil
	}
	fail := func(format string, args ...any) *Error {
		return &Error{Key: d.Key, URL: d.URL, Reason: ErrRollback, Detail: fmt.Sprintf(format, args...)}
	}
	if n, ok := d.evaluationDataNumber(); ok {
		if m, ok := cur.evaluationDataNumber(); ok && n < m {
			return fail("tcbEvaluationDataNumber %d is lower than %d of the copy in force", n, m)
		}
	}
	if n, m := d.crlNumber(), cur.crlNumber(); n != nil && m != nil && n.Cmp(m) < 0 {
		return fail("CRL number %s is lower than %s of the copy in force", n, m)
	}
	if d.IssueDate.Before(cur.IssueDate) {
		return fail("issued %s, before %s of the copy in force", d.IssueDate.UTC().Format(time.RFC3339), cur.IssueDate.UTC().Format(time.RFC3339))
	}
	return nil
}

// crlNumber is a CRL's number (nil for other documents, or a CRL without
// one).
func (d *Document) crlNumber() *big.Int {
	if d.col == nil {
		return nil
	}
	switch {
	case d.Key.Kind == KindPCKCRL && d.col.PCKCRL != nil:
		return d.col.PCKCRL.Number
	case d.Key.Kind == KindRootCACRL && d.col.RootCACRL != nil:
		return d.col.RootCACRL.Number
	}
	return nil
}
