package sim

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/asps-project/asps/claims"
)

// NoMatchingLevel, given as Options.TCBStatus, Options.QETCBStatus or
// Options.TDXModuleTCBStatus, puts the platform (or its QE, or its TDX
// module) below every TCB level the collateral lists.
const NoMatchingLevel = "NoMatchingLevel"

// tcbLevel is one rung of the simulated platform TCB ladder. Each level
// differs from the ones above it in the microcode generation (components
// 1 and 2) or the configuration component (7), so a platform whose PCK
// certificate carries exactly a level's SVNs lands on that level and on
// no earlier one.
type tcbLevel struct {
	status     string
	gen        uint8 // SGX TCB components 1 and 2
	configured bool  // component 7: 12 when configured, 0 otherwise
	pcesvn     uint16
	date       string
	advisories []string
}

var platformLadder = []tcbLevel{
	{claims.StatusUpToDate, 8, true, 13, "2025-05-14T00:00:00Z", nil},
	{claims.StatusConfigurationNeeded, 8, false, 13, "2025-05-14T00:00:00Z", []string{"INTEL-SA-00289"}},
	{claims.StatusSWHardeningNeeded, 7, true, 13, "2024-11-13T00:00:00Z", []string{"INTEL-SA-00615"}},
	{claims.StatusConfigurationAndSWHardeningNeeded, 7, false, 13, "2024-11-13T00:00:00Z", []string{"INTEL-SA-00289", "INTEL-SA-00615"}},
	{claims.StatusOutOfDate, 6, true, 13, "2024-03-13T00:00:00Z", []string{"INTEL-SA-00960", "INTEL-SA-00615"}},
	{claims.StatusOutOfDateConfigurationNeeded, 6, false, 13, "2024-03-13T00:00:00Z", []string{"INTEL-SA-00289", "INTEL-SA-00960", "INTEL-SA-00615"}},
	{claims.StatusRevoked, 5, true, 11, "2018-01-04T00:00:00Z", []string{"INTEL-SA-00106", "INTEL-SA-00115"}},
}

// PlatformStatuses lists the TCB statuses the simulated TCB info has a
// level for, in the order Intel lists levels (newest first).
func PlatformStatuses() []string {
	out := make([]string, len(platformLadder))
	for i, l := range platformLadder {
		out[i] = l.status
	}
	return out
}

func (l *tcbLevel) comps() [16]uint8 {
	c := [16]uint8{l.gen, l.gen, 2, 2, 4, 1, 0, 3}
	if l.configured {
		c[6] = 12
	}
	return c
}

// belowLadder is a platform TCB that meets no level.
var belowLadder = tcbLevel{status: NoMatchingLevel, gen: 4, configured: true, pcesvn: 13}

func findPlatformLevel(status string) (*tcbLevel, error) {
	if status == "" {
		status = claims.StatusUpToDate
	}
	if status == NoMatchingLevel {
		return &belowLadder, nil
	}
	for i := range platformLadder {
		if strings.EqualFold(platformLadder[i].status, status) {
			return &platformLadder[i], nil
		}
	}
	return nil, fmt.Errorf("sim: unknown TCB status %q (want one of %s or %s)", status, strings.Join(PlatformStatuses(), ", "), NoMatchingLevel)
}

// svnLevel is a TCB level keyed by one ISV SVN: the QE's, or the TDX
// module's.
type svnLevel struct {
	svn        uint16
	date       string
	status     string
	advisories []string
}

// The quoting enclaves. MRSIGNER and ISVPRODID are those of Intel's QE3
// and TD QE, so that policies written for real quotes read simulated ones
// the same way.
type qeKind struct {
	id         string
	mrsigner   string
	isvprodid  uint16
	mrenclave  string // label for the derived MRENCLAVE
	levels     []svnLevel
	belowLevel uint16
}

var (
	sgxQE = qeKind{
		id: "QE", mrsigner: "8C4F5775D796503E96137F77C68A829A0056AC8DED70140B081B094490C57BFF", isvprodid: 1, mrenclave: "qe3",
		levels: []svnLevel{
			{8, "2024-03-13T00:00:00Z", claims.StatusUpToDate, nil},
			{6, "2021-11-10T00:00:00Z", claims.StatusOutOfDate, []string{"INTEL-SA-00615"}},
			{2, "2019-05-15T00:00:00Z", claims.StatusRevoked, []string{"INTEL-SA-00219", "INTEL-SA-00615"}},
		},
		belowLevel: 1,
	}
	tdQE = qeKind{
		id: "TD_QE", mrsigner: "DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5", isvprodid: 2, mrenclave: "tdqe",
		levels: []svnLevel{
			{4, "2024-03-13T00:00:00Z", claims.StatusUpToDate, nil},
			{2, "2023-02-15T00:00:00Z", claims.StatusOutOfDate, []string{"INTEL-SA-00837"}},
			{1, "2018-08-15T00:00:00Z", claims.StatusRevoked, []string{"INTEL-SA-00202", "INTEL-SA-00837"}},
		},
		belowLevel: 0,
	}
)

// TDX module identities (TCB info v3). The simulated module is major
// version 1 ("TDX_01"): TEE_TCB_SVN[1] = 1 and TEE_TCB_SVN[0] its SVN.
const tdxModuleMajor = 1

var tdxModuleLevels = []svnLevel{
	{6, "2024-11-13T00:00:00Z", claims.StatusUpToDate, nil},
	{4, "2024-03-13T00:00:00Z", claims.StatusOutOfDate, []string{"INTEL-SA-01036", "INTEL-SA-01099"}},
}

// tdxComps are the TDX TCB components every simulated level requires:
// module SVN 2 (judged by the module identity when the major version is
// non-zero), and the TDX late microcode update at 2.
var tdxComps = [16]uint8{2, 0, 2}

func findSVNLevel(levels []svnLevel, below uint16, status, what string) (uint16, *svnLevel, error) {
	if status == "" {
		status = claims.StatusUpToDate
	}
	if status == NoMatchingLevel {
		return below, nil, nil
	}
	var names []string
	for i := range levels {
		if strings.EqualFold(levels[i].status, status) {
			return levels[i].svn, &levels[i], nil
		}
		names = append(names, levels[i].status)
	}
	return 0, nil, fmt.Errorf("sim: unknown %s TCB status %q (want one of %s or %s)", what, status, strings.Join(names, ", "), NoMatchingLevel)
}

// The JSON documents, with Intel's member names in Intel's order.

type svnComponentJSON struct {
	SVN      int    `json:"svn"`
	Category string `json:"category,omitempty"`
	Type     string `json:"type,omitempty"`
}

type tcbJSON struct {
	SGX    []svnComponentJSON `json:"sgxtcbcomponents"`
	PCESVN int                `json:"pcesvn"`
	TDX    []svnComponentJSON `json:"tdxtcbcomponents,omitempty"`
}

type tcbLevelJSON struct {
	TCB         tcbJSON  `json:"tcb"`
	TCBDate     string   `json:"tcbDate"`
	TCBStatus   string   `json:"tcbStatus"`
	AdvisoryIDs []string `json:"advisoryIDs,omitempty"`
}

type tdxModuleJSON struct {
	MrSigner       string `json:"mrsigner"`
	Attributes     string `json:"attributes"`
	AttributesMask string `json:"attributesMask"`
}

type isvsvnJSON struct {
	IsvSVN int `json:"isvsvn"`
}

type svnLevelJSON struct {
	TCB         isvsvnJSON `json:"tcb"`
	TCBDate     string     `json:"tcbDate"`
	TCBStatus   string     `json:"tcbStatus"`
	AdvisoryIDs []string   `json:"advisoryIDs,omitempty"`
}

type tdxModuleIdentityJSON struct {
	ID             string         `json:"id"`
	MrSigner       string         `json:"mrsigner"`
	Attributes     string         `json:"attributes"`
	AttributesMask string         `json:"attributesMask"`
	TCBLevels      []svnLevelJSON `json:"tcbLevels"`
}

type tcbInfoJSON struct {
	ID                      string                  `json:"id"`
	Version                 int                     `json:"version"`
	IssueDate               string                  `json:"issueDate"`
	NextUpdate              string                  `json:"nextUpdate"`
	FMSPC                   string                  `json:"fmspc"`
	PCEID                   string                  `json:"pceId"`
	TCBType                 int                     `json:"tcbType"`
	TCBEvaluationDataNumber int                     `json:"tcbEvaluationDataNumber"`
	TDXModule               *tdxModuleJSON          `json:"tdxModule,omitempty"`
	TDXModuleIdentities     []tdxModuleIdentityJSON `json:"tdxModuleIdentities,omitempty"`
	TCBLevels               []tcbLevelJSON          `json:"tcbLevels"`
}

type qeIdentityJSON struct {
	ID                      string         `json:"id"`
	Version                 int            `json:"version"`
	IssueDate               string         `json:"issueDate"`
	NextUpdate              string         `json:"nextUpdate"`
	TCBEvaluationDataNumber int            `json:"tcbEvaluationDataNumber"`
	MiscSelect              string         `json:"miscselect"`
	MiscSelectMask          string         `json:"miscselectMask"`
	Attributes              string         `json:"attributes"`
	AttributesMask          string         `json:"attributesMask"`
	MrSigner                string         `json:"mrsigner"`
	IsvProdID               int            `json:"isvprodid"`
	TCBLevels               []svnLevelJSON `json:"tcbLevels"`
}

// Intel's names for the SGX and TDX TCB components it describes.
var (
	sgxCompNames = [16][2]string{
		{"BIOS", "Early Microcode Update"}, {"OS/VMM", "SGX Late Microcode Update"}, {"OS/VMM", "TXT SINIT"},
		{"BIOS", ""}, {"BIOS", ""}, {"BIOS", ""}, {"", ""}, {"OS/VMM", "SEAMLDR ACM"},
	}
	tdxCompNames = [16][2]string{
		{"OS/VMM", "TDX Module"}, {"OS/VMM", "TDX Module"}, {"OS/VMM", "TDX Late Microcode Update"},
	}
)

func components(svns [16]uint8, names *[16][2]string) []svnComponentJSON {
	out := make([]svnComponentJSON, 16)
	for i, s := range svns {
		out[i].SVN = int(s)
		if names != nil {
			out[i].Category, out[i].Type = names[i][0], names[i][1]
		}
	}
	return out
}

func jsonTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func svnLevelsJSON(levels []svnLevel) []svnLevelJSON {
	out := make([]svnLevelJSON, len(levels))
	for i, l := range levels {
		out[i] = svnLevelJSON{TCB: isvsvnJSON{int(l.svn)}, TCBDate: l.date, TCBStatus: l.status, AdvisoryIDs: l.advisories}
	}
	return out
}

type tcbInfoParams struct {
	tdx                bool
	issue, next        time.Time
	fmspc              [6]byte
	pceID              [2]byte
	evalNumber         int
	mrSignerSeam       []byte
	seamAttributes     []byte
	seamAttributesMask []byte
}

// tcbInfoBody returns the TCB info v3 body (the signed bytes).
func tcbInfoBody(p tcbInfoParams) ([]byte, error) {
	t := tcbInfoJSON{
		ID: "SGX", Version: 3, IssueDate: jsonTime(p.issue), NextUpdate: jsonTime(p.next),
		FMSPC: upperHex(p.fmspc[:]), PCEID: upperHex(p.pceID[:]), TCBType: 0, TCBEvaluationDataNumber: p.evalNumber,
	}
	if p.tdx {
		t.ID = "TDX"
		m := tdxModuleJSON{MrSigner: upperHex(p.mrSignerSeam), Attributes: upperHex(p.seamAttributes), AttributesMask: upperHex(p.seamAttributesMask)}
		t.TDXModule = &m
		t.TDXModuleIdentities = []tdxModuleIdentityJSON{
			{ID: "TDX_03", MrSigner: m.MrSigner, Attributes: m.Attributes, AttributesMask: m.AttributesMask,
				TCBLevels: svnLevelsJSON([]svnLevel{{3, "2024-11-13T00:00:00Z", claims.StatusUpToDate, nil}})},
			{ID: fmt.Sprintf("TDX_%02X", tdxModuleMajor), MrSigner: m.MrSigner, Attributes: m.Attributes, AttributesMask: m.AttributesMask,
				TCBLevels: svnLevelsJSON(tdxModuleLevels)},
		}
	}
	sgxNames := (*[16][2]string)(nil)
	if p.tdx {
		sgxNames = &sgxCompNames
	}
	for i := range platformLadder {
		l := &platformLadder[i]
		lj := tcbLevelJSON{
			TCB:     tcbJSON{SGX: components(l.comps(), sgxNames), PCESVN: int(l.pcesvn)},
			TCBDate: l.date, TCBStatus: l.status, AdvisoryIDs: l.advisories,
		}
		if p.tdx {
			lj.TCB.TDX = components(tdxComps, &tdxCompNames)
		}
		t.TCBLevels = append(t.TCBLevels, lj)
	}
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("sim: TCB info: %w", err)
	}
	return b, nil
}

// QE identity values as Intel publishes them for QE3 and the TD QE.
const (
	qeMiscSelect     = "00000000"
	qeMiscSelectMask = "FFFFFFFF"
	qeAttributes     = "11000000000000000000000000000000"
	qeAttributesMask = "FBFFFFFFFFFFFFFF0000000000000000"
)

func qeIdentityBody(qe *qeKind, issue, next time.Time, evalNumber int) ([]byte, error) {
	b, err := json.Marshal(qeIdentityJSON{
		ID: qe.id, Version: 2, IssueDate: jsonTime(issue), NextUpdate: jsonTime(next), TCBEvaluationDataNumber: evalNumber,
		MiscSelect: qeMiscSelect, MiscSelectMask: qeMiscSelectMask, Attributes: qeAttributes, AttributesMask: qeAttributesMask,
		MrSigner: qe.mrsigner, IsvProdID: int(qe.isvprodid), TCBLevels: svnLevelsJSON(qe.levels),
	})
	if err != nil {
		return nil, fmt.Errorf("sim: QE identity: %w", err)
	}
	return b, nil
}

// pcsResponse wraps a signed body as Intel PCS serves it:
// {"tcbInfo":BODY,"signature":"HEX"}, the body's bytes unchanged.
func pcsResponse(member string, body []byte, sig []byte) []byte {
	out := make([]byte, 0, len(body)+len(member)+160)
	out = append(out, `{"`...)
	out = append(out, member...)
	out = append(out, `":`...)
	out = append(out, body...)
	out = append(out, `,"signature":"`...)
	out = append(out, hex.EncodeToString(sig)...)
	out = append(out, `"}`...)
	return out
}

// converge combines the platform's TCB status with the QE's or the TDX
// module's as Intel's quote verification library does.
func converge(platform, other string) string {
	switch other {
	case claims.StatusOutOfDate:
		switch platform {
		case claims.StatusUpToDate, claims.StatusSWHardeningNeeded:
			return claims.StatusOutOfDate
		case claims.StatusConfigurationNeeded, claims.StatusConfigurationAndSWHardeningNeeded:
			return claims.StatusOutOfDateConfigurationNeeded
		}
	case claims.StatusRevoked:
		return claims.StatusRevoked
	}
	return platform
}
