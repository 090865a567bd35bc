package dcap

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
)

// OIDSGXExtensions is the PCK certificate's Intel SGX extension
// (SGX PCK Certificate and CRL Profile, section 1.5).
var OIDSGXExtensions = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}

var (
	oidPPID       = sgxOID(1)
	oidTCB        = sgxOID(2)
	oidPCEID      = sgxOID(3)
	oidFMSPC      = sgxOID(4)
	oidSGXType    = sgxOID(5)
	oidPlatformID = sgxOID(6)
	oidConfig     = sgxOID(7)
)

func sgxOID(tail ...int) asn1.ObjectIdentifier {
	return append(append(asn1.ObjectIdentifier{}, OIDSGXExtensions...), tail...)
}

// PCKExtensions are the SGX extension values of a PCK certificate.
type PCKExtensions struct {
	PPID    []byte
	CompSVN [16]uint8 // SGX TCB components 1..16
	PCESVN  uint16
	CPUSVN  []byte
	PCEID   [2]byte
	FMSPC   [6]byte
	// SGXType is 0 (Standard), 1 (Scalable) or 2 (Scalable with integrity).
	SGXType            int
	PlatformInstanceID []byte
}

// clone returns a deep copy: callers get copies of what the verifier
// caches.
func (e *PCKExtensions) clone() *PCKExtensions {
	c := *e
	c.PPID, c.CPUSVN, c.PlatformInstanceID = bytes.Clone(e.PPID), bytes.Clone(e.CPUSVN), bytes.Clone(e.PlatformInstanceID)
	return &c
}

// FMSPCHex returns the FMSPC as upper-case hex, as TCB info writes it.
func (e *PCKExtensions) FMSPCHex() string { return strings.ToUpper(hex.EncodeToString(e.FMSPC[:])) }

// PCEIDHex returns the PCE ID as upper-case hex.
func (e *PCKExtensions) PCEIDHex() string { return strings.ToUpper(hex.EncodeToString(e.PCEID[:])) }

// ParsePCKExtensions reads the SGX extension of a PCK certificate.
func ParsePCKExtensions(cert *x509.Certificate) (*PCKExtensions, error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(OIDSGXExtensions) {
			return parseSGXExtension(ext.Value)
		}
	}
	return nil, &FormatError{Field: "pck_certificate", Msg: "no SGX extension (1.2.840.113741.1.13.1)"}
}

// The SGX extension is read with a small DER reader: it is parsed for
// every new platform, and encoding/asn1's reflection was a tenth of that
// path. It accepts a subset of what encoding/asn1 accepts, with the same
// values (FuzzSGXExtensionMatchesASN1 checks both).

// derElem reads one DER element with a one-byte tag and a minimal
// definite length.
func derElem(b []byte) (tag byte, content, rest []byte, ok bool) {
	if len(b) < 2 || b[0]&0x1f == 0x1f {
		return 0, nil, nil, false
	}
	tag, n, off := b[0], int(b[1]), 2
	switch {
	case n < 0x80:
	case n == 0x81:
		if len(b) < 3 || b[2] < 0x80 {
			return 0, nil, nil, false
		}
		n, off = int(b[2]), 3
	case n == 0x82:
		if len(b) < 4 || b[2] == 0 {
			return 0, nil, nil, false
		}
		n, off = int(b[2])<<8|int(b[3]), 4
	default:
		return 0, nil, nil, false
	}
	if len(b)-off < n {
		return 0, nil, nil, false
	}
	return tag, b[off : off+n], b[off+n:], true
}

const (
	derInteger    = 0x02
	derOctets     = 0x04
	derOID        = 0x06
	derEnumerated = 0x0a
	derSequence   = 0x30
)

// validOID reports whether an OBJECT IDENTIFIER's content is well formed
// as encoding/asn1 reads it: base-128 arcs, minimally encoded, each at most
// 5 bytes and 2^31-1, the last one ended.
func validOID(b []byte) bool {
	if len(b) == 0 || b[len(b)-1]&0x80 != 0 {
		return false
	}
	n, v := 0, int64(0)
	for _, c := range b {
		if n == 0 && c == 0x80 {
			return false
		}
		if n++; n > 5 {
			return false
		}
		if v = v<<7 | int64(c&0x7f); v > math.MaxInt32 {
			return false
		}
		if c&0x80 == 0 {
			n, v = 0, 0
		}
	}
	return true
}

// derInt reads a minimally encoded two's-complement INTEGER (or
// ENUMERATED) of at most 8 bytes.
func derInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 8 || len(b) > 1 && (b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 != 0) {
		return 0, false
	}
	v := int64(int8(b[0]))
	for _, c := range b[1:] {
		v = v<<8 | int64(c)
	}
	return v, true
}

// oidContent is the DER content of an OID.
func oidContent(oid asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(oid)
	if err != nil {
		panic(err) // constant OIDs
	}
	_, c, _, _ := derElem(b)
	return c
}

var (
	oidPPIDDER       = oidContent(oidPPID)
	oidTCBDER        = oidContent(oidTCB)
	oidPCEIDDER      = oidContent(oidPCEID)
	oidFMSPCDER      = oidContent(oidFMSPC)
	oidSGXTypeDER    = oidContent(oidSGXType)
	oidPlatformIDDER = oidContent(oidPlatformID)
	oidConfigDER     = oidContent(oidConfig)
)

func parseSGXExtension(der []byte) (*PCKExtensions, error) {
	bad := func(field, msg string) error {
		return &FormatError{Field: "pck_certificate.sgx_extension" + field, Msg: msg}
	}
	tag, items, rest, ok := derElem(der)
	if !ok || tag != derSequence {
		return nil, bad("", "not a DER SEQUENCE")
	}
	if len(rest) != 0 {
		return nil, bad("", "trailing bytes")
	}
	e := &PCKExtensions{}
	var seenTCB, seenPCEID, seenFMSPC bool
	var seen [][]byte
	octets := func(tag byte, v []byte, field string, n int) ([]byte, error) {
		if tag != derOctets {
			return nil, bad("."+field, "not an OCTET STRING")
		}
		if n > 0 && len(v) != n {
			return nil, bad("."+field, fmt.Sprintf("%d bytes, want %d", len(v), n))
		}
		return bytes.Clone(v), nil
	}
	for len(items) > 0 {
		var it []byte
		if tag, it, items, ok = derElem(items); !ok || tag != derSequence {
			return nil, bad("", "an item is not a DER SEQUENCE")
		}
		tag, oid, it, ok := derElem(it)
		if !ok || tag != derOID || !validOID(oid) {
			return nil, bad("", "an item without an OBJECT IDENTIFIER")
		}
		vtag, val, it, ok := derElem(it)
		if !ok || len(it) != 0 {
			return nil, bad("", "an item is not one OBJECT IDENTIFIER and one value")
		}
		for _, s := range seen {
			if bytes.Equal(s, oid) {
				return nil, bad("", "an item appears twice")
			}
		}
		seen = append(seen, oid)
		var err error
		switch {
		case bytes.Equal(oid, oidPPIDDER):
			e.PPID, err = octets(vtag, val, "ppid", 16)
		case bytes.Equal(oid, oidTCBDER):
			seenTCB = true
			if vtag != derSequence {
				return nil, bad(".tcb", "not a SEQUENCE")
			}
			err = parseTCBExt(val, e)
		case bytes.Equal(oid, oidPCEIDDER):
			seenPCEID = true
			var b []byte
			if b, err = octets(vtag, val, "pceid", 2); err == nil {
				copy(e.PCEID[:], b)
			}
		case bytes.Equal(oid, oidFMSPCDER):
			seenFMSPC = true
			var b []byte
			if b, err = octets(vtag, val, "fmspc", 6); err == nil {
				copy(e.FMSPC[:], b)
			}
		case bytes.Equal(oid, oidSGXTypeDER):
			t, ok := derInt(val)
			if vtag != derEnumerated || !ok || t != int64(int32(t)) {
				return nil, bad(".sgx_type", "not an ENUMERATED")
			}
			e.SGXType = int(t)
		case bytes.Equal(oid, oidPlatformIDDER):
			e.PlatformInstanceID, err = octets(vtag, val, "platform_instance_id", 0)
		case bytes.Equal(oid, oidConfigDER):
			// Configuration (dynamic platform, cached keys, SMT): not
			// used by verification.
		}
		if err != nil {
			return nil, err
		}
	}
	for _, need := range []struct {
		seen bool
		name string
	}{{seenTCB, "tcb"}, {seenPCEID, "pceid"}, {seenFMSPC, "fmspc"}} {
		if !need.seen {
			return nil, bad("."+need.name, "missing")
		}
	}
	return e, nil
}

// parseTCBExt reads the TCB item's components: 16 SVNs, the PCESVN and
// the CPUSVN, each a SEQUENCE of its OID (the TCB OID and one more arc)
// and a value.
func parseTCBExt(comps []byte, e *PCKExtensions) error {
	bad := func(msg string) error {
		return &FormatError{Field: "pck_certificate.sgx_extension.tcb", Msg: msg}
	}
	var seen [19]bool
	for len(comps) > 0 {
		tag, it, rest, ok := derElem(comps)
		if !ok || tag != derSequence {
			return bad("a component is not a SEQUENCE")
		}
		comps = rest
		tag, oid, it, ok := derElem(it)
		if !ok || tag != derOID || !validOID(oid) {
			return bad("a component without an OBJECT IDENTIFIER")
		}
		vtag, val, it, ok := derElem(it)
		if !ok || len(it) != 0 {
			return bad("a component is not one OBJECT IDENTIFIER and one value")
		}
		if len(oid) != len(oidTCBDER)+1 || !bytes.Equal(oid[:len(oidTCBDER)], oidTCBDER) {
			return bad("unexpected component")
		}
		n := int(oid[len(oidTCBDER)])
		if n < 1 || n > 18 {
			return bad(fmt.Sprintf("unexpected component %d", n))
		}
		if seen[n] {
			return bad(fmt.Sprintf("component %d appears twice", n))
		}
		seen[n] = true
		v, isInt := derInt(val)
		isInt = isInt && vtag == derInteger
		switch {
		case n <= 16:
			if !isInt || v < 0 || v > 255 {
				return bad(fmt.Sprintf("component %d SVN is not an integer 0..255", n))
			}
			e.CompSVN[n-1] = uint8(v)
		case n == 17:
			if !isInt || v < 0 || v > 65535 {
				return bad("PCESVN is not an integer 0..65535")
			}
			e.PCESVN = uint16(v)
		case n == 18:
			if vtag != derOctets || len(val) != 16 {
				return bad("CPUSVN is not 16 bytes")
			}
			e.CPUSVN = bytes.Clone(val)
		}
	}
	for n := 1; n <= 17; n++ {
		if !seen[n] {
			return bad(fmt.Sprintf("component %d missing", n))
		}
	}
	return nil
}
