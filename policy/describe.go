package policy

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/asps-project/asps/claims"
)

// Describe writes a human-readable account of the policy, for
// `asps policy check`: per app its id, TEE, selectors, accepted TCB
// statuses and advisories, debug stance, and the names of the secrets it may
// read, followed by a warning for each dangerous setting. It never writes a
// store token or a secret reference.
func (p *Policy) Describe(w io.Writer) error {
	ew := &errWriter{w: w}
	if p.Source != "" {
		ew.printf("policy %s\n", p.Source)
	} else {
		ew.printf("policy\n")
	}
	if p.Digest != "" {
		ew.printf("  sha256 %s\n", p.Digest)
	}
	ew.printf("  %d app(s), matched in this order\n", len(p.Apps))
	if p.AllowSimulated {
		ew.printf("  simulated evidence: ACCEPTED\n")
		ew.printf("  warning: allow_simulated is set: simulated evidence proves nothing; a production server refuses this policy\n")
	} else {
		ew.printf("  simulated evidence: refused\n")
	}
	for _, a := range p.Apps {
		ew.printf("\napp %q (%s)\n", a.ID, a.TEE)
		field := func(name, value string) { ew.printf("  %-16s %s\n", name+":", value) }
		hexField := func(name string, h claims.Hex) {
			if h != nil {
				field(name, h.String())
			}
		}
		if a.Runtime != "" {
			field("runtime", a.Runtime)
		}
		if s := a.SGX; s != nil {
			hexField("mr_enclave", s.MrEnclave)
			hexField("mr_signer", s.MrSigner)
			if s.IsvProdID != nil {
				field("isv_prod_id", strconv.Itoa(int(*s.IsvProdID)))
			}
			if s.MinIsvSvn > 0 {
				field("min_isv_svn", strconv.Itoa(int(s.MinIsvSvn)))
			}
			hexField("config_id", s.ConfigID)
			if s.MinConfigSvn > 0 {
				field("min_config_svn", strconv.Itoa(int(s.MinConfigSvn)))
			}
		}
		if t := a.TDX; t != nil {
			hexField("mr_td", t.MrTd)
			for i, r := range t.Rtmr {
				hexField("rtmr"+strconv.Itoa(i), r)
			}
			hexField("mr_config_id", t.MrConfigID)
			hexField("mr_owner", t.MrOwner)
			hexField("mr_owner_config", t.MrOwnerConfig)
			hexField("mr_servicetd", t.MrServiceTd)
			if t.AllowSeptVE {
				field("sept_ve", "ALLOWED (no SEPT_VE_DISABLE)")
			}
		}
		field("tcb_statuses", strings.Join(a.TCBStatuses, ", "))
		switch {
		case slices.Contains(a.AdvisoryIDs, "*"):
			field("advisory_ids", "ANY (*)")
		case len(a.AdvisoryIDs) == 0:
			field("advisory_ids", "none tolerated")
		default:
			field("advisory_ids", strings.Join(a.AdvisoryIDs, ", "))
		}
		if a.Binding != "" {
			field("binding", a.Binding)
		} else {
			field("binding", "any")
		}
		if a.MinTCBEvalDataNumber > 0 {
			field("min_tcb_eval", strconv.FormatUint(uint64(a.MinTCBEvalDataNumber), 10)+" (tcbEvaluationDataNumber)")
		}
		if a.AllowDebug {
			field("debug", "ALLOWED")
		} else {
			field("debug", "refused")
		}
		if a.StoreToken.IsSet() {
			field("store_token", "set (not shown)")
		}
		field("secrets", strings.Join(a.SecretNames(), ", "))
		for _, warning := range a.warnings() {
			ew.printf("  warning: %s\n", warning)
		}
	}
	return ew.err
}

// warnings lists the app's dangerous settings.
func (a *App) warnings() []string {
	var out []string
	if a.AllowDebug {
		out = append(out, "allow_debug: a debug workload's host can read its memory, and these secrets with it")
	}
	if a.TDX != nil && a.TDX.AllowSeptVE {
		out = append(out, "allow_sept_ve: TDs without SEPT_VE_DISABLE are admitted; their host can remove private pages under them")
	}
	if a.TDX != nil && a.TDX.MrServiceTd != nil {
		out = append(out, "mr_servicetd: TDs bound to this service TD (e.g. a migration TD, which can read their state) are admitted")
	}
	if slices.Contains(a.AdvisoryIDs, "*") {
		out = append(out, `advisory_ids "*": platforms with any known, unpatched vulnerability may read these secrets`)
	}
	for _, s := range a.TCBStatuses {
		switch s {
		case claims.StatusOutOfDate, claims.StatusOutOfDateConfigurationNeeded:
			out = append(out, "accepts "+s+": platforms missing security updates may read these secrets")
		case claims.StatusUnknown:
			out = append(out, "accepts Unknown: the platform's TCB was not evaluated (chain-only verification)")
		}
	}
	return out
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
