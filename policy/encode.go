package policy

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// encPolicy and encApp are the file format as written by Encode (and built
// by the importers, which then Parse the result, so an imported policy goes
// through exactly the checks of a hand-written one).
type encPolicy struct {
	AllowSimulated bool     `json:"allow_simulated,omitempty" yaml:"allow_simulated,omitempty"`
	MinTCBEval     uint32   `json:"min_tcb_evaluation_data_number,omitempty" yaml:"min_tcb_evaluation_data_number,omitempty"`
	Apps           []encApp `json:"apps" yaml:"apps"`
}

type encApp struct {
	ID            string            `json:"id" yaml:"id"`
	TEE           string            `json:"tee" yaml:"tee"`
	Runtime       string            `json:"runtime,omitempty" yaml:"runtime,omitempty"`
	MrEnclave     string            `json:"mr_enclave,omitempty" yaml:"mr_enclave,omitempty"`
	MrSigner      string            `json:"mr_signer,omitempty" yaml:"mr_signer,omitempty"`
	IsvProdID     *uint16           `json:"isv_prod_id,omitempty" yaml:"isv_prod_id,omitempty"`
	MinIsvSvn     uint16            `json:"min_isv_svn,omitempty" yaml:"min_isv_svn,omitempty"`
	ConfigID      string            `json:"config_id,omitempty" yaml:"config_id,omitempty"`
	MinConfigSvn  uint16            `json:"min_config_svn,omitempty" yaml:"min_config_svn,omitempty"`
	MrTd          string            `json:"mr_td,omitempty" yaml:"mr_td,omitempty"`
	Rtmr0         string            `json:"rtmr0,omitempty" yaml:"rtmr0,omitempty"`
	Rtmr1         string            `json:"rtmr1,omitempty" yaml:"rtmr1,omitempty"`
	Rtmr2         string            `json:"rtmr2,omitempty" yaml:"rtmr2,omitempty"`
	Rtmr3         string            `json:"rtmr3,omitempty" yaml:"rtmr3,omitempty"`
	MrConfigID    string            `json:"mr_config_id,omitempty" yaml:"mr_config_id,omitempty"`
	MrOwner       string            `json:"mr_owner,omitempty" yaml:"mr_owner,omitempty"`
	MrOwnerConfig string            `json:"mr_owner_config,omitempty" yaml:"mr_owner_config,omitempty"`
	MrServiceTd   string            `json:"mr_servicetd,omitempty" yaml:"mr_servicetd,omitempty"`
	AllowSeptVE   bool              `json:"allow_sept_ve,omitempty" yaml:"allow_sept_ve,omitempty"`
	TCBStatuses   []string          `json:"tcb_statuses,omitempty" yaml:"tcb_statuses,omitempty"`
	AdvisoryIDs   []string          `json:"advisory_ids,omitempty" yaml:"advisory_ids,omitempty"`
	MinTCBEval    uint32            `json:"min_tcb_evaluation_data_number,omitempty" yaml:"min_tcb_evaluation_data_number,omitempty"`
	Binding       string            `json:"binding,omitempty" yaml:"binding,omitempty"`
	AllowDebug    bool              `json:"allow_debug,omitempty" yaml:"allow_debug,omitempty"`
	StoreToken    string            `json:"store_token,omitempty" yaml:"store_token,omitempty"`
	Secrets       map[string]string `json:"secrets" yaml:"secrets"`
}

func (p *Policy) file() encPolicy {
	doc := encPolicy{AllowSimulated: p.AllowSimulated, MinTCBEval: p.MinTCBEvalDataNumber}
	for _, a := range p.Apps {
		e := encApp{
			ID: a.ID, TEE: string(a.TEE), Runtime: a.Runtime,
			TCBStatuses: a.TCBStatuses, AdvisoryIDs: a.AdvisoryIDs, AllowDebug: a.AllowDebug, MinTCBEval: a.MinTCBEvalDataNumber,
			Binding:    a.Binding,
			StoreToken: a.StoreToken.Reveal(), Secrets: a.secrets,
		}
		if s := a.SGX; s != nil {
			e.MrEnclave, e.MrSigner, e.ConfigID = s.MrEnclave.String(), s.MrSigner.String(), s.ConfigID.String()
			e.IsvProdID, e.MinIsvSvn, e.MinConfigSvn = s.IsvProdID, s.MinIsvSvn, s.MinConfigSvn
		}
		if t := a.TDX; t != nil {
			e.MrTd, e.MrConfigID, e.MrOwner, e.MrOwnerConfig = t.MrTd.String(), t.MrConfigID.String(), t.MrOwner.String(), t.MrOwnerConfig.String()
			e.Rtmr0, e.Rtmr1, e.Rtmr2, e.Rtmr3 = t.Rtmr[0].String(), t.Rtmr[1].String(), t.Rtmr[2].String(), t.Rtmr[3].String()
			e.MrServiceTd, e.AllowSeptVE = t.MrServiceTd.String(), t.AllowSeptVE
		}
		doc.Apps = append(doc.Apps, e)
	}
	return doc
}

// Encode writes the policy in the file format ("json" or "yaml"), with
// defaults made explicit. It writes store tokens — the output is a policy
// file, to be kept as private as the one it came from — so never send it to
// a log or a terminal that is recorded.
func (p *Policy) Encode(w io.Writer, format string) error {
	return encode(w, format, p.file())
}

func encode(w io.Writer, format string, doc encPolicy) error {
	switch strings.ToLower(format) {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(doc)
	case "yaml", "yml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(doc); err != nil {
			return err
		}
		return enc.Close()
	}
	return fmt.Errorf("policy: %w %s (want json or yaml)", ErrUnknownFormat, quoteShort(format))
}
