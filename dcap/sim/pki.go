package sim

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultSeed seeds the PKI that DefaultPKI returns. Everyone who uses it
// gets the same simulator root: it is a test fixture, never a secret.
const DefaultSeed = "asps simulator default seed v1"

// Simulator subject names. They have the shape of Intel's (CN, O, L, ST, C)
// but say "asps simulator" so that nobody mistakes them for Intel's.
const (
	RootCN        = "asps simulator SGX Root CA"
	PlatformCACN  = "asps simulator SGX PCK Platform CA"
	ProcessorCACN = "asps simulator SGX PCK Processor CA"
	PCKCN         = "asps simulator SGX PCK Certificate"
	TCBSigningCN  = "asps simulator SGX TCB Signing"
	Organization  = "asps simulator (not Intel Corporation)"
)

// Fixed validity of the CA-level certificates, so that a PKI made from a
// seed is the same, byte for byte, every time it is made.
var (
	caNotBefore = time.Date(2018, 5, 21, 10, 45, 10, 0, time.UTC)
	caNotAfter  = time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)
	// PCK certificates: the platform's, fixed too unless a case expires it.
	pckNotBefore = time.Date(2024, 1, 23, 18, 9, 41, 0, time.UTC)
	pckNotAfter  = time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)
)

// PKI is the simulator's test PKI: a root CA, the two PCK CAs and the TCB
// signing certificate, shaped like Intel's. Build it from a seed (NewPKI) or
// load it from a directory (LoadPKI); per-platform keys (PCK, attestation
// key) are derived from the root key, so a saved and reloaded PKI makes the
// same quotes as the original.
type PKI struct {
	Root        *x509.Certificate
	PlatformCA  *x509.Certificate
	ProcessorCA *x509.Certificate
	TCBSigning  *x509.Certificate

	rootKey, platformKey, processorKey, tcbKey *ecdsa.PrivateKey
	// secret derives every per-platform key and serial number.
	secret []byte
}

// NewPKI makes a PKI deterministically from seed: the same seed gives the
// same keys and the same certificates.
func NewPKI(seed []byte) (*PKI, error) {
	if len(seed) == 0 {
		return nil, errors.New("sim: empty PKI seed")
	}
	p := &PKI{}
	var err error
	for _, k := range []struct {
		dst   **ecdsa.PrivateKey
		label string
	}{{&p.rootKey, "root-ca"}, {&p.platformKey, "platform-ca"}, {&p.processorKey, "processor-ca"}, {&p.tcbKey, "tcb-signing"}} {
		if *k.dst, err = deriveKey(seed, k.label); err != nil {
			return nil, err
		}
	}
	if err := p.init(); err != nil {
		return nil, err
	}
	if p.Root, err = p.issueRoot(caNotBefore, caNotAfter); err != nil {
		return nil, err
	}
	if p.PlatformCA, err = p.issueCA(PlatformCACN, "platform", p.platformKey, caNotBefore, caNotAfter); err != nil {
		return nil, err
	}
	if p.ProcessorCA, err = p.issueCA(ProcessorCACN, "processor", p.processorKey, caNotBefore, caNotAfter); err != nil {
		return nil, err
	}
	if p.TCBSigning, err = p.issueTCBSigning(caNotBefore, caNotAfter); err != nil {
		return nil, err
	}
	return p, nil
}

var (
	defaultPKI    *PKI
	defaultPKIErr error
	defaultOnce   sync.Once
)

// DefaultPKI returns the PKI made from DefaultSeed (made once per process).
func DefaultPKI() (*PKI, error) {
	defaultOnce.Do(func() { defaultPKI, defaultPKIErr = NewPKI([]byte(DefaultSeed)) })
	return defaultPKI, defaultPKIErr
}

// init derives the secret from the root key.
func (p *PKI) init() error {
	raw, err := p.rootKey.Bytes()
	if err != nil {
		return fmt.Errorf("sim: root key: %w", err)
	}
	h := sha256.New()
	h.Write([]byte("asps simulator platform secret v1\x00"))
	h.Write(raw)
	p.secret = h.Sum(nil)
	return nil
}

// RootPEM returns the root CA certificate in PEM.
func (p *PKI) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.Raw})
}

// pckCA returns the PCK CA certificate and key of the given kind.
func (p *PKI) pckCA(kind PCKCA) (*x509.Certificate, *ecdsa.PrivateKey) {
	if kind == CAPlatform {
		return p.PlatformCA, p.platformKey
	}
	return p.ProcessorCA, p.processorKey
}

// deriveKey derives a P-256 key from secret and label: HKDF-SHA-256 gives
// 32 bytes, taken as the private scalar when it is in [1, n-1] (almost
// always; otherwise the next counter is tried). crypto/ecdsa.GenerateKey
// ignores its reader since Go 1.26, so determinism needs this.
func deriveKey(secret []byte, label string) (*ecdsa.PrivateKey, error) {
	n := elliptic.P256().Params().N
	for ctr := range 16 {
		d, err := hkdf.Key(sha256.New, secret, []byte("asps-sim-key-v1"), fmt.Sprintf("%s/%d", label, ctr), 32)
		if err != nil {
			return nil, fmt.Errorf("sim: derive key %s: %w", label, err)
		}
		if v := new(big.Int).SetBytes(d); v.Sign() == 0 || v.Cmp(n) >= 0 {
			continue
		}
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		if err != nil {
			return nil, fmt.Errorf("sim: derive key %s: %w", label, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("sim: derive key %s: no valid scalar", label)
}

// derive returns n (at most 32) deterministic bytes for label:
// HMAC-SHA-256 keyed with the PKI's secret.
func (p *PKI) derive(label string, n int) []byte {
	m := hmac.New(sha256.New, p.secret)
	m.Write([]byte("asps-sim-bytes-v1\x00"))
	m.Write([]byte(label))
	return m.Sum(nil)[:min(n, sha256.Size)]
}

// serial returns a positive 20-byte certificate serial number for label.
func (p *PKI) serial(label string) *big.Int {
	b := p.derive("serial/"+label, 20)
	b[0] = b[0]&0x7f | 0x01
	return new(big.Int).SetBytes(b)
}

// Certificate building. Names and extensions are encoded by hand so that
// their order is Intel's: subject CN, O, L, ST as UTF8Strings and C as a
// PrintableString;
// extensions AKI, CRL distribution points, SKI, key usage, basic
// constraints, then the SGX extension.

var (
	oidCN                 = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO                  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidL                  = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidST                 = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidC                  = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidExtAKI             = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtCRLDP           = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidExtSKI             = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidExtKeyUsage        = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtBasicConstraint = asn1.ObjectIdentifier{2, 5, 29, 19}
)

type atv struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

func rawName(cn string) ([]byte, error) {
	var rdns [][]atv
	for _, a := range []struct {
		oid asn1.ObjectIdentifier
		v   string
	}{{oidCN, cn}, {oidO, Organization}, {oidL, "Santa Clara"}, {oidST, "CA"}, {oidC, "US"}} {
		tag := asn1.TagUTF8String
		if a.oid.Equal(oidC) {
			tag = asn1.TagPrintableString // countryName is a PrintableString (RFC 5280), in Intel's too
		}
		rdns = append(rdns, []atv{{Type: a.oid, Value: asn1.RawValue{Tag: tag, Bytes: []byte(a.v)}}})
	}
	type rdnSet []atv
	seq := make([]asn1.RawValue, 0, len(rdns))
	for _, r := range rdns {
		b, err := asn1.MarshalWithParams(rdnSet(r), "set")
		if err != nil {
			return nil, err
		}
		seq = append(seq, asn1.RawValue{FullBytes: b})
	}
	return asn1.Marshal(seq)
}

func keyID(k *ecdsa.PublicKey) ([]byte, error) {
	pt, err := k.Bytes()
	if err != nil {
		return nil, err
	}
	s := sha256.Sum256(pt)
	return s[:20], nil
}

type certSpec struct {
	cn        string
	serial    *big.Int
	key       *ecdsa.PublicKey
	notBefore time.Time
	notAfter  time.Time
	ca        bool
	pathLen   int  // for a CA
	crlSign   bool // key usage: cRLSign and keyCertSign (CA) or digitalSignature, nonRepudiation
	crlURL    string
	sgxExt    []byte // the SGX extension's DER value, for a PCK certificate
}

// issue creates a certificate from spec, signed by parent's key (parent nil:
// self-signed).
func issue(spec certSpec, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, error) {
	subject, err := rawName(spec.cn)
	if err != nil {
		return nil, fmt.Errorf("sim: %s subject: %w", spec.cn, err)
	}
	ski, err := keyID(spec.key)
	if err != nil {
		return nil, fmt.Errorf("sim: %s key: %w", spec.cn, err)
	}
	aki := ski
	if parent != nil {
		aki = parent.SubjectKeyId
	}
	type akiSeq struct {
		ID []byte `asn1:"optional,tag:0"`
	}
	akiDER, err := asn1.Marshal(akiSeq{ID: aki})
	if err != nil {
		return nil, fmt.Errorf("sim: %s extensions: %w", spec.cn, err)
	}
	// CRLDistributionPoints ::= SEQUENCE OF DistributionPoint {
	//   distributionPoint [0] { fullName [0] GeneralNames { [6] URI } } }
	uri, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(spec.crlURL)})
	if err != nil {
		return nil, fmt.Errorf("sim: %s extensions: %w", spec.cn, err)
	}
	fullName, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: uri})
	if err != nil {
		return nil, fmt.Errorf("sim: %s extensions: %w", spec.cn, err)
	}
	dpName, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: fullName})
	if err != nil {
		return nil, fmt.Errorf("sim: %s extensions: %w", spec.cn, err)
	}
	dp, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: dpName})
	if err != nil {
		return nil, fmt.Errorf("sim: %s extensions: %w", spec.cn, err)
	}
	crldp, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: dp})
	if err != nil {
		return nil, fmt.Errorf("sim: %s extensions: %w", spec.cn, err)
	}
	skiDER, err := asn1.Marshal(ski)
	if err != nil {
		return nil, fmt.Errorf("sim: %s extensions: %w", spec.cn, err)
	}
	var ku asn1.BitString
	if spec.crlSign {
		// keyCertSign (5), cRLSign (6): Intel's 03 02 01 06.
		ku = asn1.BitString{Bytes: []byte{0x06}, BitLength: 7}
	} else {
		// digitalSignature (0), nonRepudiation (1): Intel's 03 02 06 C0.
		ku = asn1.BitString{Bytes: []byte{0xc0}, BitLength: 2}
	}
	kuDER, err := asn1.Marshal(ku)
	if err != nil {
		return nil, fmt.Errorf("sim: %s extensions: %w", spec.cn, err)
	}
	var bcDER []byte
	if spec.ca {
		bcDER, err = asn1.Marshal(struct {
			CA      bool
			PathLen int
		}{true, spec.pathLen})
	} else {
		bcDER, err = asn1.Marshal(struct {
			CA bool `asn1:"optional"`
		}{})
	}
	if err != nil {
		return nil, fmt.Errorf("sim: %s extensions: %w", spec.cn, err)
	}
	exts := []pkix.Extension{
		{Id: oidExtAKI, Value: akiDER},
		{Id: oidExtCRLDP, Value: crldp},
		{Id: oidExtSKI, Value: skiDER},
		{Id: oidExtKeyUsage, Critical: true, Value: kuDER},
		{Id: oidExtBasicConstraint, Critical: true, Value: bcDER},
	}
	if spec.sgxExt != nil {
		exts = append(exts, pkix.Extension{Id: oidSGXExtensions, Value: spec.sgxExt})
	}
	tmpl := &x509.Certificate{
		SerialNumber:       spec.serial,
		RawSubject:         subject,
		NotBefore:          spec.notBefore,
		NotAfter:           spec.notAfter,
		SignatureAlgorithm: x509.ECDSAWithSHA256,
		ExtraExtensions:    exts,
	}
	signer := parentKey
	if parent == nil {
		parent = tmpl
	}
	// A nil reader makes ECDSA signatures deterministic (RFC 6979), so the
	// same seed gives the same certificate bytes.
	der, err := x509.CreateCertificate(nil, tmpl, parent, spec.key, crypto.Signer(signer))
	if err != nil {
		return nil, fmt.Errorf("sim: issue %s: %w", spec.cn, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sim: parse %s: %w", spec.cn, err)
	}
	return c, nil
}

const crlBase = "https://sim.asps.invalid/sgx/certification/v4/"

func (p *PKI) issueRoot(notBefore, notAfter time.Time) (*x509.Certificate, error) {
	return issue(certSpec{
		cn: RootCN, serial: p.serial("root-ca"), key: &p.rootKey.PublicKey,
		notBefore: notBefore, notAfter: notAfter, ca: true, pathLen: 1, crlSign: true,
		crlURL: "https://sim.asps.invalid/SimSGXRootCA.der",
	}, nil, p.rootKey)
}

func (p *PKI) issueCA(cn, kind string, key *ecdsa.PrivateKey, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	return issue(certSpec{
		cn: cn, serial: p.serial(kind + "-ca"), key: &key.PublicKey,
		notBefore: notBefore, notAfter: notAfter, ca: true, pathLen: 0, crlSign: true,
		crlURL: "https://sim.asps.invalid/SimSGXRootCA.der",
	}, p.Root, p.rootKey)
}

func (p *PKI) issueTCBSigning(notBefore, notAfter time.Time) (*x509.Certificate, error) {
	return issue(certSpec{
		cn: TCBSigningCN, serial: p.serial("tcb-signing"), key: &p.tcbKey.PublicKey,
		notBefore: notBefore, notAfter: notAfter,
		crlURL: "https://sim.asps.invalid/SimSGXRootCA.der",
	}, p.Root, p.rootKey)
}

// Saving and loading: DIR/root.pem, root.key, platform-ca.pem,
// platform-ca.key, processor-ca.pem, processor-ca.key, tcb-signing.pem,
// tcb-signing.key. Keys are PKCS #8 in PEM, mode 0600.

type pkiFile struct {
	name string
	cert **x509.Certificate
	key  **ecdsa.PrivateKey
}

func (p *PKI) files() []pkiFile {
	return []pkiFile{
		{"root", &p.Root, &p.rootKey},
		{"platform-ca", &p.PlatformCA, &p.platformKey},
		{"processor-ca", &p.ProcessorCA, &p.processorKey},
		{"tcb-signing", &p.TCBSigning, &p.tcbKey},
	}
}

// Save writes the PKI to dir (created if missing).
func (p *PKI) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sim: save PKI: %w", err)
	}
	for _, f := range p.files() {
		der, err := x509.MarshalPKCS8PrivateKey(*f.key)
		if err != nil {
			return fmt.Errorf("sim: save PKI: %s key: %w", f.name, err)
		}
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: (*f.cert).Raw})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.WriteFile(filepath.Join(dir, f.name+".pem"), certPEM, 0o644); err != nil {
			return fmt.Errorf("sim: save PKI: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name+".key"), keyPEM, 0o600); err != nil {
			return fmt.Errorf("sim: save PKI: %w", err)
		}
	}
	return nil
}

// LoadPKI reads a PKI that Save wrote, and checks that each certificate
// matches its key and is issued by the root.
func LoadPKI(dir string) (*PKI, error) {
	p := &PKI{}
	for _, f := range p.files() {
		cb, err := os.ReadFile(filepath.Join(dir, f.name+".pem"))
		if err != nil {
			return nil, fmt.Errorf("sim: load PKI: %w", err)
		}
		blk, _ := pem.Decode(cb)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("sim: load PKI: %s.pem: no PEM certificate", f.name)
		}
		if *f.cert, err = x509.ParseCertificate(blk.Bytes); err != nil {
			return nil, fmt.Errorf("sim: load PKI: %s.pem: %w", f.name, err)
		}
		kb, err := os.ReadFile(filepath.Join(dir, f.name+".key"))
		if err != nil {
			return nil, fmt.Errorf("sim: load PKI: %w", err)
		}
		blk, _ = pem.Decode(kb)
		if blk == nil {
			return nil, fmt.Errorf("sim: load PKI: %s.key: no PEM key", f.name)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("sim: load PKI: %s.key: %w", f.name, err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok || ek.Curve != elliptic.P256() {
			return nil, fmt.Errorf("sim: load PKI: %s.key is not an ECDSA P-256 key", f.name)
		}
		pub, ok := (*f.cert).PublicKey.(*ecdsa.PublicKey)
		if !ok || !pub.Equal(&ek.PublicKey) {
			return nil, fmt.Errorf("sim: load PKI: %s.key does not match %s.pem", f.name, f.name)
		}
		*f.key = ek
	}
	for _, f := range p.files() {
		if err := (*f.cert).CheckSignatureFrom(p.Root); err != nil {
			return nil, fmt.Errorf("sim: load PKI: %s.pem is not signed by root.pem: %w", f.name, err)
		}
	}
	if !bytes.Equal(p.PlatformCA.RawIssuer, p.Root.RawSubject) || !bytes.Equal(p.ProcessorCA.RawIssuer, p.Root.RawSubject) {
		return nil, errors.New("sim: load PKI: a PCK CA's issuer is not the root")
	}
	if err := p.init(); err != nil {
		return nil, err
	}
	return p, nil
}

// LoadOrCreatePKI loads the PKI in dir, or, when dir holds none, makes one
// from seed (a random seed if seed is empty) and saves it there. A dev
// server that restarts thus keeps its root.
func LoadOrCreatePKI(dir string, seed []byte) (*PKI, error) {
	if _, err := os.Stat(filepath.Join(dir, "root.pem")); err == nil {
		return LoadPKI(dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("sim: load PKI: %w", err)
	}
	if len(seed) == 0 {
		seed = make([]byte, 32)
		crand.Read(seed) // never fails (Go 1.24+)
	}
	p, err := NewPKI(seed)
	if err != nil {
		return nil, err
	}
	if err := p.Save(dir); err != nil {
		return nil, err
	}
	return p, nil
}
