package dcap

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Collateral is what a quote is verified against: Intel's signed TCB info
// and QE identity, the CRLs, and the issuer chains of each. Build it with
// ParseCollateralJSON (dcap-qvl's QuoteCollateralV3 layout) or
// NewCollateral (raw Intel PCS pieces). A Collateral is immutable once
// built and safe to share; verifiers cache what they derive from it by its
// Digest.
type Collateral struct {
	PCKCRLIssuerChain     []*x509.Certificate
	RootCACRL             *x509.RevocationList
	PCKCRL                *x509.RevocationList
	TCBInfoIssuerChain    []*x509.Certificate
	TCBInfoBody           []byte // the exact signed JSON bytes
	TCBInfoSignature      []byte // r‖s, 64 bytes
	QEIdentityIssuerChain []*x509.Certificate
	QEIdentityBody        []byte
	QEIdentitySignature   []byte

	// TCBInfo and QEIdentity are decoded from the bodies. They are only
	// trustworthy after a verifier has checked the signatures.
	TCBInfo    *TCBInfo
	QEIdentity *QEIdentity

	// parts is the verifier's own parse of the same bytes, which no
	// caller can reach: verification reads only this.
	parts *colParts
}

// colParts is collateral as verifiers read it: parsed privately from the
// raw bytes, never handed out, never changed after NewCollateral.
type colParts struct {
	digest                         [32]byte
	size                           int64 // raw bytes, for cache accounting
	pckCRLChain, tcbChain, qeChain []*x509.Certificate
	rootCRL, pckCRL                *x509.RevocationList
	tcbBody, tcbSig, qeBody, qeSig []byte
	tcbInfo                        *TCBInfo
	qeIdentity                     *QEIdentity
}

// Digest identifies the collateral's content.
func (c *Collateral) Digest() [32]byte {
	if c.parts == nil {
		return [32]byte{}
	}
	return c.parts.digest
}

// RawCollateral holds collateral as Intel PCS serves it: PEM issuer chains,
// signed JSON bodies with hex signatures, and CRLs in DER or PEM. Either TCB
// info or QE identity may be empty for chain-only verification.
type RawCollateral struct {
	PCKCRLIssuerChain     []byte
	RootCACRL             []byte
	PCKCRL                []byte
	TCBInfoIssuerChain    []byte
	TCBInfo               []byte // the signed body, or the whole PCS response {"tcbInfo":…,"signature":…}
	TCBInfoSignature      []byte // hex or raw r‖s; empty when TCBInfo is the whole response
	QEIdentityIssuerChain []byte
	QEIdentity            []byte // the signed body, or the whole PCS response {"enclaveIdentity":…,"signature":…}
	QEIdentitySignature   []byte
}

// collateralJSON is dcap-qvl's QuoteCollateralV3 JSON layout.
type collateralJSON struct {
	PCKCRLIssuerChain     string `json:"pck_crl_issuer_chain"`
	RootCACRL             string `json:"root_ca_crl"`
	PCKCRL                string `json:"pck_crl"`
	TCBInfoIssuerChain    string `json:"tcb_info_issuer_chain"`
	TCBInfo               string `json:"tcb_info"`
	TCBInfoSignature      string `json:"tcb_info_signature"`
	QEIdentityIssuerChain string `json:"qe_identity_issuer_chain"`
	QEIdentity            string `json:"qe_identity"`
	QEIdentitySignature   string `json:"qe_identity_signature"`
}

// MaxCollateralLen caps a collateral document; real ones are about 20 KB.
const MaxCollateralLen = 4 << 20

// ParseCollateralJSON reads collateral in dcap-qvl's JSON layout: bodies as
// strings, signatures as hex, chains as PEM, CRLs as hex DER.
func ParseCollateralJSON(b []byte) (*Collateral, error) {
	if len(b) > MaxCollateralLen {
		return nil, &FormatError{Field: "collateral", Msg: fmt.Sprintf("%d bytes exceeds the limit", len(b))}
	}
	var j collateralJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&j); err != nil {
		return nil, &FormatError{Field: "collateral", Msg: "not JSON: " + err.Error()}
	}
	return NewCollateral(RawCollateral{
		PCKCRLIssuerChain:     []byte(j.PCKCRLIssuerChain),
		RootCACRL:             []byte(j.RootCACRL),
		PCKCRL:                []byte(j.PCKCRL),
		TCBInfoIssuerChain:    []byte(j.TCBInfoIssuerChain),
		TCBInfo:               []byte(j.TCBInfo),
		TCBInfoSignature:      []byte(j.TCBInfoSignature),
		QEIdentityIssuerChain: []byte(j.QEIdentityIssuerChain),
		QEIdentity:            []byte(j.QEIdentity),
		QEIdentitySignature:   []byte(j.QEIdentitySignature),
	})
}

// MarshalJSON writes the collateral in dcap-qvl's JSON layout.
func (c *Collateral) MarshalJSON() ([]byte, error) {
	crl := func(l *x509.RevocationList) string {
		if l == nil {
			return ""
		}
		return hex.EncodeToString(l.Raw)
	}
	return json.Marshal(collateralJSON{
		PCKCRLIssuerChain:     string(EncodeChainPEM(c.PCKCRLIssuerChain)),
		RootCACRL:             crl(c.RootCACRL),
		PCKCRL:                crl(c.PCKCRL),
		TCBInfoIssuerChain:    string(EncodeChainPEM(c.TCBInfoIssuerChain)),
		TCBInfo:               string(c.TCBInfoBody),
		TCBInfoSignature:      hex.EncodeToString(c.TCBInfoSignature),
		QEIdentityIssuerChain: string(EncodeChainPEM(c.QEIdentityIssuerChain)),
		QEIdentity:            string(c.QEIdentityBody),
		QEIdentitySignature:   hex.EncodeToString(c.QEIdentitySignature),
	})
}

// NewCollateral decodes raw collateral pieces.
func NewCollateral(r RawCollateral) (*Collateral, error) {
	c, err := decodeCollateral(r)
	if err != nil {
		return nil, err
	}
	// A second, private decode of the same bytes for verifiers: what a
	// caller does to the exported fields cannot reach a verdict.
	p, err := decodeCollateral(r)
	if err != nil {
		return nil, err
	}
	c.parts = &colParts{
		pckCRLChain: p.PCKCRLIssuerChain, tcbChain: p.TCBInfoIssuerChain, qeChain: p.QEIdentityIssuerChain,
		rootCRL: p.RootCACRL, pckCRL: p.PCKCRL,
		tcbBody: bytes.Clone(p.TCBInfoBody), tcbSig: bytes.Clone(p.TCBInfoSignature),
		qeBody: bytes.Clone(p.QEIdentityBody), qeSig: bytes.Clone(p.QEIdentitySignature),
		tcbInfo: p.TCBInfo, qeIdentity: p.QEIdentity,
	}
	h := sha256.New()
	for _, piece := range [][]byte{r.PCKCRLIssuerChain, r.RootCACRL, r.PCKCRL, r.TCBInfoIssuerChain, r.TCBInfo, r.TCBInfoSignature, r.QEIdentityIssuerChain, r.QEIdentity, r.QEIdentitySignature} {
		var n [8]byte
		for i := range 8 {
			n[i] = byte(uint64(len(piece)) >> (8 * i))
		}
		h.Write(n[:])
		h.Write(piece)
		c.parts.size += int64(len(piece))
	}
	h.Sum(c.parts.digest[:0])
	return c, nil
}

func decodeCollateral(r RawCollateral) (*Collateral, error) {
	c := &Collateral{}
	var err error
	if c.PCKCRLIssuerChain, err = optionalChain(r.PCKCRLIssuerChain, "pck_crl_issuer_chain"); err != nil {
		return nil, err
	}
	if c.TCBInfoIssuerChain, err = optionalChain(r.TCBInfoIssuerChain, "tcb_info_issuer_chain"); err != nil {
		return nil, err
	}
	if c.QEIdentityIssuerChain, err = optionalChain(r.QEIdentityIssuerChain, "qe_identity_issuer_chain"); err != nil {
		return nil, err
	}
	if c.RootCACRL, err = optionalCRL(r.RootCACRL, "root_ca_crl"); err != nil {
		return nil, err
	}
	if c.PCKCRL, err = optionalCRL(r.PCKCRL, "pck_crl"); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(r.TCBInfo)) > 0 {
		c.TCBInfoBody, c.TCBInfoSignature, err = signedBody(r.TCBInfo, r.TCBInfoSignature, "tcbInfo", "tcb_info")
		if err != nil {
			return nil, err
		}
		if c.TCBInfo, err = ParseTCBInfo(c.TCBInfoBody); err != nil {
			return nil, err
		}
	}
	if len(bytes.TrimSpace(r.QEIdentity)) > 0 {
		c.QEIdentityBody, c.QEIdentitySignature, err = signedBody(r.QEIdentity, r.QEIdentitySignature, "enclaveIdentity", "qe_identity")
		if err != nil {
			return nil, err
		}
		if c.QEIdentity, err = ParseQEIdentity(c.QEIdentityBody); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// signedBody returns the exact signed bytes and the 64-byte signature,
// from either a bare body with a separate signature, or a whole PCS
// response whose member `key` is the body.
func signedBody(body, sig []byte, key, field string) ([]byte, []byte, error) {
	body = bytes.TrimSpace(body)
	if len(bytes.TrimSpace(sig)) == 0 {
		// A whole PCS response: {"tcbInfo":{…},"signature":"hex"}.
		var resp map[string]json.RawMessage
		if err := json.Unmarshal(body, &resp); err != nil {
			return nil, nil, &FormatError{Field: field, Msg: "not JSON: " + err.Error()}
		}
		inner, ok := resp[key]
		if !ok {
			return nil, nil, &FormatError{Field: field, Msg: fmt.Sprintf("no signature given and no %q member", key)}
		}
		var s string
		if err := json.Unmarshal(resp["signature"], &s); err != nil {
			return nil, nil, &FormatError{Field: field + ".signature", Msg: "missing or not a string"}
		}
		body, sig = inner, []byte(s)
	}
	sigBytes, err := decodeSignature(sig)
	if err != nil {
		return nil, nil, &FormatError{Field: field + "_signature", Msg: err.Error()}
	}
	return body, sigBytes, nil
}

func decodeSignature(sig []byte) ([]byte, error) {
	s := bytes.TrimSpace(sig)
	if len(s) == 64 && !isHex(s) {
		return s, nil
	}
	out := make([]byte, hex.DecodedLen(len(s)))
	if _, err := hex.Decode(out, s); err != nil {
		return nil, fmt.Errorf("not hex: %v", err)
	}
	if len(out) != 64 {
		return nil, fmt.Errorf("%d bytes, want 64 (r‖s)", len(out))
	}
	return out, nil
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func optionalChain(b []byte, field string) ([]*x509.Certificate, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	return ParseChainPEM(b, field)
}

// ParseChainPEM decodes a PEM certificate chain (leaf first, as Intel
// serves it). PCS headers carry it URL-encoded; decode that first.
func ParseChainPEM(b []byte, field string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, &FormatError{Field: field, Msg: fmt.Sprintf("PEM block %q is not a certificate", blk.Type)}
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, &FormatError{Field: field, Msg: fmt.Sprintf("certificate %d: %v", len(out), err)}
		}
		out = append(out, c)
		if len(out) > 8 {
			return nil, &FormatError{Field: field, Msg: "more than 8 certificates"}
		}
	}
	if len(out) == 0 {
		return nil, &FormatError{Field: field, Msg: "no PEM certificate"}
	}
	if len(bytes.TrimRight(rest, "\x00 \t\r\n")) != 0 {
		return nil, &FormatError{Field: field, Msg: "trailing bytes after the PEM certificates"}
	}
	return out, nil
}

// EncodeChainPEM writes certificates as a PEM chain.
func EncodeChainPEM(chain []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range chain {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

func optionalCRL(b []byte, field string) (*x509.RevocationList, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	return ParseCRL(b, field)
}

// ParseCRL decodes a CRL given as DER, PEM, or hex DER.
func ParseCRL(b []byte, field string) (*x509.RevocationList, error) {
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		der = blk.Bytes
	} else if t := bytes.TrimSpace(b); isHex(t) {
		der = make([]byte, hex.DecodedLen(len(t)))
		if _, err := hex.Decode(der, t); err != nil {
			return nil, &FormatError{Field: field, Msg: "bad hex: " + err.Error()}
		}
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, &FormatError{Field: field, Msg: err.Error()}
	}
	return l, nil
}

// TCB info and QE identity, the signed JSON documents of Intel PCS v4.

// TCBInfo is the "tcbInfo" document (version 2 or 3).
type TCBInfo struct {
	ID                      string              `json:"id"`
	Version                 int                 `json:"version"`
	IssueDate               time.Time           `json:"issueDate"`
	NextUpdate              time.Time           `json:"nextUpdate"`
	FMSPC                   string              `json:"fmspc"`
	PCEID                   string              `json:"pceId"`
	TCBType                 int                 `json:"tcbType"`
	TCBEvaluationDataNumber int                 `json:"tcbEvaluationDataNumber"`
	TDXModule               *TDXModule          `json:"tdxModule"`
	TDXModuleIdentities     []TDXModuleIdentity `json:"tdxModuleIdentities"`
	TCBLevels               []TCBLevel          `json:"tcbLevels"`
}

// TDXModule is the TDX module's expected signer and attributes (TCB info v3).
type TDXModule struct {
	MrSigner       HexBytes `json:"mrsigner"`
	Attributes     HexBytes `json:"attributes"`
	AttributesMask HexBytes `json:"attributesMask"`
}

// TDXModuleIdentity is one entry of tdxModuleIdentities.
type TDXModuleIdentity struct {
	ID             string     `json:"id"`
	MrSigner       HexBytes   `json:"mrsigner"`
	Attributes     HexBytes   `json:"attributes"`
	AttributesMask HexBytes   `json:"attributesMask"`
	TCBLevels      []QETCBLvl `json:"tcbLevels"`
}

// TCBLevel is one platform TCB level.
type TCBLevel struct {
	TCB         TCBComponents `json:"tcb"`
	TCBDate     time.Time     `json:"tcbDate"`
	TCBStatus   string        `json:"tcbStatus"`
	AdvisoryIDs []string      `json:"advisoryIDs"`
}

// TCBComponents holds the SVNs a TCB level requires.
type TCBComponents struct {
	SGX    [16]uint8
	PCESVN uint16
	TDX    [16]uint8
	HasTDX bool
}

type svnComponent struct {
	SVN      *int   `json:"svn"`
	Category string `json:"category"`
	Type     string `json:"type"`
}

// UnmarshalJSON reads both layouts: v3's component arrays and v2's
// sgxtcbcomp01svn … sgxtcbcomp16svn fields.
func (t *TCBComponents) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	pce, ok := m["pcesvn"]
	if !ok {
		return fmt.Errorf("tcb: no pcesvn")
	}
	if err := json.Unmarshal(pce, &t.PCESVN); err != nil {
		return fmt.Errorf("tcb.pcesvn: %v", err)
	}
	readArray := func(key string, dst *[16]uint8) (bool, error) {
		raw, ok := m[key]
		if !ok {
			return false, nil
		}
		var comps []svnComponent
		if err := json.Unmarshal(raw, &comps); err != nil {
			return false, fmt.Errorf("tcb.%s: %v", key, err)
		}
		if len(comps) != 16 {
			return false, fmt.Errorf("tcb.%s: %d components, want 16", key, len(comps))
		}
		for i, c := range comps {
			if c.SVN == nil || *c.SVN < 0 || *c.SVN > 255 {
				return false, fmt.Errorf("tcb.%s[%d]: svn missing or out of range", key, i)
			}
			dst[i] = uint8(*c.SVN)
		}
		return true, nil
	}
	okSGX, err := readArray("sgxtcbcomponents", &t.SGX)
	if err != nil {
		return err
	}
	if !okSGX {
		for i := range 16 {
			raw, ok := m[fmt.Sprintf("sgxtcbcomp%02dsvn", i+1)]
			if !ok {
				return fmt.Errorf("tcb: neither sgxtcbcomponents nor sgxtcbcomp%02dsvn", i+1)
			}
			if err := json.Unmarshal(raw, &t.SGX[i]); err != nil {
				return fmt.Errorf("tcb.sgxtcbcomp%02dsvn: %v", i+1, err)
			}
		}
	}
	t.HasTDX, err = readArray("tdxtcbcomponents", &t.TDX)
	return err
}

// QEIdentity is the "enclaveIdentity" document (version 2) for the SGX QE
// ("QE") or the TD QE ("TD_QE").
type QEIdentity struct {
	ID                      string     `json:"id"`
	Version                 int        `json:"version"`
	IssueDate               time.Time  `json:"issueDate"`
	NextUpdate              time.Time  `json:"nextUpdate"`
	TCBEvaluationDataNumber int        `json:"tcbEvaluationDataNumber"`
	MiscSelect              HexBytes   `json:"miscselect"`
	MiscSelectMask          HexBytes   `json:"miscselectMask"`
	Attributes              HexBytes   `json:"attributes"`
	AttributesMask          HexBytes   `json:"attributesMask"`
	MrSigner                HexBytes   `json:"mrsigner"`
	IsvProdID               uint16     `json:"isvprodid"`
	TCBLevels               []QETCBLvl `json:"tcbLevels"`
}

// QETCBLvl is a TCB level keyed by an ISV SVN (QE identity, TDX module
// identities).
type QETCBLvl struct {
	TCB struct {
		IsvSVN uint16 `json:"isvsvn"`
	} `json:"tcb"`
	TCBDate     time.Time `json:"tcbDate"`
	TCBStatus   string    `json:"tcbStatus"`
	AdvisoryIDs []string  `json:"advisoryIDs"`
}

// HexBytes is a byte string written as hex in Intel's JSON.
type HexBytes []byte

// UnmarshalJSON reads a hex string.
func (h *HexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("not hex: %q", s)
	}
	*h = v
	return nil
}

// ParseTCBInfo decodes a TCB info body.
func ParseTCBInfo(b []byte) (*TCBInfo, error) {
	var t TCBInfo
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, &FormatError{Field: "tcb_info", Msg: err.Error()}
	}
	if t.ID == "" {
		t.ID = "SGX" // version 2 has no id
	}
	if t.ID != "SGX" && t.ID != "TDX" {
		return nil, &FormatError{Field: "tcb_info.id", Msg: fmt.Sprintf("%q, want SGX or TDX", t.ID)}
	}
	if t.Version != 2 && t.Version != 3 {
		return nil, &FormatError{Field: "tcb_info.version", Msg: fmt.Sprintf("%d, want 2 or 3", t.Version)}
	}
	if _, err := hex.DecodeString(t.FMSPC); err != nil || len(t.FMSPC) != 12 {
		return nil, &FormatError{Field: "tcb_info.fmspc", Msg: fmt.Sprintf("%q is not 6 hex bytes", t.FMSPC)}
	}
	if _, err := hex.DecodeString(t.PCEID); err != nil || len(t.PCEID) != 4 {
		return nil, &FormatError{Field: "tcb_info.pceId", Msg: fmt.Sprintf("%q is not 2 hex bytes", t.PCEID)}
	}
	if len(t.TCBLevels) == 0 {
		return nil, &FormatError{Field: "tcb_info.tcbLevels", Msg: "empty"}
	}
	for i, l := range t.TCBLevels {
		if t.ID == "TDX" && !l.TCB.HasTDX {
			return nil, &FormatError{Field: fmt.Sprintf("tcb_info.tcbLevels[%d]", i), Msg: "TDX TCB info level without tdxtcbcomponents"}
		}
		if !slices.Contains(platformStatuses, l.TCBStatus) {
			return nil, &FormatError{Field: fmt.Sprintf("tcb_info.tcbLevels[%d].tcbStatus", i), Msg: fmt.Sprintf("%q is not a TCB status", l.TCBStatus)}
		}
	}
	for i, m := range t.TDXModuleIdentities {
		for j, l := range m.TCBLevels {
			if !slices.Contains(moduleStatuses, l.TCBStatus) {
				return nil, &FormatError{Field: fmt.Sprintf("tcb_info.tdxModuleIdentities[%d].tcbLevels[%d].tcbStatus", i, j), Msg: fmt.Sprintf("%q is not a TDX module TCB status", l.TCBStatus)}
			}
		}
	}
	// Intel's library walks the levels sorted from the highest TCB down,
	// whatever order the document lists them in; so do we.
	slices.SortStableFunc(t.TCBLevels, func(a, b TCBLevel) int { return -compareTCB(&a.TCB, &b.TCB) })
	t.FMSPC = strings.ToUpper(t.FMSPC)
	t.PCEID = strings.ToUpper(t.PCEID)
	return &t, nil
}

// The statuses a signed TCB level may carry; anything else is refused
// when the document is parsed, as Intel's library does.
var (
	platformStatuses = []string{"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked"}
	moduleStatuses   = []string{"UpToDate", "OutOfDate", "Revoked"}
)

// compareTCB orders TCB levels: SGX components lexicographically, then
// PCESVN, then TDX components.
func compareTCB(a, b *TCBComponents) int {
	if c := bytes.Compare(a.SGX[:], b.SGX[:]); c != 0 {
		return c
	}
	if a.PCESVN != b.PCESVN {
		return cmp.Compare(a.PCESVN, b.PCESVN)
	}
	return bytes.Compare(a.TDX[:], b.TDX[:])
}

// ParseQEIdentity decodes a QE identity body.
func ParseQEIdentity(b []byte) (*QEIdentity, error) {
	var q QEIdentity
	if err := json.Unmarshal(b, &q); err != nil {
		return nil, &FormatError{Field: "qe_identity", Msg: err.Error()}
	}
	if q.ID != "QE" && q.ID != "TD_QE" {
		return nil, &FormatError{Field: "qe_identity.id", Msg: fmt.Sprintf("%q, want QE or TD_QE", q.ID)}
	}
	if len(q.MrSigner) != 32 || len(q.MiscSelect) != 4 || len(q.MiscSelectMask) != 4 || len(q.Attributes) != 16 || len(q.AttributesMask) != 16 {
		return nil, &FormatError{Field: "qe_identity", Msg: "mrsigner, miscselect or attributes (or a mask) has the wrong length"}
	}
	if len(q.TCBLevels) == 0 {
		return nil, &FormatError{Field: "qe_identity.tcbLevels", Msg: "empty"}
	}
	for i, l := range q.TCBLevels {
		if !slices.Contains(platformStatuses, l.TCBStatus) {
			return nil, &FormatError{Field: fmt.Sprintf("qe_identity.tcbLevels[%d].tcbStatus", i), Msg: fmt.Sprintf("%q is not a TCB status", l.TCBStatus)}
		}
	}
	return &q, nil
}
