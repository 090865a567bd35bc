package dcap

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
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

// FMSPCHex returns the FMSPC as upper-case hex, as TCB info writes it.
func (e *PCKExtensions) FMSPCHex() string { return strings.ToUpper(hex.EncodeToString(e.FMSPC[:])) }

// PCEIDHex returns the PCE ID as upper-case hex.
func (e *PCKExtensions) PCEIDHex() string { return strings.ToUpper(hex.EncodeToString(e.PCEID[:])) }

type oidValue struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

// ParsePCKExtensions reads the SGX extension of a PCK certificate.
func ParsePCKExtensions(cert *x509.Certificate) (*PCKExtensions, error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(OIDSGXExtensions) {
			return parseSGXExtension(ext.Value)
		}
	}
	return nil, &FormatError{Field: "pck_certificate", Msg: "no SGX extension (1.2.840.113741.1.13.1)"}
}

func parseSGXExtension(der []byte) (*PCKExtensions, error) {
	bad := func(field, msg string) error {
		return &FormatError{Field: "pck_certificate.sgx_extension." + field, Msg: msg}
	}
	var items []oidValue
	rest, err := asn1.Unmarshal(der, &items)
	if err != nil {
		return nil, bad("", err.Error())
	}
	if len(rest) != 0 {
		return nil, bad("", "trailing bytes")
	}
	e := &PCKExtensions{}
	var seen = map[string]bool{}
	octets := func(v asn1.RawValue, field string, n int) ([]byte, error) {
		var b []byte
		if _, err := asn1.Unmarshal(v.FullBytes, &b); err != nil {
			return nil, bad(field, err.Error())
		}
		if n > 0 && len(b) != n {
			return nil, bad(field, fmt.Sprintf("%d bytes, want %d", len(b), n))
		}
		return b, nil
	}
	for _, it := range items {
		key := it.ID.String()
		if seen[key] {
			return nil, bad(key, "appears twice")
		}
		seen[key] = true
		switch {
		case it.ID.Equal(oidPPID):
			if e.PPID, err = octets(it.Value, "ppid", 16); err != nil {
				return nil, err
			}
		case it.ID.Equal(oidTCB):
			if err := parseTCBExt(it.Value.FullBytes, e); err != nil {
				return nil, err
			}
		case it.ID.Equal(oidPCEID):
			b, err := octets(it.Value, "pceid", 2)
			if err != nil {
				return nil, err
			}
			copy(e.PCEID[:], b)
		case it.ID.Equal(oidFMSPC):
			b, err := octets(it.Value, "fmspc", 6)
			if err != nil {
				return nil, err
			}
			copy(e.FMSPC[:], b)
		case it.ID.Equal(oidSGXType):
			var t asn1.Enumerated
			if _, err := asn1.Unmarshal(it.Value.FullBytes, &t); err != nil {
				return nil, bad("sgx_type", err.Error())
			}
			e.SGXType = int(t)
		case it.ID.Equal(oidPlatformID):
			if e.PlatformInstanceID, err = octets(it.Value, "platform_instance_id", 0); err != nil {
				return nil, err
			}
		case it.ID.Equal(oidConfig):
			// Configuration (dynamic platform, cached keys, SMT): not
			// used by verification.
		}
	}
	for _, need := range []struct {
		oid  asn1.ObjectIdentifier
		name string
	}{{oidTCB, "tcb"}, {oidPCEID, "pceid"}, {oidFMSPC, "fmspc"}} {
		if !seen[need.oid.String()] {
			return nil, bad(need.name, "missing")
		}
	}
	return e, nil
}

func parseTCBExt(der []byte, e *PCKExtensions) error {
	bad := func(msg string) error {
		return &FormatError{Field: "pck_certificate.sgx_extension.tcb", Msg: msg}
	}
	var items []oidValue
	if _, err := asn1.Unmarshal(der, &items); err != nil {
		return bad(err.Error())
	}
	var seen [19]bool
	for _, it := range items {
		if len(it.ID) != len(oidTCB)+1 || !asn1.ObjectIdentifier(it.ID[:len(oidTCB)]).Equal(oidTCB) {
			return bad("unexpected component " + it.ID.String())
		}
		n := it.ID[len(oidTCB)]
		if n < 1 || n > 18 {
			return bad(fmt.Sprintf("unexpected component %d", n))
		}
		if seen[n] {
			return bad(fmt.Sprintf("component %d appears twice", n))
		}
		seen[n] = true
		switch {
		case n <= 16:
			var v int
			if _, err := asn1.Unmarshal(it.Value.FullBytes, &v); err != nil || v < 0 || v > 255 {
				return bad(fmt.Sprintf("component %d SVN is not an integer 0..255", n))
			}
			e.CompSVN[n-1] = uint8(v)
		case n == 17:
			var v int
			if _, err := asn1.Unmarshal(it.Value.FullBytes, &v); err != nil || v < 0 || v > 65535 {
				return bad("PCESVN is not an integer 0..65535")
			}
			e.PCESVN = uint16(v)
		case n == 18:
			var b []byte
			if _, err := asn1.Unmarshal(it.Value.FullBytes, &b); err != nil || len(b) != 16 {
				return bad("CPUSVN is not 16 bytes")
			}
			e.CPUSVN = b
		}
	}
	for n := 1; n <= 17; n++ {
		if !seen[n] {
			return bad(fmt.Sprintf("component %d missing", n))
		}
	}
	return nil
}
