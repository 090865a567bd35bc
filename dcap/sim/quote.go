package sim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/asps-project/asps/dcap"
)

// Identity is what the simulated enclave or TD reports about itself. Each
// field goes into the report body as given, except where a comment says
// what its zero value stands for.
type Identity struct {
	// Debug sets the debug attribute: ATTRIBUTES.DEBUG (bit 1) of an
	// enclave, TDATTRIBUTES.DEBUG (bit 0) of a TD.
	Debug bool

	// SGX enclave.
	MrEnclave    [32]byte
	MrSigner     [32]byte
	IsvProdID    uint16
	IsvSVN       uint16
	ConfigID     [64]byte
	ConfigSVN    uint16
	IsvExtProdID [16]byte
	IsvFamilyID  [16]byte
	MiscSelect   uint32
	// Attributes: zero stands for INIT | MODE64 with XFRM x87 | SSE, an
	// ordinary production enclave.
	Attributes [16]byte
	// CPUSVN: zero stands for the platform's CPUSVN.
	CPUSVN [16]byte

	// TDX trust domain.
	MrTD [48]byte
	Rtmr [4][48]byte
	// TdAttributes: zero stands for SEPT_VE_DISABLE (bit 28) alone, what
	// every production Linux TD sets (dcap-qvl refuses TDs without it).
	TdAttributes  [8]byte
	MrConfigID    [48]byte
	MrOwner       [48]byte
	MrOwnerConfig [48]byte
	// Xfam: zero stands for 0x61ae7 (x87, SSE, AVX, AVX-512, PK), what a
	// TD on a current Xeon usually has.
	Xfam [8]byte
	// TeeTcbSvn: zero stands for the TEE TCB SVN that lands on the TCB
	// level Options.TCBStatus and Options.TDXModuleTCBStatus choose.
	TeeTcbSvn [16]byte
	MrSeam    [48]byte
	// MrSignerSeam and SeamAttributes are zero for Intel's TDX modules;
	// the simulated TCB info's module identity follows whatever is set.
	MrSignerSeam   [48]byte
	SeamAttributes [8]byte
	// TD 1.5 only. TeeTcbSvn2: zero stands for TeeTcbSvn.
	TeeTcbSvn2  [16]byte
	MrServiceTD [48]byte
}

var (
	defaultXfam         = [8]byte{0xe7, 0x1a, 0x06}
	defaultTdAttributes = [8]byte{3: 0x10}
)

// sgxReport lays out a 384-byte SGX report body.
type sgxReport struct {
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
}

func (r *sgxReport) bytes() []byte {
	b := make([]byte, dcap.SGXReportLen)
	copy(b[0:16], r.CPUSVN[:])
	binary.LittleEndian.PutUint32(b[16:20], r.MiscSelect)
	// 20..32 reserved
	copy(b[32:48], r.IsvExtProdID[:])
	copy(b[48:64], r.Attributes[:])
	copy(b[64:96], r.MrEnclave[:])
	// 96..128 reserved
	copy(b[128:160], r.MrSigner[:])
	// 160..192 reserved
	copy(b[192:256], r.ConfigID[:])
	binary.LittleEndian.PutUint16(b[256:258], r.IsvProdID)
	binary.LittleEndian.PutUint16(b[258:260], r.IsvSVN)
	binary.LittleEndian.PutUint16(b[260:262], r.ConfigSVN)
	// 262..304 reserved
	copy(b[304:320], r.IsvFamilyID[:])
	copy(b[320:384], r.ReportData[:])
	return b
}

func (id *Identity) sgxBody(pl *platform, reportData [64]byte) []byte {
	r := sgxReport{
		CPUSVN: id.CPUSVN, MiscSelect: id.MiscSelect, IsvExtProdID: id.IsvExtProdID, Attributes: id.Attributes,
		MrEnclave: id.MrEnclave, MrSigner: id.MrSigner, ConfigID: id.ConfigID, IsvProdID: id.IsvProdID,
		IsvSVN: id.IsvSVN, ConfigSVN: id.ConfigSVN, IsvFamilyID: id.IsvFamilyID, ReportData: reportData,
	}
	if r.CPUSVN == [16]byte{} {
		r.CPUSVN = pl.values.CPUSVN
	}
	if r.Attributes == [16]byte{} {
		r.Attributes[0] = dcap.AttrInit | dcap.AttrMode64
		r.Attributes[8] = 0x03
	}
	if id.Debug {
		r.Attributes[0] |= dcap.AttrDebug
	}
	return r.bytes()
}

func (id *Identity) tdBody(pl *platform, td15 bool, reportData [64]byte) []byte {
	n := dcap.TD10ReportLen
	if td15 {
		n = dcap.TD15ReportLen
	}
	b := make([]byte, n)
	svn := id.TeeTcbSvn
	if svn == [16]byte{} {
		svn = pl.teeTCBSVN
	}
	copy(b[0:16], svn[:])
	copy(b[16:64], id.MrSeam[:])
	copy(b[64:112], id.MrSignerSeam[:])
	copy(b[112:120], id.SeamAttributes[:])
	attrs := id.TdAttributes
	if attrs == [8]byte{} {
		attrs = defaultTdAttributes
	}
	if id.Debug {
		attrs[0] |= 0x01
	}
	copy(b[120:128], attrs[:])
	xfam := id.Xfam
	if xfam == [8]byte{} {
		xfam = defaultXfam
	}
	copy(b[128:136], xfam[:])
	copy(b[136:184], id.MrTD[:])
	copy(b[184:232], id.MrConfigID[:])
	copy(b[232:280], id.MrOwner[:])
	copy(b[280:328], id.MrOwnerConfig[:])
	for i := range 4 {
		copy(b[328+48*i:376+48*i], id.Rtmr[i][:])
	}
	copy(b[520:584], reportData[:])
	if td15 {
		svn2 := id.TeeTcbSvn2
		if svn2 == [16]byte{} {
			svn2 = svn
		}
		copy(b[584:600], svn2[:])
		copy(b[600:648], id.MrServiceTD[:])
	}
	return b
}

// CertDataLayout chooses how the quote carries its certification data.
type CertDataLayout int

const (
	// CertDataAuto is what Intel's quoting enclaves write: inline QE
	// report certification data in v3, certification data type 6 (QE
	// report certification data holding a type-5 PCK chain) in v4 and v5.
	CertDataAuto CertDataLayout = iota
	// CertDataQEReport forces type 6, also in v3 (where it is invalid).
	CertDataQEReport
	// CertDataInline forces the v3 inline layout, also in v4 and v5
	// (where it is invalid).
	CertDataInline
	// CertDataPCKChainOnly writes certification data type 5 (the PEM
	// chain) directly, with no QE report. No version allows it for an
	// ECDSA quote: a v4/v5 quote must carry type 6, and the verifier needs
	// the QE report to bind the attestation key to the PCK certificate.
	CertDataPCKChainOnly
)

// signRS signs SHA-256(msg) with k deterministically (RFC 6979) and
// returns r‖s, 32 bytes each, as DCAP writes ECDSA signatures.
func signRS(k *ecdsa.PrivateKey, msg []byte) ([64]byte, error) {
	var out [64]byte
	d := sha256.Sum256(msg)
	der, err := k.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		return out, fmt.Errorf("sim: sign: %w", err)
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return out, fmt.Errorf("sim: sign: %w", err)
	}
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out, nil
}

// publicXY returns a P-256 public key as x‖y.
func publicXY(k *ecdsa.PublicKey) ([64]byte, error) {
	var out [64]byte
	pt, err := k.Bytes()
	if err != nil || len(pt) != 65 {
		return out, fmt.Errorf("sim: attestation key encoding: %v", err)
	}
	copy(out[:], pt[1:])
	return out, nil
}

func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// qeReportCertData is QE report ‖ QE report signature ‖ auth data size ‖
// auth data ‖ certification data type 5 ‖ size ‖ PEM chain.
func (pl *platform) qeReportCertData() []byte {
	var b []byte
	b = append(b, pl.qeReport...)
	b = append(b, pl.qeSig[:]...)
	b = le16(b, uint16(len(pl.authData)))
	b = append(b, pl.authData...)
	b = le16(b, dcap.CertDataPCKChain)
	b = le32(b, uint32(len(pl.chainPEM)))
	b = append(b, pl.chainPEM...)
	return b
}

// quoteParams are the per-quote choices.
type quoteParams struct {
	version    uint16
	bodyType   uint16
	identity   *Identity
	reportData [64]byte
	layout     CertDataLayout
	tamper     Tamper
}

// buildQuote assembles and signs a quote on platform pl.
func (pl *platform) buildQuote(qp quoteParams) ([]byte, error) {
	teeType := dcap.TEETypeSGX
	if pl.tee == "tdx" {
		teeType = dcap.TEETypeTDX
	}
	vendor := dcap.IntelQEVendorID
	if qp.tamper == TamperQEVendor {
		vendor[0] ^= 0xff
	}
	var q []byte
	q = le16(q, qp.version)
	q = le16(q, dcap.AttKeyECDSAP256)
	q = le32(q, teeType)
	q = le16(q, pl.qeSVN)
	q = le16(q, pl.values.PCESVN)
	q = append(q, vendor[:]...)
	var user [20]byte
	copy(user[:], pl.qeID[:])
	q = append(q, user[:]...)

	var body []byte
	switch qp.bodyType {
	case dcap.BodyTypeSGX:
		body = qp.identity.sgxBody(pl, qp.reportData)
	case dcap.BodyTypeTD10:
		body = qp.identity.tdBody(pl, false, qp.reportData)
	case dcap.BodyTypeTD15:
		body = qp.identity.tdBody(pl, true, qp.reportData)
	default:
		return nil, fmt.Errorf("sim: body type %d", qp.bodyType)
	}
	if qp.version == 5 {
		q = le16(q, qp.bodyType)
		q = le32(q, uint32(len(body)))
	}
	q = append(q, body...)

	sig, err := signRS(pl.attKey, q)
	if err != nil {
		return nil, err
	}
	if qp.tamper == TamperQuoteSignature {
		sig[40] ^= 0x01
	}
	ak, err := publicXY(&pl.attKey.PublicKey)
	if err != nil {
		return nil, err
	}
	var sd []byte
	sd = append(sd, sig[:]...)
	sd = append(sd, ak[:]...)
	layout := qp.layout
	if layout == CertDataAuto {
		layout = CertDataQEReport
		if qp.version == 3 {
			layout = CertDataInline
		}
	}
	switch layout {
	case CertDataInline:
		sd = append(sd, pl.qeReportCertData()...)
	case CertDataQEReport:
		inner := pl.qeReportCertData()
		sd = le16(sd, dcap.CertDataQEReport)
		sd = le32(sd, uint32(len(inner)))
		sd = append(sd, inner...)
	case CertDataPCKChainOnly:
		sd = le16(sd, dcap.CertDataPCKChain)
		sd = le32(sd, uint32(len(pl.chainPEM)))
		sd = append(sd, pl.chainPEM...)
	default:
		return nil, fmt.Errorf("sim: unknown certification data layout %d", layout)
	}
	q = le32(q, uint32(len(sd)))
	q = append(q, sd...)
	return q, nil
}
