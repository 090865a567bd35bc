package dcap

import (
	"strings"
	"time"
)

// CollateralWant names what collateral must be for; empty fields are not
// checked.
type CollateralWant struct {
	TEE   string // "sgx" or "tdx": TCB info id SGX/TDX, QE identity id QE/TD_QE
	FMSPC string // the TCB info's FMSPC
	CA    string // "processor" or "platform": the PCK CRL's issuer
}

// CheckCollateral verifies collateral on its own, without a quote, with
// the same checks Verify makes: whichever documents col holds are checked
// for their signatures and issuer chains up to a trust anchor, for being
// the documents wanted, and — unless at is zero — for being current at
// at. A collateral source runs it on everything it fetches or loads,
// before caching it.
func (v *Verifier) CheckCollateral(col *Collateral, want CollateralWant, at time.Time) error {
	if col == nil || col.parts == nil {
		return reject(CheckTCBInfo, ErrCollateralMissing, "no collateral built by NewCollateral or ParseCollateralJSON")
	}
	vc := v.verifyCollateral(col.parts, v.newMemo())
	if vc.err != nil {
		return vc.err
	}
	dated := !at.IsZero()
	if vc.rootCRL != nil {
		if vc.rootCRLErr != nil {
			return vc.rootCRLErr
		}
		if dated {
			if err := crlCurrent(CheckRootCACRL, "root CA CRL", vc.rootCRL, at); err != nil {
				return err
			}
		}
	}
	tee := strings.ToLower(want.TEE)
	if col.parts.tcbBody != nil {
		if vc.tcbInfoErr != nil {
			return vc.tcbInfoErr
		}
		ti := vc.tcbInfo
		if tee != "" {
			id := strings.ToUpper(tee)
			if ti.ID != id {
				return reject(CheckTCBInfo, ErrTCBInfoMismatch, "TCB info id %q, asked for %s", ti.ID, id)
			}
			if id == "TDX" && ti.Version < 3 {
				return reject(CheckTCBInfo, ErrTCBInfoMismatch, "TDX TCB info version %d, want 3", ti.Version)
			}
		}
		if want.FMSPC != "" && ti.FMSPC != strings.ToUpper(want.FMSPC) {
			return reject(CheckTCBInfo, ErrFMSPCMismatch, "TCB info for FMSPC %s, asked for %s", ti.FMSPC, strings.ToUpper(want.FMSPC))
		}
		if dated {
			if err := inWindow(CheckTCBInfo, "TCB info", ti.IssueDate, ti.NextUpdate, at); err != nil {
				return err
			}
			if err := certsValidAt(CheckTCBInfo, "TCB info issuer chain", vc.tcbChain, at); err != nil {
				return err
			}
		}
	}
	if col.parts.qeBody != nil {
		if vc.qeIdentityErr != nil {
			return vc.qeIdentityErr
		}
		qi := vc.qeIdentity
		if tee != "" {
			id := map[string]string{"sgx": "QE", "tdx": "TD_QE"}[tee]
			if qi.ID != id {
				return reject(CheckQEIdentity, ErrQEIdentityMismatch, "QE identity id %q, asked for %s (%s)", qi.ID, id, tee)
			}
			if qi.Version != 2 && !(tee == "tdx" && qi.Version == 3) {
				return reject(CheckQEIdentity, ErrQEIdentityMismatch, "QE identity %s version %d is not supported", qi.ID, qi.Version)
			}
		}
		if dated {
			if err := inWindow(CheckQEIdentity, "QE identity", qi.IssueDate, qi.NextUpdate, at); err != nil {
				return err
			}
			if err := certsValidAt(CheckQEIdentity, "QE identity issuer chain", vc.qeChain, at); err != nil {
				return err
			}
		}
	}
	if vc.pckCRL != nil {
		if vc.pckCRLErr != nil {
			return vc.pckCRLErr
		}
		issuer := vc.pckCRLIssuer
		if vc.rootRevoked.has(issuer.SerialNumber) {
			return reject(CheckPCKCRL, ErrIntermediateRevoked, "%q (serial %x) is on the root CA CRL", issuer.Subject.CommonName, issuer.SerialNumber)
		}
		if want.CA != "" && PCKCAKind(issuer.Subject.CommonName) != strings.ToLower(want.CA) {
			return reject(CheckPCKCRL, ErrCRLInvalid, "PCK CRL of %q, asked for the %s CA", issuer.Subject.CommonName, want.CA)
		}
		if dated {
			if err := crlCurrent(CheckPCKCRL, "PCK CRL", vc.pckCRL, at); err != nil {
				return err
			}
			if err := certsValidAt(CheckPCKCRL, "PCK CRL issuer chain", vc.pckCRLChain, at); err != nil {
				return err
			}
		}
	}
	return nil
}

// PCKCAKind maps a PCK CA's common name to "processor" or "platform" (""
// when neither).
func PCKCAKind(cn string) string {
	switch {
	case strings.Contains(cn, "Processor"):
		return "processor"
	case strings.Contains(cn, "Platform"):
		return "platform"
	}
	return ""
}
