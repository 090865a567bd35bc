package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/asps-project/asps/claims"
)

// TestAttack_TDXPolicyWithoutCodeMeasurementRefusedAtLoad: MRTD measures
// only the firmware every tenant of a cloud shares; mr_owner, mr_config_id
// and mr_owner_config are chosen by the host that launches the TD and
// RTMR3 is extended by the guest at run time. A policy that names none of
// rtmr0-2 does not pin code (an attacker's kernel on the same firmware
// shows whatever host-chosen values it likes), and an all-zero value never
// selects anything: both are refused when the policy is loaded.
func TestAttack_TDXPolicyWithoutCodeMeasurementRefusedAtLoad(t *testing.T) {
	line := func(field, v string) string { return "    " + field + ": " + v + "\n" }
	tests := []struct {
		name   string
		extra  string
		reason error  // nil: loads
		field  string // the field the refusal names
		says   []string
	}{
		{"mr_td alone", "", ErrNoSelector, "rtmr1, rtmr2", []string{"it names only mr_td", "missing rtmr1 and rtmr2", "mr_td, rtmr1 and rtmr2 are required"}},
		{"all-zero rtmr3", line("rtmr1", hexR1) + line("rtmr2", hexK2) + line("rtmr3", hexZ), ErrBadMeasurement, "rtmr3", []string{"all zeros", "selects nothing"}},
		{"all-zero mr_owner", line("rtmr1", hexR1) + line("rtmr2", hexK2) + line("mr_owner", hexZ), ErrBadMeasurement, "mr_owner", []string{"all zeros"}},
		{"all-zero mr_config_id", line("mr_config_id", hexZ), ErrBadMeasurement, "mr_config_id", []string{"all zeros"}},
		{"all-zero mr_owner_config", line("mr_owner_config", hexZ), ErrBadMeasurement, "mr_owner_config", []string{"all zeros"}},
		{"all-zero rtmr1", line("rtmr1", hexZ) + line("rtmr2", hexK2), ErrBadMeasurement, "rtmr1", []string{"pins no code"}},
		{"mr_owner copied from the victim", line("mr_owner", hexO1), ErrNoSelector, "rtmr1, rtmr2",
			[]string{"it names mr_td and mr_owner", "chosen by the host"}},
		{"mr_config_id", line("mr_config_id", hexO1), ErrNoSelector, "rtmr1, rtmr2", []string{"it names mr_td and mr_config_id"}},
		{"host fields and rtmr3", line("mr_owner", hexO1) + line("mr_config_id", hexO1) + line("mr_owner_config", hexO1) + line("rtmr3", hexR1),
			ErrNoSelector, "rtmr1, rtmr2", []string{"rtmr3, mr_config_id, mr_owner, mr_owner_config", "extended by the guest"}},
		// RTMR0 is the firmware's configuration, the same for every TD of
		// an instance type; RTMR1 alone leaves the command line and initrd
		// (the whole user space) open; RTMR2 alone leaves the kernel open.
		{"rtmr0 alone", line("rtmr0", hexR1), ErrNoSelector, "rtmr1, rtmr2", []string{"it names mr_td and rtmr0", "firmware's configuration"}},
		{"rtmr0 and rtmr1", line("rtmr0", hexO1) + line("rtmr1", hexR1), ErrNoSelector, "rtmr2", []string{"missing rtmr2", "command line and initrd"}},
		{"rtmr1 alone", line("rtmr1", hexR1), ErrNoSelector, "rtmr2", []string{"missing rtmr2"}},
		{"rtmr2 alone", line("rtmr2", hexK2), ErrNoSelector, "rtmr1", []string{"missing rtmr1", "OS loader and kernel"}},
		{"rtmr1 and rtmr2", line("rtmr1", hexR1) + line("rtmr2", hexK2), nil, "", nil},
		{"rtmr1 and rtmr2 narrowed by rtmr0 and mr_owner", line("rtmr0", hexO1) + line("rtmr1", hexR1) + line("rtmr2", hexK2) + line("mr_owner", hexO1), nil, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "apps:\n  - id: td\n    tee: tdx\n    mr_td: " + hexT1 + "\n" + tc.extra + "    secrets: {k: v}\n"
			_, err := Parse([]byte(doc), "yaml")
			if tc.reason == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.reason) {
				t.Fatalf("want %v, got %v", tc.reason, err)
			}
			var le *LoadError
			found := false
			for _, e := range unjoin(err) {
				if errors.As(e, &le) && le.Field == tc.field && errors.Is(le.Reason, tc.reason) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no %v about %s in %v", tc.reason, tc.field, err)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the refusal does not say %q: %v", s, err)
				}
			}
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestAttack_TDXSameFirmwareOtherKernelDenied: the attacker launches a TD
// on the victim's firmware (same MRTD) with its own kernel, and copies every
// host-chosen field of the victim. The kernel lands in RTMR1/RTMR2, which
// the policy pins.
func TestAttack_TDXSameFirmwareOtherKernelDenied(t *testing.T) {
	p := mustParse(t, `apps:
  - id: td
    tee: tdx
    mr_td: `+hexT1+`
    rtmr1: `+hexR1+`
    rtmr2: `+hexE3+hexE3[:32]+`
    mr_owner: `+hexO1+`
    secrets: {disk: kv/td/disk}
`, "yaml")
	victim := func() *claims.Claims {
		c := tdxClaims(t, hexT1, hexR1)
		c.TDX.Rtmr2 = mustHex(t, hexE3+hexE3[:32])
		c.TDX.MrOwner = mustHex(t, hexO1)
		return c
	}
	if a, err := p.Match(victim()); err != nil || a.ID != "td" {
		t.Fatalf("the victim itself: %v", err)
	}
	for _, tc := range []struct {
		name  string
		mut   func(*claims.TDXIdentity)
		field string
	}{
		{"other kernel", func(id *claims.TDXIdentity) { id.Rtmr1 = mustHex(t, hexZ2) }, "rtmr1"},
		{"other command line", func(id *claims.TDXIdentity) { id.Rtmr2 = mustHex(t, hexZ2) }, "rtmr2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := victim()
			tc.mut(c.TDX)
			_, err := p.Match(c)
			var d *Denial
			if !errors.As(err, &d) || d.Reason != ErrNoMatchingApp {
				t.Fatalf("want %v, got %v", ErrNoMatchingApp, err)
			}
			if len(d.Mismatches) != 1 || d.Mismatches[0].Field != tc.field {
				t.Fatalf("want one mismatch in %s, got %+v", tc.field, d.Mismatches)
			}
		})
	}
}
