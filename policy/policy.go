package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/asps-project/asps/claims"
)

// Policy is a loaded, validated policy. It is immutable once returned by
// Load, Parse or an importer and safe for concurrent use; callers must not
// modify it (Holder shares one *Policy between goroutines).
type Policy struct {
	// AllowSimulated admits claims whose evidence chains to a simulator
	// root. A production server must refuse to run with it set.
	AllowSimulated bool
	// MinTCBEvalDataNumber is the policy-wide min_tcb_evaluation_data_number
	// (0: none); every app's own minimum is at least this.
	MinTCBEvalDataNumber uint32
	// Apps in file order; Match returns the first that holds.
	Apps []*App
	// Source is the file the policy was loaded from ("" if parsed from bytes).
	Source string
	// Digest is the hex SHA-256 of the bytes the policy was parsed from: the
	// policy's version, for audit records and reload logs.
	Digest string
}

// App is one workload identity and the secrets it may read.
type App struct {
	ID  string
	TEE claims.TEE
	// Runtime, if set, must equal claims.Runtime ("gramine", "occlum", ...).
	Runtime string
	// Exactly one of SGX and TDX is set, according to TEE.
	SGX *SGXSelector
	TDX *TDXSelector
	// TCBStatuses the app accepts (canonical names from claims.KnownStatuses).
	TCBStatuses []string
	// AdvisoryIDs the app tolerates; "*" tolerates any.
	AdvisoryIDs []string
	AllowDebug  bool
	// Binding is the weakest evidence binding the app accepts: "" (any),
	// claims.BindingTCGLabelled or claims.BindingTCGNonce.
	Binding string
	// MinTCBEvalDataNumber, if not 0, refuses claims whose TCB was judged
	// with collateral of a lower tcbEvaluationDataNumber (older TCB
	// recovery): claims.Claims.TCBEvalDataNumber must be at least this.
	MinTCBEvalDataNumber uint32
	// StoreToken is the credential the store uses for this app, if any.
	StoreToken Token

	secrets map[string]string // name -> store reference
	// inline holds the values of this app's InlinePrefix references
	// (reference -> value), when the policy was imported with them. They
	// belong to this app of this policy: a request that matched this app
	// reads them from here, never from whatever policy is in force later.
	inline map[string]*inlineValue
}

// inlineValue is a secret value written inline in an imported policy. It
// is a pointer field so that printing a SecretRef shows an address, never
// the value.
type inlineValue struct{ b []byte }

// SGXSelector is what an SGX enclave must show. Unset fields (nil, 0) are
// not checked; Parse guarantees MrEnclave or MrSigner is set, and IsvProdID
// when MrSigner stands alone.
type SGXSelector struct {
	MrEnclave    claims.Hex // 32 bytes
	MrSigner     claims.Hex // 32 bytes
	IsvProdID    *uint16
	MinIsvSvn    uint16
	ConfigID     claims.Hex // 64 bytes
	MinConfigSvn uint16
}

// TDXSelector is what a TDX trust domain must show. MrTd and at least one
// of Rtmr[0..2] are always set (they pin code); the others only narrow and
// are checked when set. All are 48 bytes, never all zeros.
type TDXSelector struct {
	MrTd          claims.Hex
	Rtmr          [4]claims.Hex
	MrConfigID    claims.Hex
	MrOwner       claims.Hex
	MrOwnerConfig claims.Hex
	// MrServiceTd, if set, admits a TD bound to that service TD (a
	// migration TD, say, which can read the TD's state): a non-zero
	// MR_SERVICETD must equal it. Unset, a non-zero MR_SERVICETD is refused.
	MrServiceTd claims.Hex
	// AllowSeptVE admits a TD without TDATTRIBUTES.SEPT_VE_DISABLE.
	AllowSeptVE bool
}

// SecretRef is one secret an app may read: the name the workload asked for
// and where the store keeps it. Ref is opaque to the policy: a Vault path
// ("occlum/1/image_key"), a file store key, or InlinePrefix+key for values
// imported inline (see Imported).
type SecretRef struct {
	Name  string
	Ref   string
	Token Token // the app's store credential; unset means the store's own

	inline *inlineValue
}

// InlineValue returns a copy of the value an imported policy held inline
// for this reference, and true; or nil and false when the value is not in
// the policy (then a store serves Ref). The value comes from the policy
// whose app Authorize was called on — the one that matched the request —
// so a reload between match and release cannot change it.
func (r SecretRef) InlineValue() ([]byte, bool) {
	if r.inline == nil {
		return nil, false
	}
	return append([]byte(nil), r.inline.b...), true
}

// WithInline returns a copy of the policy whose apps carry vals, the values
// of their InlinePrefix references (reference -> value; values are copied).
// Every InlinePrefix reference of every app must have a value: a policy that
// could only answer "not found" is refused here, when it is loaded. The
// importers attach the values they read; a server that transforms them (an
// Occlum secret file holds base64 text) attaches its own with WithInline.
func (p *Policy) WithInline(vals map[string][]byte) (*Policy, error) {
	out := *p
	out.Apps = make([]*App, len(p.Apps))
	var missing []string
	for i, a := range p.Apps {
		c := *a
		c.inline = nil
		for _, n := range a.SecretNames() {
			ref := a.secrets[n]
			if !strings.HasPrefix(ref, InlinePrefix) {
				continue
			}
			v, ok := vals[ref]
			if !ok {
				missing = append(missing, fmt.Sprintf("app %q secret %q", a.ID, n))
				continue
			}
			if c.inline == nil {
				c.inline = make(map[string]*inlineValue)
			}
			c.inline[ref] = &inlineValue{b: append([]byte(nil), v...)}
		}
		out.Apps[i] = &c
	}
	if len(missing) > 0 {
		return nil, &LoadError{Field: "secrets", Reason: ErrEmptySecretRef,
			Detail: "no inline value for " + strings.Join(missing, ", ")}
	}
	return &out, nil
}

// App returns the app with the given id, or nil.
func (p *Policy) App(id string) *App {
	for _, a := range p.Apps {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// SecretNames returns the names of the secrets the app may read, sorted.
func (a *App) SecretNames() []string {
	names := make([]string, 0, len(a.secrets))
	for n := range a.secrets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Authorize returns the references of the named secrets, in request order
// without repeats, or — if any name is not one of the app's secrets — a
// *Denial with ErrSecretNotAllowed naming the first such name and nothing
// else. A request that names no secret is refused the same way: use
// SecretNames to ask for all of them.
func (a *App) Authorize(names []string) ([]SecretRef, error) {
	if len(names) == 0 {
		return nil, &Denial{Reason: ErrSecretNotAllowed, App: a.ID, Detail: "the request names no secret"}
	}
	refs := make([]SecretRef, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		ref, ok := a.secrets[n]
		if !ok {
			return nil, &Denial{Reason: ErrSecretNotAllowed, App: a.ID, Detail: fmt.Sprintf(
				"secret %s is not one app %q may read (it may read: %s)",
				quoteShort(n), a.ID, strings.Join(a.SecretNames(), ", "))}
		}
		refs = append(refs, SecretRef{Name: n, Ref: ref, Token: a.StoreToken, inline: a.inline[ref]})
	}
	return refs, nil
}
