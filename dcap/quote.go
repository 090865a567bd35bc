package dcap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/binary"
	"fmt"
)

// Quote header and body constants, as in Intel's "SGX ECDSA Quote Library
// API" and "TDX DCAP Quote Generation Library and Quote Verification
// Library" specifications.
const (
	HeaderLen       = 48
	SGXReportLen    = 384
	TD10ReportLen   = 584
	TD15ReportLen   = 648
	ecdsaSigLen     = 64
	ecdsaKeyLen     = 64
	AttKeyECDSAP256 = 2

	TEETypeSGX uint32 = 0x00000000
	TEETypeTDX uint32 = 0x00000081

	// Quote v5 body types.
	BodyTypeSGX  = 1
	BodyTypeTD10 = 2
	BodyTypeTD15 = 3

	// Certification data types.
	CertDataPCKChain = 5
	CertDataQEReport = 6

	// MaxQuoteLen caps what the parser reads: a real quote is about 5 KB.
	MaxQuoteLen = 64 << 10
)

// IntelQEVendorID is the QE vendor ID of Intel's quoting enclaves.
var IntelQEVendorID = [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}

// Header is the 48-byte quote header.
type Header struct {
	Version    uint16
	AttKeyType uint16
	TEEType    uint32 // v3: reserved (zero)
	QESVN      uint16 // v3: reserved
	PCESVN     uint16 // v3: reserved
	QEVendorID [16]byte
	UserData   [20]byte
}

// EnclaveReport is an SGX report body (384 bytes): the enclave's own report
// in an SGX quote, and the quoting enclave's report in the signature data.
type EnclaveReport struct {
	CPUSVN       [16]byte
	MiscSelect   uint32
	IsvExtProdID [16]byte
	Attributes   [16]byte
	MrEnclave    [32]byte
	MrSigner     [32]byte
	ConfigID     [64]byte
	IsvProdID    uint16
	IsvSVN       uint16
	ConfigSVN    uint16
	IsvFamilyID  [16]byte
	ReportData   [64]byte
	raw          []byte
}

// SGX attribute flags (the low 8 bytes of ATTRIBUTES).
const (
	AttrInit          = 0x01
	AttrDebug         = 0x02
	AttrMode64        = 0x04
	AttrProvisionKey  = 0x10
	AttrEInitTokenKey = 0x20
	AttrKSS           = 0x80
)

// Debug reports whether the enclave was launched in debug mode.
func (r *EnclaveReport) Debug() bool { return r.Attributes[0]&AttrDebug != 0 }

// Raw returns the 384 bytes the report was parsed from.
func (r *EnclaveReport) Raw() []byte { return r.raw }

// TDReport is a TD report body: TD 1.0 (584 bytes) or TD 1.5 (648 bytes).
type TDReport struct {
	TeeTcbSvn      [16]byte
	MrSeam         [48]byte
	MrSignerSeam   [48]byte
	SeamAttributes [8]byte
	TdAttributes   [8]byte
	Xfam           [8]byte
	MrTd           [48]byte
	MrConfigID     [48]byte
	MrOwner        [48]byte
	MrOwnerConfig  [48]byte
	Rtmr           [4][48]byte
	ReportData     [64]byte
	// TD 1.5 only.
	TD15        bool
	TeeTcbSvn2  [16]byte
	MrServiceTd [48]byte
}

// Debug reports whether the TD runs in debug mode (TDATTRIBUTES.DEBUG, bit 0).
func (r *TDReport) Debug() bool { return r.TdAttributes[0]&0x01 != 0 }

// QEReportCertData is certification data type 6: the quoting enclave's
// report, signed by the PCK key, with the PCK certification data inside.
type QEReportCertData struct {
	QEReport          EnclaveReport
	QEReportSignature [64]byte
	QEAuthData        []byte
	PCKCertChain      []byte // PEM, certification data type 5
}

// Quote is a parsed DCAP quote (v3, v4 or v5) with an ECDSA P-256
// attestation key.
type Quote struct {
	Header Header
	// BodyType is 1 (SGX), 2 (TD 1.0) or 3 (TD 1.5); for v3 and v4 it is
	// derived from the version and TEE type.
	BodyType uint16
	// Exactly one of SGX and TD is set.
	SGX *EnclaveReport
	TD  *TDReport

	Signature      [64]byte // r‖s over SignedData
	AttestationKey [64]byte // x‖y
	CertData       QEReportCertData

	// SignedData is the region the attestation key signs: the header and
	// the body (for v5 including the body type and size).
	SignedData []byte
	// Trailing counts the zero bytes padding the buffer after the
	// declared signature data (non-zero bytes there are refused).
	Trailing int
	raw      []byte
}

// TEE returns "sgx" or "tdx".
func (q *Quote) TEE() string {
	if q.TD != nil {
		return "tdx"
	}
	return "sgx"
}

// ReportData returns the 64 bytes of report data the TEE committed to.
func (q *Quote) ReportData() [64]byte {
	if q.TD != nil {
		return q.TD.ReportData
	}
	return q.SGX.ReportData
}

// Debug reports whether the enclave or TD runs in debug mode.
func (q *Quote) Debug() bool {
	if q.TD != nil {
		return q.TD.Debug()
	}
	return q.SGX.Debug()
}

// Raw returns the bytes the quote was parsed from.
func (q *Quote) Raw() []byte { return q.raw }

// Len is the length of the quote proper: header, body and signature data,
// without the zero padding after it.
func (q *Quote) Len() int { return len(q.raw) - q.Trailing }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// AttestationPublicKey returns the attestation key as a P-256 public key.
func (q *Quote) AttestationPublicKey() (*ecdsa.PublicKey, error) {
	return p256Key(q.AttestationKey[:])
}

func p256Key(xy []byte) (*ecdsa.PublicKey, error) {
	// Uncompressed SEC 1 point: 0x04 ‖ x ‖ y; ParseUncompressedPublicKey
	// checks that the point is on the curve.
	pt := make([]byte, 0, 65)
	pt = append(pt, 4)
	pt = append(pt, xy...)
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	if err != nil {
		return nil, fmt.Errorf("attestation key is not a P-256 point: %w", err)
	}
	return k, nil
}

// verifyRS verifies a raw r‖s P-256 signature over digest. The signature
// is re-encoded as the DER SEQUENCE of two INTEGERs that crypto/ecdsa
// reads, without going through math/big.
func verifyRS(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	signatureChecks.Add(1)
	if len(sig) != 64 {
		return false
	}
	var buf [72]byte
	der := append(buf[:0], 0x30, 0)
	for _, half := range [][]byte{sig[:32], sig[32:]} {
		for len(half) > 1 && half[0] == 0 {
			half = half[1:]
		}
		der = append(der, 0x02, byte(len(half)))
		if half[0]&0x80 != 0 {
			der[len(der)-1]++
			der = append(der, 0)
		}
		der = append(der, half...)
	}
	der[1] = byte(len(der) - 2)
	return ecdsa.VerifyASN1(pub, digest, der)
}

// reader walks a byte slice; every read names the field so a short input
// says what was missing.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = &FormatError{Field: field, Msg: fmt.Sprintf("truncated: need %d bytes at offset %d, have %d", n, r.off, len(r.b)-r.off)}
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *reader) u16(field string) uint16 {
	v := r.take(2, field)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(v)
}

func (r *reader) u32(field string) uint32 {
	v := r.take(4, field)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(v)
}

func (r *reader) copy(dst []byte, field string) {
	if v := r.take(len(dst), field); v != nil {
		copy(dst, v)
	}
}

// ParseQuote decodes a DCAP quote. It checks structure only — versions,
// types, lengths — and verifies nothing; see Verifier.
func ParseQuote(b []byte) (*Quote, error) {
	if len(b) > MaxQuoteLen {
		return nil, &FormatError{Field: "quote", Msg: fmt.Sprintf("%d bytes exceeds the %d-byte limit", len(b), MaxQuoteLen)}
	}
	q := &Quote{raw: b}
	r := &reader{b: b}
	h := &q.Header
	h.Version = r.u16("header.version")
	h.AttKeyType = r.u16("header.att_key_type")
	h.TEEType = r.u32("header.tee_type")
	h.QESVN = r.u16("header.qe_svn")
	h.PCESVN = r.u16("header.pce_svn")
	r.copy(h.QEVendorID[:], "header.qe_vendor_id")
	r.copy(h.UserData[:], "header.user_data")
	if r.err != nil {
		return nil, r.err
	}
	if h.AttKeyType != AttKeyECDSAP256 {
		return nil, &FormatError{Field: "header.att_key_type", Msg: fmt.Sprintf("%d is not supported (want 2, ECDSA-256-with-P-256)", h.AttKeyType), Unsupported: true}
	}
	switch h.Version {
	case 3:
		// v3 has no TEE type; the field is reserved and SGX is implied.
		if h.TEEType != TEETypeSGX {
			return nil, &FormatError{Field: "header.tee_type", Msg: fmt.Sprintf("0x%x in a v3 quote (v3 is SGX only)", h.TEEType)}
		}
		q.BodyType = BodyTypeSGX
	case 4:
		switch h.TEEType {
		case TEETypeSGX:
			q.BodyType = BodyTypeSGX
		case TEETypeTDX:
			q.BodyType = BodyTypeTD10
		default:
			return nil, &FormatError{Field: "header.tee_type", Msg: fmt.Sprintf("unknown TEE type 0x%x", h.TEEType)}
		}
	case 5:
		if h.TEEType != TEETypeSGX && h.TEEType != TEETypeTDX {
			return nil, &FormatError{Field: "header.tee_type", Msg: fmt.Sprintf("unknown TEE type 0x%x", h.TEEType)}
		}
		q.BodyType = r.u16("body.type")
		size := r.u32("body.size")
		if r.err != nil {
			return nil, r.err
		}
		want := map[uint16]uint32{BodyTypeSGX: SGXReportLen, BodyTypeTD10: TD10ReportLen, BodyTypeTD15: TD15ReportLen}[q.BodyType]
		if want == 0 {
			return nil, &FormatError{Field: "body.type", Msg: fmt.Sprintf("unknown body type %d", q.BodyType)}
		}
		if (q.BodyType == BodyTypeSGX) != (h.TEEType == TEETypeSGX) {
			return nil, &FormatError{Field: "body.type", Msg: fmt.Sprintf("body type %d does not fit TEE type 0x%x", q.BodyType, h.TEEType)}
		}
		if size != want {
			return nil, &FormatError{Field: "body.size", Msg: fmt.Sprintf("%d, want %d for body type %d", size, want, q.BodyType)}
		}
	default:
		return nil, &FormatError{Field: "header.version", Msg: fmt.Sprintf("quote version %d is not supported (3, 4, 5 are)", h.Version), Unsupported: true}
	}

	switch q.BodyType {
	case BodyTypeSGX:
		body := r.take(SGXReportLen, "body")
		if r.err != nil {
			return nil, r.err
		}
		q.SGX = parseEnclaveReport(body)
	default:
		n := TD10ReportLen
		if q.BodyType == BodyTypeTD15 {
			n = TD15ReportLen
		}
		body := r.take(n, "body")
		if r.err != nil {
			return nil, r.err
		}
		q.TD = parseTDReport(body)
	}
	q.SignedData = b[:r.off]

	sigLen := r.u32("signature_data_len")
	if r.err != nil {
		return nil, r.err
	}
	if int64(sigLen) > int64(len(b)-r.off) {
		return nil, &FormatError{Field: "signature_data_len", Msg: fmt.Sprintf("%d, but only %d bytes follow", sigLen, len(b)-r.off)}
	}
	// Bytes after the declared signature data are signed by nothing and
	// read by nothing. Real quote buffers are padded with zeros (TDX
	// quotes to 8,000 bytes), which is accepted and counted; anything
	// else there is not a quote.
	q.Trailing = len(b) - r.off - int(sigLen)
	if pad := b[r.off+int(sigLen):]; !allZero(pad) {
		return nil, &FormatError{Field: "quote", Msg: fmt.Sprintf("%d bytes after the %d-byte quote are not zero padding", len(pad), len(b)-len(pad))}
	}
	r.b = b[:r.off+int(sigLen)]
	r.copy(q.Signature[:], "signature_data.quote_signature")
	r.copy(q.AttestationKey[:], "signature_data.attestation_key")
	if r.err != nil {
		return nil, r.err
	}
	if h.Version == 3 {
		// v3 lays the QE report certification data out inline.
		if err := parseQEReportCertData(r, &q.CertData, "signature_data"); err != nil {
			return nil, err
		}
	} else {
		typ := r.u16("signature_data.cert_data_type")
		size := r.u32("signature_data.cert_data_size")
		if r.err != nil {
			return nil, r.err
		}
		if typ != CertDataQEReport {
			return nil, &FormatError{Field: "signature_data.cert_data_type", Msg: fmt.Sprintf("%d, want 6 (QE report certification data)", typ)}
		}
		inner := r.take(int(size), "signature_data.cert_data")
		if r.err != nil {
			return nil, r.err
		}
		ir := &reader{b: inner}
		if err := parseQEReportCertData(ir, &q.CertData, "qe_report_cert_data"); err != nil {
			return nil, err
		}
		if ir.off != len(inner) {
			return nil, &FormatError{Field: "qe_report_cert_data", Msg: fmt.Sprintf("%d trailing bytes", len(inner)-ir.off)}
		}
	}
	if r.off != len(r.b) {
		return nil, &FormatError{Field: "signature_data", Msg: fmt.Sprintf("%d bytes beyond the certification data", len(r.b)-r.off)}
	}
	return q, nil
}

// parseQEReportCertData reads QE report ‖ signature ‖ auth data ‖ type-5
// certification data.
func parseQEReportCertData(r *reader, cd *QEReportCertData, where string) error {
	rep := r.take(SGXReportLen, where+".qe_report")
	r.copy(cd.QEReportSignature[:], where+".qe_report_signature")
	authLen := r.u16(where + ".qe_auth_data_size")
	auth := r.take(int(authLen), where+".qe_auth_data")
	typ := r.u16(where + ".cert_data_type")
	size := r.u32(where + ".cert_data_size")
	if r.err != nil {
		return r.err
	}
	if typ != CertDataPCKChain {
		return &FormatError{Field: where + ".cert_data_type", Msg: fmt.Sprintf("%d, want 5 (PCK certificate chain)", typ)}
	}
	chain := r.take(int(size), where+".cert_data")
	if r.err != nil {
		return r.err
	}
	cd.QEReport = *parseEnclaveReport(rep)
	cd.QEAuthData = auth
	cd.PCKCertChain = chain
	return nil
}

func parseEnclaveReport(b []byte) *EnclaveReport {
	r := &EnclaveReport{raw: b}
	copy(r.CPUSVN[:], b[0:16])
	r.MiscSelect = binary.LittleEndian.Uint32(b[16:20])
	copy(r.IsvExtProdID[:], b[32:48])
	copy(r.Attributes[:], b[48:64])
	copy(r.MrEnclave[:], b[64:96])
	copy(r.MrSigner[:], b[128:160])
	copy(r.ConfigID[:], b[192:256])
	r.IsvProdID = binary.LittleEndian.Uint16(b[256:258])
	r.IsvSVN = binary.LittleEndian.Uint16(b[258:260])
	r.ConfigSVN = binary.LittleEndian.Uint16(b[260:262])
	copy(r.IsvFamilyID[:], b[304:320])
	copy(r.ReportData[:], b[320:384])
	return r
}

func parseTDReport(b []byte) *TDReport {
	r := &TDReport{}
	copy(r.TeeTcbSvn[:], b[0:16])
	copy(r.MrSeam[:], b[16:64])
	copy(r.MrSignerSeam[:], b[64:112])
	copy(r.SeamAttributes[:], b[112:120])
	copy(r.TdAttributes[:], b[120:128])
	copy(r.Xfam[:], b[128:136])
	copy(r.MrTd[:], b[136:184])
	copy(r.MrConfigID[:], b[184:232])
	copy(r.MrOwner[:], b[232:280])
	copy(r.MrOwnerConfig[:], b[280:328])
	for i := range 4 {
		copy(r.Rtmr[i][:], b[328+48*i:376+48*i])
	}
	copy(r.ReportData[:], b[520:584])
	if len(b) == TD15ReportLen {
		r.TD15 = true
		copy(r.TeeTcbSvn2[:], b[584:600])
		copy(r.MrServiceTd[:], b[600:648])
	}
	return r
}
