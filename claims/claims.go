// Package claims holds the TEE-neutral description of a verified workload:
// what a verifier proved about the evidence, and what the policy step reads.
//
// Data flows one way: evidence -> claims -> policy -> secrets. A verifier
// (package dcap for Intel SGX and TDX) produces Claims; nothing downstream
// ever sees raw evidence.
package claims

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// TEE names a kind of trusted execution environment.
type TEE string

// The TEEs asps verifies.
const (
	SGX TEE = "sgx"
	TDX TEE = "tdx"
)

// TCB statuses, as Intel names them in TCB info and in the DCAP quote
// verification library. A status other than UpToDate is refused unless the
// policy names it.
const (
	StatusUpToDate                          = "UpToDate"
	StatusSWHardeningNeeded                 = "SWHardeningNeeded"
	StatusConfigurationNeeded               = "ConfigurationNeeded"
	StatusConfigurationAndSWHardeningNeeded = "ConfigurationAndSWHardeningNeeded"
	StatusOutOfDate                         = "OutOfDate"
	StatusOutOfDateConfigurationNeeded      = "OutOfDateConfigurationNeeded"
	StatusRevoked                           = "Revoked"
	// TD 1.5 only: the TD's own TCB is out of date, but the TCB it would
	// get by relaunching is not.
	StatusTDRelaunchAdvised                    = "TDRelaunchAdvised"
	StatusTDRelaunchAdvisedConfigurationNeeded = "TDRelaunchAdvisedConfigurationNeeded"
	// StatusUnknown is reported by chain-only verification, when no TCB
	// info was at hand to evaluate the platform.
	StatusUnknown = "Unknown"
)

// How evidence bound a quote to a TLS key (Claims.Binding), weakest first.
const (
	// BindingReportData: a raw-quote format whose report_data starts with
	// a hash of the key. Any code in the workload that quotes data a
	// caller chose (a hash of "its" key, say) can produce it.
	BindingReportData = "report-data"
	// BindingTCG: the TCG claims buffer names the key, and report_data
	// starts with a hash of the buffer.
	BindingTCG = "tcg"
	// BindingTCGLabelled: BindingTCG with asps's domain label in the
	// claims buffer, and report_data exactly SHA-256(buffer) followed by
	// 32 zero bytes.
	BindingTCGLabelled = "tcg-labelled"
	// BindingTCGNonce: BindingTCGLabelled, and a quote made after the
	// handshake over a fresh value of this very TLS connection (its
	// exporter): a quote recorded earlier cannot be replayed.
	BindingTCGNonce = "tcg-nonce"
)

// KnownStatuses lists every TCB status a verifier may report.
var KnownStatuses = []string{
	StatusUpToDate, StatusSWHardeningNeeded, StatusConfigurationNeeded,
	StatusConfigurationAndSWHardeningNeeded, StatusOutOfDate,
	StatusOutOfDateConfigurationNeeded, StatusRevoked, StatusTDRelaunchAdvised,
	StatusTDRelaunchAdvisedConfigurationNeeded, StatusUnknown,
}

// Hex is a byte string that reads and writes as lower-case hex.
type Hex []byte

// String returns the lower-case hex form.
func (h Hex) String() string { return hex.EncodeToString(h) }

// MarshalJSON writes the hex form as a JSON string.
func (h Hex) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

// UnmarshalJSON reads a JSON string of hex digits (either case).
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseHex(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHex decodes hex digits (either case, optional 0x prefix).
func ParseHex(s string) (Hex, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	v, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hex: %q", s)
	}
	return v, nil
}

// SGXIdentity is the identity of an SGX enclave, from its report body.
type SGXIdentity struct {
	MrEnclave     Hex    `json:"mr_enclave"`
	MrSigner      Hex    `json:"mr_signer"`
	IsvProdID     uint16 `json:"isv_prod_id"`
	IsvSvn        uint16 `json:"isv_svn"`
	ConfigID      Hex    `json:"config_id"`
	ConfigSvn     uint16 `json:"config_svn"`
	IsvExtProdID  Hex    `json:"isv_ext_prod_id"`
	IsvFamilyID   Hex    `json:"isv_family_id"`
	Attributes    Hex    `json:"attributes"`
	MiscSelect    uint32 `json:"misc_select"`
	CPUSvn        Hex    `json:"cpu_svn"`
	Mode64        bool   `json:"mode64"`
	ProvisionKey  bool   `json:"provision_key"`
	EInitTokenKey bool   `json:"einittoken_key"`
	KSS           bool   `json:"kss"`
}

// TDXIdentity is the identity of a TDX trust domain, from its TD report body.
type TDXIdentity struct {
	TeeTcbSvn      Hex `json:"tee_tcb_svn"`
	MrSeam         Hex `json:"mr_seam"`
	MrSignerSeam   Hex `json:"mr_signer_seam"`
	SeamAttributes Hex `json:"seam_attributes"`
	TdAttributes   Hex `json:"td_attributes"`
	Xfam           Hex `json:"xfam"`
	MrTd           Hex `json:"mr_td"`
	MrConfigID     Hex `json:"mr_config_id"`
	MrOwner        Hex `json:"mr_owner"`
	MrOwnerConfig  Hex `json:"mr_owner_config"`
	Rtmr0          Hex `json:"rtmr0"`
	Rtmr1          Hex `json:"rtmr1"`
	Rtmr2          Hex `json:"rtmr2"`
	Rtmr3          Hex `json:"rtmr3"`
	// TD 1.5 only.
	TeeTcbSvn2  Hex `json:"tee_tcb_svn2,omitempty"`
	MrServiceTd Hex `json:"mr_servicetd,omitempty"`
}

// Claims is what a verifier proved about one piece of evidence.
type Claims struct {
	TEE TEE `json:"tee"`
	// Runtime names what produced the evidence when known: "gramine",
	// "occlum", "sgx-sdk", "rats-tls", "tdx-guest", "sim".
	Runtime      string `json:"runtime,omitempty"`
	QuoteVersion int    `json:"quote_version"`
	// Debug is true for a debug enclave or a debug TD: its memory is
	// readable by the host, so it proves nothing about confidentiality.
	Debug      bool `json:"debug"`
	ReportData Hex  `json:"report_data"`

	// TCB evaluation.
	TCBStatus   string    `json:"status"`
	AdvisoryIDs []string  `json:"advisory_ids"`
	TCBDate     time.Time `json:"tcb_date,omitzero"`
	FMSPC       string    `json:"fmspc"`
	// CollateralExpiry is the earliest nextUpdate / expiry among the
	// collateral and certificates the verdict rests on.
	CollateralExpiry time.Time `json:"collateral_expiry,omitzero"`
	// TCBEvalDataNumber is the tcbEvaluationDataNumber of the collateral
	// the TCB status was judged with: the lower of the TCB info's and the
	// QE identity's. Zero when no TCB info was used (chain-only).
	TCBEvalDataNumber uint32 `json:"tcb_evaluation_data_number,omitempty"`
	// Binding says how the evidence bound the quote to the TLS key (one of
	// the Binding* values); "" when the claims did not come through RA-TLS.
	Binding string `json:"binding,omitempty"`
	// Simulated is true when the evidence chains to a simulator root, not
	// to Intel's.
	Simulated bool `json:"simulated,omitempty"`
	// CollateralGrace is true when the verdict rested on collateral past
	// its next update, served under an operator's grace period.
	CollateralGrace bool `json:"collateral_grace,omitempty"`

	SGX *SGXIdentity `json:"sgx,omitempty"`
	TDX *TDXIdentity `json:"tdx,omitempty"`
}

// Fields returns the claims as one flat object with the field names of
// Intel-style verifier output (tee, quote_version, mr_enclave, mr_td,
// rtmr0, status, advisory_ids, …), for command-line and JSON output.
func (c *Claims) Fields() map[string]any {
	m := map[string]any{
		"tee":           c.TEE,
		"quote_version": c.QuoteVersion,
		"debug":         c.Debug,
		"report_data":   c.ReportData.String(),
	}
	if c.TCBStatus != "" {
		m["status"] = c.TCBStatus
		ids := c.AdvisoryIDs
		if ids == nil {
			ids = []string{}
		}
		m["advisory_ids"] = ids
	}
	if c.FMSPC != "" {
		m["fmspc"] = c.FMSPC
	}
	if c.TCBEvalDataNumber != 0 {
		m["tcb_evaluation_data_number"] = c.TCBEvalDataNumber
	}
	if !c.TCBDate.IsZero() {
		m["tcb_date"] = c.TCBDate.UTC().Format(time.RFC3339)
	}
	if !c.CollateralExpiry.IsZero() {
		m["collateral_expiry"] = c.CollateralExpiry.UTC().Format(time.RFC3339)
	}
	if c.Runtime != "" {
		m["runtime"] = c.Runtime
	}
	if c.Simulated {
		m["simulated"] = true
	}
	if s := c.SGX; s != nil {
		m["mr_enclave"] = s.MrEnclave.String()
		m["mr_signer"] = s.MrSigner.String()
		m["isv_prod_id"] = s.IsvProdID
		m["isv_svn"] = s.IsvSvn
		m["config_id"] = s.ConfigID.String()
		m["config_svn"] = s.ConfigSvn
		m["isv_ext_prod_id"] = s.IsvExtProdID.String()
		m["isv_family_id"] = s.IsvFamilyID.String()
		m["attributes"] = s.Attributes.String()
		m["misc_select"] = fmt.Sprintf("%08x", s.MiscSelect)
		m["cpu_svn"] = s.CPUSvn.String()
		m["mode64"] = s.Mode64
		m["provision_key"] = s.ProvisionKey
	}
	if t := c.TDX; t != nil {
		for k, v := range map[string]Hex{
			"tee_tcb_svn": t.TeeTcbSvn, "mr_seam": t.MrSeam, "mr_signer_seam": t.MrSignerSeam,
			"seam_attributes": t.SeamAttributes, "td_attributes": t.TdAttributes, "xfam": t.Xfam,
			"mr_td": t.MrTd, "mr_config_id": t.MrConfigID, "mr_owner": t.MrOwner, "mr_owner_config": t.MrOwnerConfig,
			"rtmr0": t.Rtmr0, "rtmr1": t.Rtmr1, "rtmr2": t.Rtmr2, "rtmr3": t.Rtmr3,
		} {
			m[k] = v.String()
		}
		if t.TeeTcbSvn2 != nil {
			m["tee_tcb_svn2"] = t.TeeTcbSvn2.String()
			m["mr_servicetd"] = t.MrServiceTd.String()
		}
	}
	return m
}
