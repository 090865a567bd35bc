// Package sim is a DCAP simulator: it makes SGX and TDX quotes and their
// collateral with exactly Intel's structure, signed under a locally made
// test PKI, so that every code path of quote verification runs without SGX
// or TDX hardware, and so that verifier tests can make the cases real data
// cannot give (a revoked PCK certificate, expired collateral, each TCB
// status).
//
// Nothing here is trusted by default: the simulator's root is not Intel's,
// and a verifier accepts its quotes only when given that root explicitly.
//
// The structure is checked against an independent implementation:
// scripts/sim_crosscheck.py has dcap-qvl verify simulated cases, and
// TestDCAPQVLCrossCheck compares its verdicts with asps's. dcap-qvl takes
// SGX quotes only as v3, so the SGX v4 and v5 quotes made here (which
// Intel's specification allows) are checked by asps's verifier alone.
//
//	c, err := sim.NewCase(sim.Options{TEE: claims.TDX, TCBStatus: claims.StatusOutOfDate})
//	v := dcap.NewVerifier(dcap.WithTrustAnchors(c.Root))
//	res, err := v.Verify(c.Quote, c.Collateral, c.At)
package sim

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// Cert names one certificate of the simulated PKI, for the validity knobs.
type Cert string

// The certificates.
const (
	CertPCK        Cert = "pck"         // the platform's PCK certificate
	CertPCKCA      Cert = "pck-ca"      // the PCK Platform or Processor CA
	CertRoot       Cert = "root"        // the root CA
	CertTCBSigning Cert = "tcb-signing" // the TCB info and QE identity signer
)

// CRL names one of the two CRLs.
type CRL string

// The CRLs.
const (
	CRLRoot CRL = "root" // the root CA CRL (revokes PCK CAs and the TCB signer)
	CRLPCK  CRL = "pck"  // the PCK CRL of the platform's PCK CA
)

// QEField names a field of the QE report that the QE identity constrains.
type QEField string

// The QE identity fields.
const (
	QEMrSigner   QEField = "mrsigner"
	QEIsvProdID  QEField = "isvprodid"
	QEAttributes QEField = "attributes" // a bit under attributesMask (DEBUG)
	QEMiscSelect QEField = "miscselect"
)

// Tamper names one signature or binding to break.
type Tamper string

// The tamperings.
const (
	TamperQuoteSignature      Tamper = "quote-signature"       // flip a bit of the attestation key's signature
	TamperQEReportSignature   Tamper = "qe-report-signature"   // flip a bit of the PCK key's signature over the QE report
	TamperQEReportData        Tamper = "qe-report-data"        // QE report data not SHA-256(attestation key ‖ auth data) (but signed)
	TamperTCBInfoSignature    Tamper = "tcb-info-signature"    // flip a bit of the TCB info signature
	TamperQEIdentitySignature Tamper = "qe-identity-signature" // flip a bit of the QE identity signature
	TamperQEVendor            Tamper = "qe-vendor"             // a QE vendor ID that is not Intel's (signed)
)

// Options choose what the simulator makes. The zero value is an
// up-to-date SGX v3 quote with a zero identity and zero report data, and
// collateral valid now.
type Options struct {
	// PKI signs everything; nil means DefaultPKI.
	PKI *PKI
	// TEE is claims.SGX (the default) or claims.TDX.
	TEE claims.TEE
	// QuoteVersion is 3, 4 or 5 for SGX (default 3), 4 or 5 for TDX
	// (default 4).
	QuoteVersion int
	// BodyType, for v5 only: 1 (SGX, the only one for SGX), 2 (TD 1.0)
	// or 3 (TD 1.5, the default for TDX).
	BodyType int
	// Identity is what the enclave or TD reports; ReportData its 64
	// bytes of report data.
	Identity   Identity
	ReportData [64]byte
	// Now is the reference time: the collateral and every certificate
	// are valid at Now unless a knob says otherwise. Zero means the
	// current time (whole seconds).
	Now time.Time

	// Platform.

	// PCKCA is the CA that issues the PCK certificate: CAProcessor (the
	// SGX default) or CAPlatform (the TDX default).
	PCKCA PCKCA
	// FMSPC is 12 hex digits; empty means 00906ED50000 (SGX) or
	// 90C06F000000 (TDX).
	FMSPC string
	// TCBStatus puts the platform on the TCB level of that status: its
	// PCK certificate's component SVNs and PCESVN (and for TDX its
	// TEE_TCB_SVN) are chosen to land exactly there. One of
	// PlatformStatuses() or NoMatchingLevel; empty means UpToDate.
	TCBStatus string
	// QETCBStatus puts the quoting enclave on its QE identity level:
	// UpToDate (the default), OutOfDate, Revoked or NoMatchingLevel.
	QETCBStatus string
	// TDXModuleTCBStatus puts the TDX module on its module identity
	// level: UpToDate (the default), OutOfDate or NoMatchingLevel.
	TDXModuleTCBStatus string
	// TCBEvaluationDataNumber of the TCB info and QE identity; zero
	// means 17.
	TCBEvaluationDataNumber int

	// Revocation: put a serial number on a CRL.

	RevokePCK        bool // the PCK certificate, on the PCK CRL
	RevokePCKCA      bool // the PCK CA, on the root CA CRL
	RevokeTCBSigning bool // the TCB signing certificate, on the root CA CRL

	// Dates, relative to Now.

	CollateralExpired     bool // TCB info and QE identity: nextUpdate a day before Now
	CollateralNotYetValid bool // TCB info and QE identity: issueDate a day after Now
	CRLExpired            bool // both CRLs: nextUpdate a day before Now
	ExpiredCert           Cert // this certificate expired a day before Now
	NotYetValidCert       Cert // this certificate becomes valid a day after Now

	// Mismatches.

	WrongFMSPC         bool    // TCB info for another FMSPC than the PCK certificate's
	WrongPCEID         bool    // TCB info for another PCE ID
	CRLWrongKey        CRL     // this CRL signed by a key that is not its issuer's
	TDXModuleMismatch  bool    // TCB info's TDX module MRSIGNER is not the TD report's MRSIGNER_SEAM
	QEIdentityMismatch QEField // the QE report differs from the QE identity in this field
	Tamper             Tamper  // break this signature or binding
	// CertData chooses the certification data layout (see CertDataLayout).
	CertData CertDataLayout
}

// Expected is the verdict a correct verifier reaches on an accepted case.
type Expected struct {
	// Status is the overall TCB status: the platform's, converged with
	// the QE's and (TDX) the TDX module's.
	Status          string
	AdvisoryIDs     []string
	PlatformStatus  string
	QEStatus        string
	TDXModuleStatus string // TDX only
}

// Case is one simulated quote with its collateral.
type Case struct {
	// Options are the options the case was made with, defaults filled in.
	Options Options
	Quote   []byte
	// Collateral is the collateral, parsed; Raw the same as Intel PCS
	// pieces (PEM chains, DER CRLs, bodies with hex signatures).
	Collateral *dcap.Collateral
	Raw        dcap.RawCollateral
	// TCBInfoResponse and QEIdentityResponse are the signed documents as
	// Intel PCS serves them: {"tcbInfo":…,"signature":"…"} and
	// {"enclaveIdentity":…,"signature":"…"}.
	TCBInfoResponse    []byte
	QEIdentityResponse []byte
	// Root is the trust anchor to verify against.
	Root *x509.Certificate
	// PCKChain is the chain in the quote: PCK certificate, PCK CA, root.
	PCKChain []*x509.Certificate
	// At is the time to verify at (Options.Now).
	At time.Time
	// Expected is the verdict on success: TCB status and advisories. It
	// holds also when WantErr is ErrTCBRevoked (the status is Revoked).
	Expected Expected
	// WantErr is the reason (a dcap.Err* sentinel) a correct verifier
	// rejects the case for, or nil when it should accept it. When the
	// options set several faults it names the first one a verifier
	// following Intel's order meets.
	WantErr error
}

var defaultFMSPC = map[claims.TEE]string{claims.SGX: "00906ED50000", claims.TDX: "90C06F000000"}

// normalize fills in defaults and checks the options.
func (o *Options) normalize() error {
	if o.PKI == nil {
		p, err := DefaultPKI()
		if err != nil {
			return err
		}
		o.PKI = p
	}
	switch o.TEE {
	case "", claims.SGX:
		o.TEE = claims.SGX
		if o.QuoteVersion == 0 {
			o.QuoteVersion = 3
		}
		switch o.QuoteVersion {
		case 3, 4:
			if o.BodyType != 0 && o.BodyType != dcap.BodyTypeSGX {
				return fmt.Errorf("sim: body type %d in an SGX v%d quote", o.BodyType, o.QuoteVersion)
			}
		case 5:
			if o.BodyType != 0 && o.BodyType != dcap.BodyTypeSGX {
				return fmt.Errorf("sim: body type %d in an SGX quote (want 1)", o.BodyType)
			}
		default:
			return fmt.Errorf("sim: SGX quote version %d (want 3, 4 or 5)", o.QuoteVersion)
		}
		o.BodyType = dcap.BodyTypeSGX
		if o.PCKCA == "" {
			o.PCKCA = CAProcessor
		}
		if o.TDXModuleMismatch || o.TDXModuleTCBStatus != "" {
			return errors.New("sim: TDX module options for an SGX quote")
		}
	case claims.TDX:
		if o.QuoteVersion == 0 {
			o.QuoteVersion = 4
		}
		switch o.QuoteVersion {
		case 4:
			if o.BodyType != 0 && o.BodyType != dcap.BodyTypeTD10 {
				return fmt.Errorf("sim: body type %d in a TDX v4 quote (v4 carries TD 1.0 only)", o.BodyType)
			}
			o.BodyType = dcap.BodyTypeTD10
		case 5:
			if o.BodyType == 0 {
				o.BodyType = dcap.BodyTypeTD15
			}
			if o.BodyType != dcap.BodyTypeTD10 && o.BodyType != dcap.BodyTypeTD15 {
				return fmt.Errorf("sim: body type %d in a TDX v5 quote (want 2 or 3)", o.BodyType)
			}
		default:
			return fmt.Errorf("sim: TDX quote version %d (want 4 or 5)", o.QuoteVersion)
		}
		if o.PCKCA == "" {
			o.PCKCA = CAPlatform
		}
	default:
		return fmt.Errorf("sim: TEE %q (want sgx or tdx)", o.TEE)
	}
	if o.PCKCA != CAProcessor && o.PCKCA != CAPlatform {
		return fmt.Errorf("sim: PCK CA %q (want processor or platform)", o.PCKCA)
	}
	if o.FMSPC == "" {
		o.FMSPC = defaultFMSPC[o.TEE]
	}
	if b, err := hex.DecodeString(o.FMSPC); err != nil || len(b) != 6 {
		return fmt.Errorf("sim: FMSPC %q is not 12 hex digits", o.FMSPC)
	}
	o.FMSPC = strings.ToUpper(o.FMSPC)
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC().Truncate(time.Second)
	if o.TCBEvaluationDataNumber == 0 {
		o.TCBEvaluationDataNumber = 17
	}
	for _, c := range []Cert{o.ExpiredCert, o.NotYetValidCert} {
		switch c {
		case "", CertPCK, CertPCKCA, CertRoot, CertTCBSigning:
		default:
			return fmt.Errorf("sim: unknown certificate %q (want pck, pck-ca, root or tcb-signing)", c)
		}
	}
	switch o.CRLWrongKey {
	case "", CRLRoot, CRLPCK:
	default:
		return fmt.Errorf("sim: unknown CRL %q (want root or pck)", o.CRLWrongKey)
	}
	switch o.QEIdentityMismatch {
	case "", QEMrSigner, QEIsvProdID, QEAttributes, QEMiscSelect:
	default:
		return fmt.Errorf("sim: unknown QE identity field %q", o.QEIdentityMismatch)
	}
	switch o.Tamper {
	case "", TamperQuoteSignature, TamperQEReportSignature, TamperQEReportData, TamperTCBInfoSignature, TamperQEIdentitySignature, TamperQEVendor:
	default:
		return fmt.Errorf("sim: unknown tampering %q", o.Tamper)
	}
	if o.CertData < CertDataAuto || o.CertData > CertDataPCKChainOnly {
		return fmt.Errorf("sim: unknown certification data layout %d", o.CertData)
	}
	return nil
}

// validity returns a certificate's validity window: the default unless a
// knob expires it or moves it to the future.
func (o *Options) validity(c Cert, notBefore, notAfter time.Time) (time.Time, time.Time, bool) {
	switch c {
	case o.ExpiredCert:
		return o.Now.AddDate(-3, 0, 0), o.Now.Add(-24 * time.Hour), true
	case o.NotYetValidCert:
		return o.Now.Add(24 * time.Hour), o.Now.AddDate(3, 0, 0), true
	}
	return notBefore, notAfter, false
}

// buildPlatform makes the platform the options describe.
func buildPlatform(o *Options) (*platform, error) {
	p := o.PKI
	tee := string(o.TEE)
	pl := &platform{tee: tee, ca: o.PCKCA}

	level, err := findPlatformLevel(o.TCBStatus)
	if err != nil {
		return nil, err
	}
	qe := &sgxQE
	if o.TEE == claims.TDX {
		qe = &tdQE
	}
	if pl.qeSVN, _, err = findSVNLevel(qe.levels, qe.belowLevel, o.QETCBStatus, "QE"); err != nil {
		return nil, err
	}
	if o.TEE == claims.TDX {
		moduleSVN, _, err := findSVNLevel(tdxModuleLevels, 3, o.TDXModuleTCBStatus, "TDX module")
		if err != nil {
			return nil, err
		}
		pl.teeTCBSVN = tdxComps
		pl.teeTCBSVN[0] = uint8(moduleSVN)
		pl.teeTCBSVN[1] = tdxModuleMajor
	}

	// Certificates: the root and the PCK CA, reissued (same key, same
	// serial) only when a validity knob names them.
	pl.root = p.Root
	if nb, na, changed := o.validity(CertRoot, caNotBefore, caNotAfter); changed {
		if pl.root, err = p.issueRoot(nb, na); err != nil {
			return nil, err
		}
	}
	pl.caCert, pl.caKey = p.pckCA(o.PCKCA)
	if nb, na, changed := o.validity(CertPCKCA, caNotBefore, caNotAfter); changed {
		cn := ProcessorCACN
		if o.PCKCA == CAPlatform {
			cn = PlatformCACN
		}
		if pl.caCert, err = p.issueCA(cn, string(o.PCKCA), pl.caKey, nb, na); err != nil {
			return nil, err
		}
	}

	v := PCKValues{CompSVN: level.comps(), PCESVN: level.pcesvn}
	copy(v.PPID[:], p.derive("ppid/"+tee, 16))
	copy(v.CPUSVN[:], v.CompSVN[:])
	fm, _ := hex.DecodeString(o.FMSPC)
	copy(v.FMSPC[:], fm)
	if o.PCKCA == CAPlatform {
		v.SGXType = 1 // Scalable
		v.Platform = true
		copy(v.PlatformInstanceID[:], p.derive("platform-instance/"+tee, 16))
		v.DynamicPlatform, v.CachedKeys, v.SMTEnabled = true, false, true
	}
	pl.values = v
	if pl.pckKey, err = deriveKey(p.secret, "pck/"+tee+"/"+string(o.PCKCA)); err != nil {
		return nil, err
	}
	nb, na, _ := o.validity(CertPCK, pckNotBefore, pckNotAfter)
	if pl.pck, err = p.issuePCK(o.PCKCA, v, pl.caCert, pl.caKey, &pl.pckKey.PublicKey, nb, na); err != nil {
		return nil, err
	}
	pl.chainPEM = dcap.EncodeChainPEM([]*x509.Certificate{pl.pck, pl.caCert, pl.root})

	// The quoting enclave and the attestation key it certifies.
	if pl.attKey, err = deriveKey(p.secret, "attestation-key/"+tee); err != nil {
		return nil, err
	}
	copy(pl.qeID[:], p.derive("qe-id/"+tee, 16))
	pl.authData = make([]byte, 32)
	for i := range pl.authData {
		pl.authData[i] = byte(i)
	}
	ak, err := publicXY(&pl.attKey.PublicKey)
	if err != nil {
		return nil, err
	}
	rep := sgxReport{CPUSVN: v.CPUSVN, IsvProdID: qe.isvprodid, IsvSVN: pl.qeSVN}
	rep.Attributes[0] = dcap.AttrInit | dcap.AttrMode64 | dcap.AttrProvisionKey
	rep.Attributes[8] = 0xe7
	copy(rep.MrEnclave[:], p.derive("qe-mrenclave/"+qe.mrenclave, 32))
	signer, _ := hex.DecodeString(qe.mrsigner)
	copy(rep.MrSigner[:], signer)
	switch o.QEIdentityMismatch {
	case QEMrSigner:
		rep.MrSigner[31] ^= 0xff
	case QEIsvProdID:
		rep.IsvProdID++
	case QEAttributes:
		rep.Attributes[0] |= dcap.AttrDebug
	case QEMiscSelect:
		rep.MiscSelect |= 1
	}
	bind := append(append([]byte{}, ak[:]...), pl.authData...)
	h := sha256.Sum256(bind)
	copy(rep.ReportData[:32], h[:])
	if o.Tamper == TamperQEReportData {
		rep.ReportData[0] ^= 0xff
	}
	pl.qeReport = rep.bytes()
	if pl.qeSig, err = signRS(pl.pckKey, pl.qeReport); err != nil {
		return nil, err
	}
	if o.Tamper == TamperQEReportSignature {
		pl.qeSig[40] ^= 0x01
	}
	return pl, nil
}

// collateralParts are the collateral of a case.
type collateralParts struct {
	raw                dcap.RawCollateral
	tcbInfoResponse    []byte
	qeIdentityResponse []byte
	col                *dcap.Collateral
}

func buildCollateral(o *Options, pl *platform) (*collateralParts, error) {
	p := o.PKI
	now := o.Now
	day := 24 * time.Hour
	issue, next := now.Add(-day), now.Add(29*day)
	switch {
	case o.CollateralExpired:
		issue, next = now.Add(-31*day), now.Add(-day)
	case o.CollateralNotYetValid:
		issue, next = now.Add(day), now.Add(31*day)
	}
	tcbCert := p.TCBSigning
	if nb, na, changed := o.validity(CertTCBSigning, caNotBefore, caNotAfter); changed {
		var err error
		if tcbCert, err = p.issueTCBSigning(nb, na); err != nil {
			return nil, err
		}
	}

	// TCB info.
	fmspc := pl.values.FMSPC
	if o.WrongFMSPC {
		fmspc[5] ^= 0x01
	}
	pceID := pl.values.PCEID
	if o.WrongPCEID {
		pceID[1] ^= 0x01
	}
	mrSignerSeam := o.Identity.MrSignerSeam
	if o.TDXModuleMismatch {
		mrSignerSeam[47] ^= 0xff
	}
	tiBody, err := tcbInfoBody(tcbInfoParams{
		tdx: o.TEE == claims.TDX, issue: issue, next: next, fmspc: fmspc, pceID: pceID,
		evalNumber: o.TCBEvaluationDataNumber, mrSignerSeam: mrSignerSeam[:],
		seamAttributes: o.Identity.SeamAttributes[:], seamAttributesMask: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	})
	if err != nil {
		return nil, err
	}
	tiSig, err := signRS(p.tcbKey, tiBody)
	if err != nil {
		return nil, err
	}
	if o.Tamper == TamperTCBInfoSignature {
		tiSig[40] ^= 0x01
	}

	// QE identity.
	qe := &sgxQE
	if o.TEE == claims.TDX {
		qe = &tdQE
	}
	qiBody, err := qeIdentityBody(qe, issue, next, o.TCBEvaluationDataNumber)
	if err != nil {
		return nil, err
	}
	qiSig, err := signRS(p.tcbKey, qiBody)
	if err != nil {
		return nil, err
	}
	if o.Tamper == TamperQEIdentitySignature {
		qiSig[40] ^= 0x01
	}

	// CRLs.
	this, nextCRL := now.Add(-day), now.Add(29*day)
	if o.CRLExpired {
		this, nextCRL = now.Add(-31*day), now.Add(-day)
	}
	var rootRevoked []*big.Int
	if o.RevokePCKCA {
		rootRevoked = append(rootRevoked, pl.caCert.SerialNumber)
	}
	if o.RevokeTCBSigning {
		rootRevoked = append(rootRevoked, tcbCert.SerialNumber)
	}
	rootCRL, err := makeCRL(p, pl.root, p.rootKey, o.CRLWrongKey == CRLRoot, "root", rootRevoked, this, nextCRL)
	if err != nil {
		return nil, err
	}
	// The PCK CRL lists a few other platforms, as Intel's always does.
	pckRevoked := []*big.Int{p.serial("revoked-platform/1"), p.serial("revoked-platform/2")}
	if o.RevokePCK {
		pckRevoked = append(pckRevoked, pl.pck.SerialNumber)
	}
	pckCRL, err := makeCRL(p, pl.caCert, pl.caKey, o.CRLWrongKey == CRLPCK, "pck/"+string(o.PCKCA), pckRevoked, this, nextCRL)
	if err != nil {
		return nil, err
	}

	signingChain := dcap.EncodeChainPEM([]*x509.Certificate{tcbCert, pl.root})
	cp := &collateralParts{
		raw: dcap.RawCollateral{
			PCKCRLIssuerChain:     dcap.EncodeChainPEM([]*x509.Certificate{pl.caCert, pl.root}),
			RootCACRL:             rootCRL,
			PCKCRL:                pckCRL,
			TCBInfoIssuerChain:    signingChain,
			TCBInfo:               tiBody,
			TCBInfoSignature:      []byte(hex.EncodeToString(tiSig[:])),
			QEIdentityIssuerChain: signingChain,
			QEIdentity:            qiBody,
			QEIdentitySignature:   []byte(hex.EncodeToString(qiSig[:])),
		},
		tcbInfoResponse:    pcsResponse("tcbInfo", tiBody, tiSig[:]),
		qeIdentityResponse: pcsResponse("enclaveIdentity", qiBody, qiSig[:]),
	}
	if cp.col, err = dcap.NewCollateral(cp.raw); err != nil {
		return nil, fmt.Errorf("sim: collateral does not parse: %w", err)
	}
	return cp, nil
}

// makeCRL issues a CRL as issuer (or, with wrongKey, under issuer's name
// but signed by another key).
func makeCRL(p *PKI, issuer *x509.Certificate, key *ecdsa.PrivateKey, wrongKey bool, label string, revoked []*big.Int, this, next time.Time) ([]byte, error) {
	signer := key
	if wrongKey {
		k, err := deriveKey(p.secret, "wrong-crl-key/"+label)
		if err != nil {
			return nil, err
		}
		signer = k
		// CreateRevocationList takes the issuer's name and key ID from
		// this certificate and does not compare its key with the signer.
		fake := *issuer
		fake.PublicKey = &k.PublicKey
		issuer = &fake
	}
	tmpl := &x509.RevocationList{
		SignatureAlgorithm: x509.ECDSAWithSHA256,
		Number:             big.NewInt(1),
		ThisUpdate:         this,
		NextUpdate:         next,
	}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: s, RevocationTime: this, ReasonCode: 1, // keyCompromise, as Intel writes
		})
	}
	der, err := x509.CreateRevocationList(nil, tmpl, issuer, signer)
	if err != nil {
		return nil, fmt.Errorf("sim: %s CRL: %w", label, err)
	}
	return der, nil
}

// NewCase makes a quote and its collateral.
func NewCase(opts Options) (*Case, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	pl, err := buildPlatform(&opts)
	if err != nil {
		return nil, err
	}
	q, err := pl.buildQuote(quoteParams{
		version: uint16(opts.QuoteVersion), bodyType: uint16(opts.BodyType), identity: &opts.Identity,
		reportData: opts.ReportData, layout: opts.CertData, tamper: opts.Tamper,
	})
	if err != nil {
		return nil, err
	}
	cp, err := buildCollateral(&opts, pl)
	if err != nil {
		return nil, err
	}
	c := &Case{
		Options: opts, Quote: q, Collateral: cp.col, Raw: cp.raw,
		TCBInfoResponse: cp.tcbInfoResponse, QEIdentityResponse: cp.qeIdentityResponse,
		Root: opts.PKI.Root, PCKChain: []*x509.Certificate{pl.pck, pl.caCert, pl.root},
		At: opts.Now,
	}
	if c.Expected, err = expected(&opts); err != nil {
		return nil, err
	}
	c.WantErr = wantErr(&opts, c.Expected)
	return c, nil
}

func expected(o *Options) (Expected, error) {
	var e Expected
	level, err := findPlatformLevel(o.TCBStatus)
	if err != nil {
		return e, err
	}
	qe := &sgxQE
	if o.TEE == claims.TDX {
		qe = &tdQE
	}
	_, qeLevel, err := findSVNLevel(qe.levels, qe.belowLevel, o.QETCBStatus, "QE")
	if err != nil {
		return e, err
	}
	e.PlatformStatus = level.status
	e.Status = level.status
	adv := append([]string{}, level.advisories...)
	if o.TEE == claims.TDX {
		_, mod, err := findSVNLevel(tdxModuleLevels, 3, o.TDXModuleTCBStatus, "TDX module")
		if err != nil {
			return e, err
		}
		if mod != nil {
			e.TDXModuleStatus = mod.status
			e.Status = converge(e.Status, mod.status)
			adv = append(adv, mod.advisories...)
		} else {
			e.TDXModuleStatus = NoMatchingLevel
		}
	}
	if qeLevel != nil {
		e.QEStatus = qeLevel.status
		e.Status = converge(e.Status, qeLevel.status)
		adv = append(adv, qeLevel.advisories...)
	} else {
		e.QEStatus = NoMatchingLevel
	}
	seen := map[string]bool{}
	e.AdvisoryIDs = []string{}
	for _, a := range adv {
		if !seen[a] {
			seen[a] = true
			e.AdvisoryIDs = append(e.AdvisoryIDs, a)
		}
	}
	return e, nil
}

// wantErr maps the options' faults to the verdict reason, in the order a
// verifier following Intel's specification meets them.
func wantErr(o *Options, e Expected) error {
	layoutOK := o.CertData == CertDataAuto ||
		(o.CertData == CertDataInline && o.QuoteVersion == 3) ||
		(o.CertData == CertDataQEReport && o.QuoteVersion != 3)
	switch {
	case !layoutOK:
		return dcap.ErrMalformed
	case o.Tamper == TamperQEVendor:
		return dcap.ErrQEVendor
	case o.ExpiredCert == CertRoot || o.NotYetValidCert == CertRoot,
		o.ExpiredCert == CertPCKCA || o.NotYetValidCert == CertPCKCA,
		o.ExpiredCert == CertPCK || o.NotYetValidCert == CertPCK:
		return dcap.ErrCertExpired
	case o.CRLWrongKey != "":
		return dcap.ErrCRLInvalid
	case o.CRLExpired:
		return dcap.ErrCRLExpired
	case o.RevokePCK:
		return dcap.ErrPCKRevoked
	case o.RevokePCKCA:
		return dcap.ErrIntermediateRevoked
	case o.Tamper == TamperQEReportSignature:
		return dcap.ErrQEReportSignature
	case o.Tamper == TamperQEReportData:
		return dcap.ErrQEReportData
	case o.Tamper == TamperQuoteSignature:
		return dcap.ErrQuoteSignature
	case o.RevokeTCBSigning:
		return dcap.ErrTCBSigningRevoked
	case o.Tamper == TamperTCBInfoSignature:
		return dcap.ErrTCBInfoSignature
	case o.Tamper == TamperQEIdentitySignature:
		return dcap.ErrQEIdentitySignature
	case o.CollateralExpired, o.CollateralNotYetValid:
		return dcap.ErrCollateralExpired
	case o.ExpiredCert == CertTCBSigning || o.NotYetValidCert == CertTCBSigning:
		return dcap.ErrCertExpired
	case o.WrongFMSPC:
		return dcap.ErrFMSPCMismatch
	case o.WrongPCEID:
		return dcap.ErrPCEIDMismatch
	case o.QEIdentityMismatch != "":
		return dcap.ErrQEIdentityMismatch
	case e.QEStatus == NoMatchingLevel:
		return dcap.ErrQENoMatchingTCBLevel
	case e.PlatformStatus == NoMatchingLevel:
		return dcap.ErrNoMatchingTCBLevel
	case o.TDXModuleMismatch:
		return dcap.ErrTDXModuleMismatch
	case e.TDXModuleStatus == NoMatchingLevel:
		return dcap.ErrTDXModuleTCB
	case e.Status == claims.StatusRevoked:
		return dcap.ErrTCBRevoked
	}
	return nil
}

// expectedFile is DIR/expected.json, in the layout of the project's
// testdata/dcap cases.
type expectedFile struct {
	Source        string    `json:"source"`
	VerifyAt      time.Time `json:"verify_at"`
	Accepted      bool      `json:"accepted"`
	Error         string    `json:"error,omitempty"`
	Status        string    `json:"status"`
	AdvisoryIDs   []string  `json:"advisory_ids"`
	QuoteVersion  int       `json:"quote_version"`
	TEE           string    `json:"tee"`
	BodyType      int       `json:"body_type,omitempty"`
	Debug         bool      `json:"debug"`
	ReportData    string    `json:"report_data"`
	FMSPC         string    `json:"fmspc"`
	RootKeySHA256 string    `json:"root_key_sha256"`
}

// WriteDir writes the case to dir (created if missing): quote.bin,
// collateral.json (dcap-qvl's layout), root.pem, the PCS responses
// tcb_info.json and qe_identity.json, and expected.json (the verdict a
// correct verifier reaches, and the time to verify at).
func (c *Case) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sim: write case: %w", err)
	}
	col, err := json.MarshalIndent(c.Collateral, "", " ")
	if err != nil {
		return fmt.Errorf("sim: write case: collateral: %w", err)
	}
	o := &c.Options
	exp := expectedFile{
		Source: "asps simulator", VerifyAt: c.At, Accepted: c.WantErr == nil,
		Status: c.Expected.Status, AdvisoryIDs: c.Expected.AdvisoryIDs,
		QuoteVersion: o.QuoteVersion, TEE: string(o.TEE), Debug: o.Identity.Debug,
		ReportData: hex.EncodeToString(o.ReportData[:]), FMSPC: o.FMSPC,
		RootKeySHA256: RootKeyID(c.Root),
	}
	if o.QuoteVersion == 5 {
		exp.BodyType = o.BodyType
	}
	if c.WantErr != nil {
		exp.Error = c.WantErr.Error()
	}
	expJSON, err := json.MarshalIndent(exp, "", " ")
	if err != nil {
		return fmt.Errorf("sim: write case: expected: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"quote.bin", c.Quote},
		{"collateral.json", append(col, '\n')},
		{"root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Root.Raw})},
		{"tcb_info.json", c.TCBInfoResponse},
		{"qe_identity.json", c.QEIdentityResponse},
		{"expected.json", append(expJSON, '\n')},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("sim: write case: %w", err)
		}
	}
	return nil
}

// WriteCase makes a case and writes it to dir (see Case.WriteDir).
func WriteCase(dir string, opts Options) error {
	c, err := NewCase(opts)
	if err != nil {
		return err
	}
	return c.WriteDir(dir)
}

// RootKeyID returns the hex SHA-256 of a certificate's public key info,
// which identifies a trust anchor (verifiers pin roots by key).
func RootKeyID(c *x509.Certificate) string {
	s := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(s[:])
}
