package policy

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/asps-project/asps/claims"
)

// Match returns the first app (in file order) whose selectors all hold for
// the claims: TEE, runtime and measurements, then debug, TCB status and
// advisories. Otherwise it returns a *Denial whose Reason is, in order of
// precedence:
//
//   - ErrBadClaims: no claims, or no identity for the claimed TEE;
//   - ErrSimulatedNotAllowed: simulated evidence and no allow_simulated;
//   - ErrDebugNotAllowed, ErrTCBStatusNotAllowed, ErrAdvisoryNotAllowed:
//     an app's identity matched but it refuses this debug state, TCB
//     status or advisory (the first such app is named);
//   - ErrTEEMismatch: the policy has no app for the claims' TEE;
//   - ErrNoMatchingApp: no identity matched; the Denial names the closest
//     app and lists what differed. Closest is the fewest differing
//     selectors; on a tie, the app whose differences are not its main
//     measurement (mr_enclave, mr_signer, mr_td) — a wrong version rather
//     than another program; then the first in file order.
//
// Detail shows seen values in full (so an operator can copy them) and the
// app's expected values shortened.
func (p *Policy) Match(c *claims.Claims) (*App, error) {
	if p == nil {
		return nil, &Denial{Reason: ErrNoMatchingApp, Detail: "no policy loaded"}
	}
	if d := checkClaims(c); d != nil {
		return nil, d
	}
	if c.Simulated && !p.AllowSimulated {
		return nil, &Denial{Reason: ErrSimulatedNotAllowed,
			Detail: "the evidence chains to a simulator root and the policy does not set allow_simulated"}
	}
	var gated *Denial
	var closest *App
	var best differ
	for _, a := range p.Apps {
		if a.TEE != c.TEE {
			continue
		}
		d := a.diff(c, nil)
		if d.n == 0 {
			denial := a.gate(c)
			if denial == nil {
				return a, nil
			}
			if gated == nil {
				gated = denial
			}
			continue
		}
		if closest == nil || d.closerThan(best) {
			closest, best = a, d
		}
	}
	if gated != nil {
		return nil, gated
	}
	if closest == nil {
		return nil, &Denial{Reason: ErrTEEMismatch,
			Detail: fmt.Sprintf("the workload is %s and the policy has no %s app", quoteShort(string(c.TEE)), quoteShort(string(c.TEE)))}
	}
	var ms []Mismatch
	closest.diff(c, &ms)
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s %s not allowed (app %q expects %s)", m.Field, m.Seen, closest.ID, shortHex(m.Expected))
	}
	return nil, &Denial{Reason: ErrNoMatchingApp, App: closest.ID, Detail: strings.Join(parts, "; "), Mismatches: ms}
}

func checkClaims(c *claims.Claims) *Denial {
	switch {
	case c == nil:
		return &Denial{Reason: ErrBadClaims, Detail: "no claims"}
	case c.TEE == claims.SGX && c.SGX == nil:
		return &Denial{Reason: ErrBadClaims, Detail: "sgx claims without an SGX identity"}
	case c.TEE == claims.TDX && c.TDX == nil:
		return &Denial{Reason: ErrBadClaims, Detail: "tdx claims without a TDX identity"}
	}
	return nil
}

// differ counts selectors that do not hold, and records them when out is set
// (formatting only then: the hot path allocates nothing). main counts the
// differences in a main measurement.
type differ struct {
	n, main int
	out     *[]Mismatch
}

func (d differ) closerThan(o differ) bool {
	return d.n < o.n || d.n == o.n && d.main < o.main
}

func isMain(field string) bool {
	return field == "mr_enclave" || field == "mr_signer" || field == "mr_td"
}

func (d *differ) add(field string, seen, expected func() string) {
	d.n++
	if isMain(field) {
		d.main++
	}
	if d.out != nil {
		*d.out = append(*d.out, Mismatch{Field: field, Seen: seen(), Expected: expected()})
	}
}

func (d *differ) hex(field string, want, got claims.Hex) {
	if want != nil && !bytes.Equal(want, got) {
		d.add(field, func() string { return orNone(got.String()) }, want.String)
	}
}

func (d *differ) min(field string, want, got uint16) {
	if got < want {
		d.add(field, func() string { return strconv.Itoa(int(got)) }, func() string { return ">= " + strconv.Itoa(int(want)) })
	}
}

var rtmrNames = [4]string{"rtmr0", "rtmr1", "rtmr2", "rtmr3"}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// shortHex shortens a long hex value to its first 16 digits.
func shortHex(s string) string {
	if len(s) <= 20 || strings.Trim(s, "0123456789abcdef") != "" {
		return s
	}
	return s[:16] + "…"
}

// diff counts the identity selectors that do not hold and, if out is not
// nil, lists them. The claims are checked by checkClaims and share a.TEE.
func (a *App) diff(c *claims.Claims, out *[]Mismatch) differ {
	d := differ{out: out}
	if a.Runtime != "" && c.Runtime != a.Runtime {
		d.add("runtime", func() string {
			if c.Runtime == "" {
				return "(none)"
			}
			return strconv.Quote(c.Runtime)
		}, func() string { return strconv.Quote(a.Runtime) })
	}
	switch {
	case a.SGX != nil:
		s, id := a.SGX, c.SGX
		d.hex("mr_enclave", s.MrEnclave, id.MrEnclave)
		d.hex("mr_signer", s.MrSigner, id.MrSigner)
		if s.IsvProdID != nil && id.IsvProdID != *s.IsvProdID {
			d.add("isv_prod_id", func() string { return strconv.Itoa(int(id.IsvProdID)) }, func() string { return strconv.Itoa(int(*s.IsvProdID)) })
		}
		d.min("isv_svn", s.MinIsvSvn, id.IsvSvn)
		d.hex("config_id", s.ConfigID, id.ConfigID)
		d.min("config_svn", s.MinConfigSvn, id.ConfigSvn)
	case a.TDX != nil:
		s, id := a.TDX, c.TDX
		d.hex("mr_td", s.MrTd, id.MrTd)
		for i, got := range []claims.Hex{id.Rtmr0, id.Rtmr1, id.Rtmr2, id.Rtmr3} {
			d.hex(rtmrNames[i], s.Rtmr[i], got)
		}
		d.hex("mr_config_id", s.MrConfigID, id.MrConfigID)
		d.hex("mr_owner", s.MrOwner, id.MrOwner)
		d.hex("mr_owner_config", s.MrOwnerConfig, id.MrOwnerConfig)
	}
	return d
}

// gate checks what an app refuses even of a workload it recognises.
func (a *App) gate(c *claims.Claims) *Denial {
	if c.Debug && !a.AllowDebug {
		return &Denial{Reason: ErrDebugNotAllowed, App: a.ID, Detail: fmt.Sprintf(
			"the workload is a debug %s (its host can read its memory) and app %q does not set allow_debug", c.TEE, a.ID)}
	}
	if a.Binding != "" && bindingRank(c.Binding) < bindingRank(a.Binding) {
		return &Denial{Reason: ErrBindingNotAllowed, App: a.ID, Detail: fmt.Sprintf(
			"the evidence binds the key by %s; app %q requires %s (binding): %s",
			orNone(c.Binding), a.ID, a.Binding, bindingHint(a.Binding))}
	}
	if c.TEE == claims.TDX && a.TDX != nil {
		if d := a.tdGate(c.TDX); d != nil {
			return d
		}
	}
	if !slices.Contains(a.TCBStatuses, c.TCBStatus) {
		return &Denial{Reason: ErrTCBStatusNotAllowed, App: a.ID, Detail: fmt.Sprintf(
			"tcb status %s not allowed (app %q accepts %s)", quoteShort(c.TCBStatus), a.ID, strings.Join(a.TCBStatuses, ", "))}
	}
	if a.MinTCBEvalDataNumber > 0 && c.TCBEvalDataNumber < a.MinTCBEvalDataNumber {
		seen := strconv.FormatUint(uint64(c.TCBEvalDataNumber), 10)
		if c.TCBEvalDataNumber == 0 {
			seen = "(none: the TCB was not evaluated)"
		}
		return &Denial{Reason: ErrTCBEvaluationTooOld, App: a.ID, Detail: fmt.Sprintf(
			"tcb evaluation data number %s is below the %d app %q requires (min_tcb_evaluation_data_number): the platform was judged with older collateral",
			seen, a.MinTCBEvalDataNumber, a.ID)}
	}
	if slices.Contains(a.AdvisoryIDs, "*") {
		return nil
	}
	for _, adv := range c.AdvisoryIDs {
		if !slices.ContainsFunc(a.AdvisoryIDs, func(t string) bool { return strings.EqualFold(t, adv) }) {
			tolerated := "none"
			if len(a.AdvisoryIDs) > 0 {
				tolerated = strings.Join(a.AdvisoryIDs, ", ")
			}
			return &Denial{Reason: ErrAdvisoryNotAllowed, App: a.ID, Detail: fmt.Sprintf(
				"advisory %s not tolerated (app %q tolerates %s)", quoteShort(adv), a.ID, tolerated)}
		}
	}
	return nil
}

// TDATTRIBUTES bits (Intel TDX module ABI): TUD bits 7:0 (TD under debug),
// SEC bits 31:8 (may affect the TD's security), OTHER bits 63:32 (do not).
const (
	tdAttrDebug         = 1 << 0
	tdAttrTUDReserved   = 0xfe // bits 7:1
	tdAttrLASS          = 1 << 27
	tdAttrSeptVEDisable = 1 << 28
	tdAttrMigratable    = 1 << 29
	tdAttrPKS           = 1 << 30
	tdAttrKL            = 1 << 31
	// tdAttrSECKnown are the SEC bits that do not open the TD to its host:
	// LASS, PKS and KL are CPU features the TD may use; SEPT_VE_DISABLE and
	// MIGRATABLE are checked on their own. Any other SEC bit is reserved
	// and refused: a future bit may weaken isolation.
	tdAttrSECKnown = tdAttrLASS | tdAttrSeptVEDisable | tdAttrMigratable | tdAttrPKS | tdAttrKL
	tdAttrSEC      = 0xffffff00
)

// tdGate refuses TDs whose attributes or service-TD binding let something
// outside the TD read or steer its memory, unless the app opted in.
func (a *App) tdGate(id *claims.TDXIdentity) *Denial {
	deny := func(reason error, format string, args ...any) *Denial {
		return &Denial{Reason: reason, App: a.ID, Detail: fmt.Sprintf(format, args...)}
	}
	if len(id.TdAttributes) != 8 {
		return &Denial{Reason: ErrBadClaims, App: a.ID, Detail: fmt.Sprintf("td_attributes is %d bytes, want 8", len(id.TdAttributes))}
	}
	var attrs uint64
	for i := 7; i >= 0; i-- {
		attrs = attrs<<8 | uint64(id.TdAttributes[i])
	}
	seen := id.TdAttributes.String()
	if bits := attrs & tdAttrTUDReserved; bits != 0 {
		return deny(ErrTDAttributeNotAllowed, "td_attributes %s sets reserved TD-under-debug bit(s) %s: a TD its host may debug is refused", seen, bitList(bits))
	}
	if bits := attrs & tdAttrSEC &^ tdAttrSECKnown; bits != 0 {
		return deny(ErrTDAttributeNotAllowed, "td_attributes %s sets reserved security bit(s) %s, whose effect on the TD's isolation is unknown", seen, bitList(bits))
	}
	if attrs&tdAttrSeptVEDisable == 0 && !a.TDX.AllowSeptVE {
		return deny(ErrTDAttributeNotAllowed, "td_attributes %s lacks SEPT_VE_DISABLE (bit 28): the host can remove the TD's private pages and the TD "+
			"takes #VE exceptions it may mishandle; app %q does not set allow_sept_ve", seen, a.ID)
	}
	if attrs&tdAttrMigratable != 0 && (a.TDX.MrServiceTd == nil || !bytes.Equal(id.MrServiceTd, a.TDX.MrServiceTd)) {
		return deny(ErrTDAttributeNotAllowed, "td_attributes %s sets MIGRATABLE (bit 29): a migration TD can export the TD's memory and state; "+
			"app %q admits that only when the TD is bound to the migration TD it names in mr_servicetd (bound: %s)", seen, a.ID, orNone(id.MrServiceTd.String()))
	}
	if slices.ContainsFunc(id.MrServiceTd, func(b byte) bool { return b != 0 }) {
		switch {
		case a.TDX.MrServiceTd == nil:
			return deny(ErrServiceTDNotAllowed, "mr_servicetd %s is not zero: a bound service TD (a migration TD, say) can read the TD's state; "+
				"app %q names no mr_servicetd", id.MrServiceTd, a.ID)
		case !bytes.Equal(id.MrServiceTd, a.TDX.MrServiceTd):
			return deny(ErrServiceTDNotAllowed, "mr_servicetd %s is not the service TD app %q names (%s)", id.MrServiceTd, a.ID, shortHex(a.TDX.MrServiceTd.String()))
		}
	}
	return nil
}

// bitList names set bits: "1, 4".
func bitList(v uint64) string {
	var out []string
	for i := range 64 {
		if v&(1<<i) != 0 {
			out = append(out, strconv.Itoa(i))
		}
	}
	return strings.Join(out, ", ")
}

// bindingRank orders the evidence bindings, weakest (unknown) first.
func bindingRank(b string) int {
	switch b {
	case claims.BindingReportData:
		return 1
	case claims.BindingTCG:
		return 2
	case claims.BindingTCGLabelled:
		return 3
	case claims.BindingTCGNonce:
		return 4
	}
	return 0
}

func bindingHint(b string) string {
	if b == claims.BindingTCGNonce {
		return "after the handshake the workload must send session evidence, a fresh quote over this connection's TLS exporter (ratls.NewSessionEvidence)"
	}
	return "an asps RA-TLS certificate in the TCG format with the asps-domain label (ratls.NewCertificate makes one)"
}
