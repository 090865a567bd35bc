package collateral

import (
	"encoding/hex"
	"fmt"
	"path"
	"strings"
)

// Kind is one of the four documents that make up a quote's collateral.
type Kind string

// The kinds of document.
const (
	KindTCBInfo    Kind = "tcb_info"    // per TEE and FMSPC
	KindQEIdentity Kind = "qe_identity" // per TEE: QE (SGX) or TD_QE (TDX)
	KindPCKCRL     Kind = "pck_crl"     // per PCK CA: processor or platform
	KindRootCACRL  Kind = "root_ca_crl" // one
)

// TEEs and PCK CAs, as Get takes them.
const (
	TEESGX      = "sgx"
	TEETDX      = "tdx"
	CAProcessor = "processor"
	CAPlatform  = "platform"
)

// Key names one document. Only the fields its Kind uses are set: TEE and
// FMSPC for TCB info, TEE for QE identity, CA for the PCK CRL, nothing for
// the root CA CRL.
type Key struct {
	Kind  Kind
	TEE   string // "sgx" or "tdx"
	FMSPC string // 12 upper-case hex digits
	CA    string // "processor" or "platform"
}

// TCBInfoKey names the TCB info of an FMSPC.
func TCBInfoKey(tee, fmspc string) Key { return Key{Kind: KindTCBInfo, TEE: tee, FMSPC: fmspc} }

// QEIdentityKey names the QE identity of a TEE.
func QEIdentityKey(tee string) Key { return Key{Kind: KindQEIdentity, TEE: tee} }

// PCKCRLKey names the CRL of a PCK CA.
func PCKCRLKey(ca string) Key { return Key{Kind: KindPCKCRL, CA: ca} }

// RootCACRLKey names the root CA CRL.
func RootCACRLKey() Key { return Key{Kind: KindRootCACRL} }

func (k Key) String() string {
	switch k.Kind {
	case KindTCBInfo:
		return "TCB info " + k.TEE + "/" + k.FMSPC
	case KindQEIdentity:
		return "QE identity " + k.TEE
	case KindPCKCRL:
		return "PCK CRL " + k.CA
	case KindRootCACRL:
		return "root CA CRL"
	}
	return "document " + string(k.Kind)
}

// Normalize checks a key and returns it in canonical form: TEE and CA in
// lower case, FMSPC in upper case, unused fields cleared.
func (k Key) Normalize() (Key, error) {
	bad := func(format string, args ...any) (Key, error) {
		return Key{}, &Error{Reason: ErrBadRequest, Detail: fmt.Sprintf(format, args...)}
	}
	tee, err := normTEE(k.TEE)
	switch k.Kind {
	case KindTCBInfo:
		if err != nil {
			return Key{}, err
		}
		f := strings.ToUpper(k.FMSPC)
		if _, herr := hex.DecodeString(f); herr != nil || len(f) != 12 {
			return bad("FMSPC %q is not 12 hex digits", k.FMSPC)
		}
		return Key{Kind: k.Kind, TEE: tee, FMSPC: f}, nil
	case KindQEIdentity:
		if err != nil {
			return Key{}, err
		}
		return Key{Kind: k.Kind, TEE: tee}, nil
	case KindPCKCRL:
		ca, err := normCA(k.CA)
		if err != nil {
			return Key{}, err
		}
		return Key{Kind: k.Kind, CA: ca}, nil
	case KindRootCACRL:
		return Key{Kind: k.Kind}, nil
	}
	return bad("unknown document kind %q", k.Kind)
}

func normTEE(tee string) (string, error) {
	t := strings.ToLower(tee)
	if t != TEESGX && t != TEETDX {
		return "", &Error{Reason: ErrBadRequest, Detail: fmt.Sprintf("TEE %q, want sgx or tdx", tee)}
	}
	return t, nil
}

func normCA(ca string) (string, error) {
	c := strings.ToLower(ca)
	if c != CAProcessor && c != CAPlatform {
		return "", &Error{Reason: ErrBadRequest, Detail: fmt.Sprintf("PCK CA %q, want processor or platform", ca)}
	}
	return c, nil
}

// want is what a document of this key must be.
func (k Key) want() Want { return Want{TEE: k.TEE, FMSPC: k.FMSPC, CA: k.CA} }

// Path is the document's file in a bundle directory, slash-separated.
func (k Key) Path() string {
	switch k.Kind {
	case KindTCBInfo:
		return path.Join("tcb", k.TEE, k.FMSPC+".json")
	case KindQEIdentity:
		return path.Join("qe", k.TEE+".json")
	case KindPCKCRL:
		return path.Join("crl", k.CA+".json")
	case KindRootCACRL:
		return path.Join("crl", "root.json")
	}
	return ""
}

// keyFromPath is the inverse of Path; ok is false for other files.
func keyFromPath(p string) (Key, bool) {
	dir, file := path.Split(p)
	name, ok := strings.CutSuffix(file, ".json")
	if !ok {
		return Key{}, false
	}
	var k Key
	switch {
	case dir == "tcb/sgx/" || dir == "tcb/tdx/":
		k = TCBInfoKey(dir[4:7], name)
	case dir == "qe/":
		k = QEIdentityKey(name)
	case dir == "crl/" && name == "root":
		k = RootCACRLKey()
	case dir == "crl/":
		k = PCKCRLKey(name)
	default:
		return Key{}, false
	}
	n, err := k.Normalize()
	if err != nil || n.Path() != p {
		return Key{}, false
	}
	return n, true
}

// collateralKeys are the four documents of a quote's collateral.
func collateralKeys(tee, fmspc, ca string) ([4]Key, error) {
	var ks [4]Key
	var err error
	for i, k := range [4]Key{TCBInfoKey(tee, fmspc), QEIdentityKey(tee), PCKCRLKey(ca), RootCACRLKey()} {
		if ks[i], err = k.Normalize(); err != nil {
			return ks, err
		}
	}
	return ks, nil
}
