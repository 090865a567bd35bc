package ratls

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"hash"
	"sort"

	"github.com/fxamacker/cbor/v2"
)

// Evidence extension OIDs, in the order verification looks for them.
var (
	// OIDTCGDICETaggedEvidence is tcg-dice-conceptual-message-wrapper
	// (formerly tcg-dice-tagged-evidence): tagged CBOR evidence.
	OIDTCGDICETaggedEvidence = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 9}
	// OIDGramineLegacy is the OID Gramine actually writes for its legacy
	// raw-quote extension: it meant 1.2.840.113741.1337.6 but puts the
	// encoded OID's tag and length bytes (06 09) into the value, which
	// reads as 0.6.9.42.840.113741.1337.6.
	OIDGramineLegacy = asn1.ObjectIdentifier{0, 6, 9, 42, 840, 113741, 1337, 6}
	// OIDGramineLegacyIntended is the OID Gramine's legacy extension was
	// meant to have; accepted on input.
	OIDGramineLegacyIntended = asn1.ObjectIdentifier{1, 2, 840, 113741, 1337, 6}
	// OIDSGXSDKQuote is where the Intel SGX SDK's RA-TLS puts the raw
	// quote. It is the same OID as the PCK certificate's SGX extensions;
	// in a self-signed RA-TLS certificate it carries a quote.
	OIDSGXSDKQuote = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}
	// OIDOcclumQuote is Occlum's raw-quote extension.
	OIDOcclumQuote = asn1.ObjectIdentifier{1, 2, 840, 113741, 1}
)

// Format names an evidence encoding.
type Format string

// Evidence formats.
const (
	FormatTCG     Format = "tcg-dice"       // CBOR-tagged evidence with claims
	FormatGramine Format = "gramine-legacy" // raw quote
	FormatSGXSDK  Format = "sgx-sdk-legacy" // raw quote
	FormatOcclum  Format = "occlum-legacy"  // raw quote
	formatNone    Format = ""
)

// evidenceOIDs lists the recognised extensions in priority order.
var evidenceOIDs = []struct {
	oid    asn1.ObjectIdentifier
	format Format
}{
	{OIDTCGDICETaggedEvidence, FormatTCG},
	{OIDGramineLegacy, FormatGramine},
	{OIDGramineLegacyIntended, FormatGramine},
	{OIDSGXSDKQuote, FormatSGXSDK},
	{OIDOcclumQuote, FormatOcclum},
}

func formatOf(oid asn1.ObjectIdentifier) (Format, int) {
	for i, e := range evidenceOIDs {
		if oid.Equal(e.oid) {
			return e.format, i
		}
	}
	return formatNone, -1
}

// CBOR tags of the CCC SGX/TDX evidence formats. Only the quote is
// verified; the report forms cannot be checked remotely.
const (
	TagIntelTEEQuote      uint64 = 60000 // SGX or TDX ECDSA quote
	TagIntelTEEReport     uint64 = 60001 // TDX report / SGX report type 2
	TagIntelSGXLegacyRept uint64 = 60002 // SGX EREPORT
)

// Hash algorithm identifiers of the IANA "Named Information Hash Algorithm"
// registry, as used in a CoSWID hash-entry.
const (
	HashSHA256 = 1
	HashSHA384 = 7
	HashSHA512 = 8
)

// DefaultMaxEvidenceSize caps an evidence extension (real ones are about
// 5 KB).
const DefaultMaxEvidenceSize = 64 << 10

// Claim names of the interoperable claims buffer.
const (
	ClaimPubkeyHash = "pubkey-hash"
	ClaimNonce      = "nonce"
	// ClaimRuntime is asps's claim naming what produced the quote
	// ("gramine", "occlum", "tdx-guest", "sim"). It is bound to the quote
	// through the claims buffer's hash, but it is the workload's own
	// statement: a measured workload can only say what its code says.
	ClaimRuntime = "runtime"
	// ClaimDomain is asps's domain-separation claim: it says what the
	// quote over this claims buffer is for. A workload whose other code
	// paths never quote a claims buffer with this claim cannot be turned
	// into a source of certificate evidence by them (see the policy's
	// "binding: tcg-labelled").
	ClaimDomain = "asps-domain"
)

// Values of ClaimDomain.
const (
	// DomainCertificate marks the evidence of an asps RA-TLS certificate.
	DomainCertificate = "asps-ratls-v1"
	// DomainSession marks session evidence: a quote over the TLS
	// exporter of one connection (see NewSessionEvidence).
	DomainSession = "asps-session-v1"
)

// Evidence is one evidence extension of a certificate, decoded but not
// verified.
type Evidence struct {
	OID      asn1.ObjectIdentifier
	Format   Format
	Critical bool
	// Value is the extension value (the content of extnValue).
	Value []byte
	// Quote is the quote the extension carries.
	Quote []byte

	// TCG format only.
	Tag          uint64 // the CBOR tag (60000)
	ClaimsBuffer []byte // the claims buffer the quote's report data hashes
	Claims       *EvidenceClaims
}

// EvidenceClaims are the custom claims of a claims buffer.
type EvidenceClaims struct {
	// Keys lists every claim name, sorted.
	Keys []string
	// PubkeyHashAlg and PubkeyHash are the "pubkey-hash" hash-entry; the
	// algorithm is zero when the claim is absent.
	PubkeyHashAlg uint64
	PubkeyHash    []byte
	// Nonce is the "nonce" claim, nil when absent.
	Nonce []byte
	// Runtime is the "runtime" claim, "" when absent.
	Runtime string
	// Domain is the "asps-domain" claim, "" when absent.
	Domain string
}

var decMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  16,
		MaxArrayElements: 1024,
		MaxMapPairs:      1024,
		TagsMd:           cbor.TagsAllowed,
	}.DecMode()
	if err != nil {
		panic(err) // static options
	}
	return dm
}()

var encMode = func() cbor.EncMode {
	em, err := cbor.EncOptions{Sort: cbor.SortCoreDeterministic, IndefLength: cbor.IndefLengthForbidden}.EncMode()
	if err != nil {
		panic(err) // static options
	}
	return em
}()

// FindEvidence returns every evidence extension of cert, in priority order
// (TCG first), decoding each. It stops at the first extension that does not
// decode or exceeds maxSize (DefaultMaxEvidenceSize when <= 0), returning
// what it found before it with the error. It returns ErrNoEvidence when
// there is none.
func FindEvidence(cert *x509.Certificate, maxSize int) ([]*Evidence, error) {
	type found struct {
		ext  pkix.Extension
		prio int
	}
	var exts []found
	for _, ext := range cert.Extensions {
		if _, prio := formatOf(ext.Id); prio >= 0 {
			exts = append(exts, found{ext, prio})
		}
	}
	if len(exts) == 0 {
		return nil, fail("find evidence", ErrNoEvidence, "none of the extensions %s", knownOIDs())
	}
	sort.SliceStable(exts, func(i, j int) bool { return exts[i].prio < exts[j].prio })
	var out []*Evidence
	for _, f := range exts {
		ev, err := ParseEvidence(f.ext, maxSize)
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func knownOIDs() string {
	s := ""
	for i, e := range evidenceOIDs {
		if i > 0 {
			s += ", "
		}
		s += e.oid.String()
	}
	return s
}

// ParseEvidence decodes one evidence extension. The value of a raw-quote
// extension is the quote; the value of the TCG extension is the CBOR data
// item 60000([quote, claims-buffer]) with no ASN.1 wrapping. It checks
// structure only.
func ParseEvidence(ext pkix.Extension, maxSize int) (*Evidence, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxEvidenceSize
	}
	format, _ := formatOf(ext.Id)
	if format == formatNone {
		return nil, fail("parse evidence", ErrUnsupportedEvidence, "extension %s is not an evidence extension", ext.Id)
	}
	if len(ext.Value) > maxSize {
		return nil, fail("parse evidence", ErrEvidenceTooLarge, "extension %s is %d bytes, limit %d", ext.Id, len(ext.Value), maxSize)
	}
	ev := &Evidence{OID: ext.Id, Format: format, Critical: ext.Critical, Value: ext.Value}
	if format != FormatTCG {
		if len(ext.Value) == 0 {
			return nil, fail("parse evidence", ErrMalformedEvidence, "extension %s is empty, want a quote", ext.Id)
		}
		ev.Quote = ext.Value
		return ev, nil
	}
	tag, quote, buf, err := parseTagged(ext.Value)
	if err != nil {
		return nil, err
	}
	ev.Tag, ev.Quote, ev.ClaimsBuffer = tag, quote, buf
	if ev.Claims, err = ParseClaimsBuffer(buf); err != nil {
		return nil, err
	}
	return ev, nil
}

// parseTagged decodes tag([quote: bstr, claims-buffer: bstr]).
func parseTagged(b []byte) (tag uint64, quote, claimsBuf []byte, err error) {
	bad := func(format string, args ...any) error {
		return fail("parse evidence", ErrMalformedEvidence, "TCG evidence (2.23.133.5.4.9): "+format, args...)
	}
	if len(b) == 0 || b[0]>>5 != 6 {
		// The one encoding mistake worth naming: the CBOR item wrapped
		// once more in an ASN.1 OCTET STRING.
		if len(b) > 0 && b[0] == 0x04 {
			return 0, nil, nil, bad("value starts with an ASN.1 OCTET STRING (0x04); want the CBOR tag directly")
		}
		return 0, nil, nil, bad("value is not a CBOR tag (first byte %#02x)", firstByte(b))
	}
	var rt cbor.RawTag
	if err := decMode.Unmarshal(b, &rt); err != nil {
		return 0, nil, nil, failWith("parse evidence", ErrMalformedEvidence, err, "TCG evidence (2.23.133.5.4.9) is not one well-formed CBOR tag")
	}
	switch rt.Number {
	case TagIntelTEEQuote:
	case TagIntelTEEReport, TagIntelSGXLegacyRept:
		return rt.Number, nil, nil, fail("parse evidence", ErrUnsupportedEvidence, "CBOR tag %d carries a TEE report, which cannot be verified remotely; want tag %d (quote)", rt.Number, TagIntelTEEQuote)
	default:
		return rt.Number, nil, nil, fail("parse evidence", ErrUnsupportedEvidence, "CBOR tag %d, want %d (Intel TEE quote)", rt.Number, TagIntelTEEQuote)
	}
	var arr []cbor.RawMessage
	if err := decMode.Unmarshal(rt.Content, &arr); err != nil {
		return rt.Number, nil, nil, failWith("parse evidence", ErrMalformedEvidence, err, "content of tag %d is not an array", rt.Number)
	}
	if len(arr) != 2 {
		return rt.Number, nil, nil, bad("array of %d items, want 2 (quote, claims buffer)", len(arr))
	}
	if quote, err = bstr(arr[0], "quote"); err != nil {
		return rt.Number, nil, nil, err
	}
	if len(quote) == 0 {
		return rt.Number, nil, nil, bad("empty quote")
	}
	if claimsBuf, err = bstr(arr[1], "claims buffer"); err != nil {
		return rt.Number, nil, nil, err
	}
	return rt.Number, quote, claimsBuf, nil
}

func firstByte(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// bstr decodes one CBOR byte string (major type 2, untagged).
func bstr(raw cbor.RawMessage, what string) ([]byte, error) {
	if len(raw) == 0 || raw[0]>>5 != 2 {
		return nil, fail("parse evidence", ErrMalformedEvidence, "%s is CBOR major type %d, want a byte string (2)", what, firstByte(raw)>>5)
	}
	var v []byte
	if err := decMode.Unmarshal(raw, &v); err != nil {
		return nil, failWith("parse evidence", ErrMalformedEvidence, err, "%s", what)
	}
	return v, nil
}

// ParseClaimsBuffer decodes a claims buffer: a CBOR map from text names to
// byte strings. "pubkey-hash" holds an encoded hash-entry [alg, hash]; a
// bare (unwrapped) hash-entry array is tolerated. Claims other than
// "pubkey-hash" and "nonce" are listed but not interpreted. A missing
// "pubkey-hash" is not a decoding error: the binding check reports it.
func ParseClaimsBuffer(b []byte) (*EvidenceClaims, error) {
	bad := func(format string, args ...any) error {
		return fail("parse evidence", ErrMalformedEvidence, "claims buffer: "+format, args...)
	}
	if len(b) == 0 || b[0]>>5 != 5 {
		return nil, bad("CBOR major type %d, want a map (5)", firstByte(b)>>5)
	}
	var m map[string]cbor.RawMessage
	if err := decMode.Unmarshal(b, &m); err != nil {
		return nil, failWith("parse evidence", ErrMalformedEvidence, err, "claims buffer")
	}
	c := &EvidenceClaims{}
	for k := range m {
		c.Keys = append(c.Keys, k)
	}
	sort.Strings(c.Keys)
	if raw, ok := m[ClaimPubkeyHash]; ok {
		entry := []byte(raw)
		if len(raw) > 0 && raw[0]>>5 == 2 {
			v, err := bstr(raw, "claim pubkey-hash")
			if err != nil {
				return nil, err
			}
			entry = v
		}
		var he []cbor.RawMessage
		if err := decMode.Unmarshal(entry, &he); err != nil {
			return nil, failWith("parse evidence", ErrMalformedEvidence, err, "claim pubkey-hash is not a hash-entry [alg, hash]")
		}
		if len(he) != 2 {
			return nil, bad("pubkey-hash hash-entry has %d items, want 2", len(he))
		}
		if len(he[0]) == 0 || he[0][0]>>5 != 0 {
			return nil, bad("pubkey-hash algorithm is CBOR major type %d, want an unsigned integer (0)", firstByte(he[0])>>5)
		}
		if err := decMode.Unmarshal(he[0], &c.PubkeyHashAlg); err != nil {
			return nil, failWith("parse evidence", ErrMalformedEvidence, err, "pubkey-hash algorithm")
		}
		h, err := bstr(he[1], "pubkey-hash value")
		if err != nil {
			return nil, err
		}
		c.PubkeyHash = h
	}
	if raw, ok := m[ClaimRuntime]; ok {
		r, err := bstr(raw, "claim runtime")
		if err != nil {
			return nil, err
		}
		if !validRuntime(string(r)) {
			return nil, bad("runtime claim %q is not 1-32 of [a-z0-9-]", r)
		}
		c.Runtime = string(r)
	}
	if raw, ok := m[ClaimDomain]; ok {
		d, err := bstr(raw, "claim asps-domain")
		if err != nil {
			return nil, err
		}
		if !validRuntime(string(d)) {
			return nil, bad("asps-domain claim %q is not 1-32 of [a-z0-9-]", d)
		}
		c.Domain = string(d)
	}
	if raw, ok := m[ClaimNonce]; ok {
		n, err := bstr(raw, "claim nonce")
		if err != nil {
			return nil, err
		}
		c.Nonce = n
		if c.Nonce == nil {
			c.Nonce = []byte{}
		}
	}
	return c, nil
}

// encodeClaimsBuffer builds the interoperable claims buffer: a
// deterministically encoded map {"pubkey-hash": bstr .cbor [1, SHA-256(spki)]}
// plus "nonce" when one is given.
func encodeClaimsBuffer(spki, nonce []byte, runtime string) ([]byte, error) {
	return encodeClaimsBufferIn("", spki, nonce, runtime)
}

// encodeClaimsBufferIn is encodeClaimsBuffer with an "asps-domain" claim
// when domain is not "".
func encodeClaimsBufferIn(domain string, spki, nonce []byte, runtime string) ([]byte, error) {
	sum := sha256.Sum256(spki)
	entry, err := encMode.Marshal([]any{uint64(HashSHA256), sum[:]})
	if err != nil {
		return nil, fmt.Errorf("encode pubkey-hash: %w", err)
	}
	m := map[string][]byte{ClaimPubkeyHash: entry}
	if nonce != nil {
		m[ClaimNonce] = nonce
	}
	if runtime != "" {
		m[ClaimRuntime] = []byte(runtime)
	}
	if domain != "" {
		m[ClaimDomain] = []byte(domain)
	}
	b, err := encMode.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode claims buffer: %w", err)
	}
	return b, nil
}

// encodeTaggedEvidence builds 60000([quote, claims-buffer]).
func encodeTaggedEvidence(quote, claimsBuf []byte) ([]byte, error) {
	b, err := encMode.Marshal(cbor.Tag{Number: TagIntelTEEQuote, Content: []any{quote, claimsBuf}})
	if err != nil {
		return nil, fmt.Errorf("encode tagged evidence: %w", err)
	}
	return b, nil
}

// hashByID returns the hash for a hash-entry algorithm identifier.
func hashByID(id uint64) (func() hash.Hash, string, bool) {
	switch id {
	case HashSHA256:
		return sha256.New, "sha-256", true
	case HashSHA384:
		return sha512.New384, "sha-384", true
	case HashSHA512:
		return sha512.New, "sha-512", true
	}
	return nil, "", false
}

func digest(h func() hash.Hash, b []byte) []byte {
	d := h()
	d.Write(b)
	return d.Sum(nil)
}

func validRuntime(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
