package sim

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/asps-project/asps/dcap"
)

// oidSGXExtensions is Intel's SGX extension of PCK certificates.
var oidSGXExtensions = dcap.OIDSGXExtensions

func sgxOID(tail ...int) asn1.ObjectIdentifier {
	return append(append(asn1.ObjectIdentifier{}, oidSGXExtensions...), tail...)
}

// PCKCA names the Intel CA that issues a PCK certificate.
type PCKCA string

// The PCK CAs. Intel's Processor CA certifies single-package platforms
// (most SGX client and E3 parts); the Platform CA certifies multi-package
// platforms (Xeon Scalable, every TDX platform), whose PCK certificates
// also carry the platform instance ID and configuration.
const (
	CAProcessor PCKCA = "processor"
	CAPlatform  PCKCA = "platform"
)

// PCKValues are the SGX extension values of a PCK certificate (Intel's
// "SGX PCK Certificate and CRL Profile", section 1.5).
type PCKValues struct {
	PPID    [16]byte
	CompSVN [16]uint8 // SGX TCB components 1..16
	PCESVN  uint16
	CPUSVN  [16]byte
	PCEID   [2]byte
	FMSPC   [6]byte
	// SGXType is 0 (Standard), 1 (Scalable) or 2 (Scalable with
	// integrity).
	SGXType int
	// Platform adds what only Platform CA certificates carry: the
	// platform instance ID and the configuration.
	Platform           bool
	PlatformInstanceID [16]byte
	DynamicPlatform    bool
	CachedKeys         bool
	SMTEnabled         bool
}

type sgxItem struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

func rawOf(v any, params string) (asn1.RawValue, error) {
	b, err := asn1.MarshalWithParams(v, params)
	if err != nil {
		return asn1.RawValue{}, fmt.Errorf("sim: SGX extension: %w", err)
	}
	return asn1.RawValue{FullBytes: b}, nil
}

// EncodePCKExtension encodes the SGX extension (1.2.840.113741.1.13.1) as
// Intel does: a SEQUENCE of SEQUENCE { OID, value }.
func EncodePCKExtension(v PCKValues) ([]byte, error) {
	var items []sgxItem
	add := func(oid asn1.ObjectIdentifier, val any, params string) error {
		r, err := rawOf(val, params)
		if err != nil {
			return fmt.Errorf("sim: SGX extension %s: %w", oid, err)
		}
		items = append(items, sgxItem{ID: oid, Value: r})
		return nil
	}
	if err := add(sgxOID(1), v.PPID[:], ""); err != nil {
		return nil, err
	}
	var tcb []sgxItem
	for i := range 16 {
		r, err := rawOf(int(v.CompSVN[i]), "")
		if err != nil {
			return nil, err
		}
		tcb = append(tcb, sgxItem{ID: sgxOID(2, i+1), Value: r})
	}
	r, err := rawOf(int(v.PCESVN), "")
	if err != nil {
		return nil, err
	}
	tcb = append(tcb, sgxItem{ID: sgxOID(2, 17), Value: r})
	if r, err = rawOf(v.CPUSVN[:], ""); err != nil {
		return nil, err
	}
	tcb = append(tcb, sgxItem{ID: sgxOID(2, 18), Value: r})
	if err := add(sgxOID(2), tcb, ""); err != nil {
		return nil, err
	}
	if err := add(sgxOID(3), v.PCEID[:], ""); err != nil {
		return nil, err
	}
	if err := add(sgxOID(4), v.FMSPC[:], ""); err != nil {
		return nil, err
	}
	if err := add(sgxOID(5), asn1.Enumerated(v.SGXType), ""); err != nil {
		return nil, err
	}
	if v.Platform {
		if err := add(sgxOID(6), v.PlatformInstanceID[:], ""); err != nil {
			return nil, err
		}
		var conf []sgxItem
		for i, b := range []bool{v.DynamicPlatform, v.CachedKeys, v.SMTEnabled} {
			r, err := rawOf(b, "")
			if err != nil {
				return nil, err
			}
			conf = append(conf, sgxItem{ID: sgxOID(7, i+1), Value: r})
		}
		if err := add(sgxOID(7), conf, ""); err != nil {
			return nil, err
		}
	}
	b, err := asn1.Marshal(items)
	if err != nil {
		return nil, fmt.Errorf("sim: SGX extension: %w", err)
	}
	return b, nil
}

// platform is one simulated machine: its PCK certificate and key, its
// quoting enclave and its attestation key. It depends on the options, not
// on the report data, so an attester makes it once.
type platform struct {
	tee      string
	ca       PCKCA
	caCert   *x509.Certificate
	caKey    *ecdsa.PrivateKey
	root     *x509.Certificate
	pck      *x509.Certificate
	pckKey   *ecdsa.PrivateKey
	values   PCKValues
	attKey   *ecdsa.PrivateKey
	qeSVN    uint16
	qeReport []byte // 384 bytes
	qeSig    [64]byte
	authData []byte
	chainPEM []byte // PCK, PCK CA, root
	// teeTCBSVN is the TDX TEE_TCB_SVN that lands on the chosen level.
	teeTCBSVN [16]byte
	qeID      [16]byte
}

// issuePCK issues the platform's PCK certificate.
func (p *PKI) issuePCK(ca PCKCA, v PCKValues, caCert *x509.Certificate, caKey *ecdsa.PrivateKey, key *ecdsa.PublicKey, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	ext, err := EncodePCKExtension(v)
	if err != nil {
		return nil, err
	}
	// The serial depends on everything the certificate says, so two
	// different PCK certificates never share one.
	h := sha256.New()
	h.Write(ext)
	fmt.Fprintf(h, "%s|%d|%d", ca, notBefore.Unix(), notAfter.Unix())
	return issue(certSpec{
		cn: PCKCN, serial: p.serial("pck/" + hex.EncodeToString(h.Sum(nil))), key: key,
		notBefore: notBefore, notAfter: notAfter,
		crlURL: crlBase + "pckcrl?ca=" + string(ca) + "&encoding=der",
		sgxExt: ext,
	}, caCert, caKey)
}
