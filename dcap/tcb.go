package dcap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/asps-project/asps/claims"
)

// matchQEIdentity checks the quoting enclave's report against its signed
// identity (MRSIGNER, ISVPRODID, MISCSELECT and ATTRIBUTES under their
// masks) and returns the QE's TCB level from its ISVSVN.
func matchQEIdentity(r *EnclaveReport, qi *QEIdentity) (*QETCBLvl, error) {
	if !bytes.Equal(r.MrSigner[:], qi.MrSigner) {
		return nil, reject(CheckQEIdentityMatch, ErrQEIdentityMismatch, "QE MRSIGNER %x, want %x", r.MrSigner, []byte(qi.MrSigner))
	}
	if r.IsvProdID != qi.IsvProdID {
		return nil, reject(CheckQEIdentityMatch, ErrQEIdentityMismatch, "QE ISVPRODID %d, want %d", r.IsvProdID, qi.IsvProdID)
	}
	// MISCSELECT is a little-endian 32-bit field of the report; TCB JSON
	// gives its bytes in the same order, so compare byte by byte (as
	// Intel's and Phala's libraries do).
	var ms [4]byte
	binary.LittleEndian.PutUint32(ms[:], r.MiscSelect)
	if !maskedEqual(ms[:], qi.MiscSelect, qi.MiscSelectMask) {
		return nil, reject(CheckQEIdentityMatch, ErrQEIdentityMismatch, "QE MISCSELECT %x under mask %x, want %x", ms, []byte(qi.MiscSelectMask), []byte(qi.MiscSelect))
	}
	if !maskedEqual(r.Attributes[:], qi.Attributes, qi.AttributesMask) {
		return nil, reject(CheckQEIdentityMatch, ErrQEIdentityMismatch, "QE ATTRIBUTES %x under mask %x, want %x", r.Attributes, []byte(qi.AttributesMask), []byte(qi.Attributes))
	}
	for i := range qi.TCBLevels {
		if r.IsvSVN >= qi.TCBLevels[i].TCB.IsvSVN {
			return &qi.TCBLevels[i], nil
		}
	}
	return nil, reject(CheckQEIdentityMatch, ErrQENoMatchingTCBLevel, "QE ISVSVN %d is below every QE TCB level", r.IsvSVN)
}

func maskedEqual(got, want, mask []byte) bool {
	if len(got) != len(want) || len(got) != len(mask) {
		return false
	}
	for i := range got {
		if got[i]&mask[i] != want[i]&mask[i] {
			return false
		}
	}
	return true
}

// matchTCBLevel returns the first TCB level (Intel lists them from newest
// to oldest) that the platform meets: every SGX TCB component SVN and the
// PCESVN of the PCK certificate at least the level's, and for TDX every TEE
// TCB SVN of the TD report at least the level's TDX component. When the TDX
// module's major version (TEE_TCB_SVN[1]) is non-zero, the first two bytes
// describe the module and are judged by the module identity instead.
func matchTCBLevel(ti *TCBInfo, pck *PCKExtensions, td *TDReport, label string) (*TCBLevel, error) {
	for i := range ti.TCBLevels {
		l := &ti.TCBLevels[i]
		if !svnsAtLeast(pck.CompSVN[:], l.TCB.SGX[:], 0) || pck.PCESVN < l.TCB.PCESVN {
			continue
		}
		if td != nil {
			start := 0
			if td.TeeTcbSvn[1] > 0 {
				start = 2
			}
			if !svnsAtLeast(td.TeeTcbSvn[:], l.TCB.TDX[:], start) {
				continue
			}
		}
		return l, nil
	}
	detail := fmt.Sprintf("platform SGX TCB components %v, PCESVN %d", pck.CompSVN, pck.PCESVN)
	if td != nil {
		detail += fmt.Sprintf(", %sTEE TCB SVN %x", label, td.TeeTcbSvn)
	}
	return nil, reject(CheckTCBLevel, ErrNoMatchingTCBLevel, "%s meet none of the %d TCB levels of FMSPC %s", detail, len(ti.TCBLevels), ti.FMSPC)
}

func svnsAtLeast(have, need []uint8, start int) bool {
	for i := start; i < len(need); i++ {
		if have[i] < need[i] {
			return false
		}
	}
	return true
}

// matchTDXModule checks the TDX module (SEAM) identity in the TD report
// against TCB info v3 and returns the module's TCB level, or nil when the
// TCB info has no module identities for this module.
func matchTDXModule(ti *TCBInfo, td *TDReport) (*QETCBLvl, error) {
	check := func(id string, signer, attrs, mask []byte) error {
		if !bytes.Equal(td.MrSignerSeam[:], signer) {
			return reject(CheckTDXModule, ErrTDXModuleMismatch, "%s: MRSIGNER_SEAM %x, want %x", id, td.MrSignerSeam, signer)
		}
		if !maskedEqual(td.SeamAttributes[:], attrs, mask) {
			return reject(CheckTDXModule, ErrTDXModuleMismatch, "%s: SEAM_ATTRIBUTES %x under mask %x, want %x", id, td.SeamAttributes, mask, attrs)
		}
		return nil
	}
	if ti.TDXModule == nil {
		return nil, reject(CheckTDXModule, ErrTDXModuleMismatch, "TDX TCB info has no tdxModule")
	}
	major := td.TeeTcbSvn[1]
	if major == 0 {
		// TDX 1.0 modules: one identity for all, no module TCB levels.
		m := ti.TDXModule
		return nil, check("tdxModule", m.MrSigner, m.Attributes, m.AttributesMask)
	}
	id := fmt.Sprintf("TDX_%02X", major)
	for i := range ti.TDXModuleIdentities {
		mi := &ti.TDXModuleIdentities[i]
		if !strings.EqualFold(mi.ID, id) {
			continue
		}
		if err := check(id, mi.MrSigner, mi.Attributes, mi.AttributesMask); err != nil {
			return nil, err
		}
		svn := uint16(td.TeeTcbSvn[0])
		for j := range mi.TCBLevels {
			if svn >= mi.TCBLevels[j].TCB.IsvSVN {
				return &mi.TCBLevels[j], nil
			}
		}
		return nil, reject(CheckTDXModule, ErrTDXModuleTCB, "%s: module SVN %d is below every module TCB level", id, svn)
	}
	return nil, reject(CheckTDXModule, ErrTDXModuleMismatch, "TCB info has no TDX module identity %s (TEE_TCB_SVN %x)", id, td.TeeTcbSvn)
}

// convergeQE combines the platform's status with the QE's, as Intel's
// quote verification library does: a revoked QE revokes the TCB; a QE in
// any other state than UpToDate makes it out of date.
func convergeQE(platform, qe string) string {
	switch qe {
	case claims.StatusUpToDate:
		return platform
	case claims.StatusRevoked:
		return claims.StatusRevoked
	}
	return converge(platform, claims.StatusOutOfDate)
}

// relaunch: a TD 1.5 whose own TCB is out of date but whose current TCB
// (TEE_TCB_SVN2, converged with the QE) is not, should be relaunched to
// pick up the update (Intel's TD relaunch check; dcap-qvl's statuses).
func relaunch(final, current string) string {
	if final != claims.StatusOutOfDate && final != claims.StatusOutOfDateConfigurationNeeded {
		return final
	}
	switch current {
	case claims.StatusUpToDate, claims.StatusSWHardeningNeeded:
		if final == claims.StatusOutOfDateConfigurationNeeded {
			return claims.StatusTDRelaunchAdvisedConfigurationNeeded
		}
		return claims.StatusTDRelaunchAdvised
	case claims.StatusConfigurationNeeded, claims.StatusConfigurationAndSWHardeningNeeded:
		return claims.StatusTDRelaunchAdvisedConfigurationNeeded
	}
	return final
}

// convergeTDXModule combines the platform's status with the TDX module's.
func convergeTDXModule(platform, module string) string {
	return converge(platform, module)
}

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
