package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/asps-project/asps/claims"
)

// tdAttrs returns TDATTRIBUTES (little-endian) with the given bits set.
func tdAttrs(bits ...int) claims.Hex {
	h := make(claims.Hex, 8)
	for _, b := range bits {
		h[b/8] |= 1 << (b % 8)
	}
	return h
}

// TestAttack_TDAttributesThatOpenTheTDToItsHost: a TD whose attributes let
// the host (or a service TD the host binds) read or steer its memory is
// refused by default, per bit, and admitted only by the named opt-in.
func TestAttack_TDAttributesThatOpenTheTDToItsHost(t *testing.T) {
	const migTD = "6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d"
	app := func(extra string) string {
		return "apps:\n  - id: td\n    tee: tdx\n    mr_td: " + hexT1 + "\n    rtmr1: " + hexR1 + "\n    rtmr2: " + hexK2 + "\n" + extra + "    secrets: {k: v}\n"
	}
	const (
		debug = 0
		sept  = 28
		migr  = 29
	)
	tests := []struct {
		name      string
		policy    string
		attrs     claims.Hex
		serviceTD string // hex; "" for a TD 1.0 report without the field
		reason    error  // nil: admitted
		says      string
	}{
		{"production TD", app(""), tdAttrs(sept), "", nil, ""},
		{"TD 1.5, no service TD", app(""), tdAttrs(sept), hexZ, nil, ""},
		{"no SEPT_VE_DISABLE", app(""), tdAttrs(), "", ErrTDAttributeNotAllowed, "SEPT_VE_DISABLE"},
		{"no SEPT_VE_DISABLE, PKS only (a real TD's attributes)", app(""), tdAttrs(30), "", ErrTDAttributeNotAllowed, "SEPT_VE_DISABLE"},
		{"no SEPT_VE_DISABLE, opted in", app("    allow_sept_ve: true\n"), tdAttrs(), "", nil, ""},
		{"debug TD", app(""), tdAttrs(debug, sept), "", ErrDebugNotAllowed, "allow_debug"},
		{"reserved TD-under-debug bit 1", app(""), tdAttrs(1, sept), "", ErrTDAttributeNotAllowed, "bit(s) 1"},
		{"reserved TD-under-debug bit 7, even with allow_debug", app("    allow_debug: true\n"), tdAttrs(7, sept), "", ErrTDAttributeNotAllowed, "bit(s) 7"},
		{"reserved security bit 8", app(""), tdAttrs(8, sept), "", ErrTDAttributeNotAllowed, "reserved security bit(s) 8"},
		{"reserved security bit 26", app(""), tdAttrs(26, sept), "", ErrTDAttributeNotAllowed, "reserved security bit(s) 26"},
		{"LASS", app(""), tdAttrs(27, sept), "", nil, ""},
		{"PKS", app(""), tdAttrs(30, sept), "", nil, ""},
		{"KL", app(""), tdAttrs(31, sept), "", nil, ""},
		{"PERFMON", app(""), tdAttrs(63, sept), "", nil, ""},
		{"MIGRATABLE", app(""), tdAttrs(migr, sept), "", ErrTDAttributeNotAllowed, "MIGRATABLE"},
		{"MIGRATABLE, migration TD named but not bound", app("    mr_servicetd: " + migTD + "\n"), tdAttrs(migr, sept), hexZ, ErrTDAttributeNotAllowed, "MIGRATABLE"},
		{"MIGRATABLE bound to the named migration TD", app("    mr_servicetd: " + migTD + "\n"), tdAttrs(migr, sept), migTD, nil, ""},
		{"bound service TD", app(""), tdAttrs(sept), migTD, ErrServiceTDNotAllowed, "names no mr_servicetd"},
		{"bound to another service TD", app("    mr_servicetd: " + migTD + "\n"), tdAttrs(sept), hexZ2, ErrServiceTDNotAllowed, "not the service TD"},
		{"bound to the named service TD", app("    mr_servicetd: " + migTD + "\n"), tdAttrs(sept), migTD, nil, ""},
		{"no td_attributes", app(""), nil, "", ErrBadClaims, "td_attributes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.policy, "yaml")
			c := tdxClaims(t, hexT1, hexR1)
			c.TDX.TdAttributes = tc.attrs
			c.Debug = len(tc.attrs) == 8 && tc.attrs[0]&1 != 0
			if tc.serviceTD != "" {
				c.QuoteVersion = 5
				c.TDX.MrServiceTd = mustHex(t, tc.serviceTD)
			}
			a, err := p.Match(c)
			if tc.reason == nil {
				if err != nil || a.ID != "td" {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var d *Denial
			if !errors.As(err, &d) || !errors.Is(err, tc.reason) || d.App != "td" {
				t.Fatalf("want %v for app td, got %v", tc.reason, err)
			}
			if !strings.Contains(d.Detail, tc.says) {
				t.Errorf("detail does not say %q: %s", tc.says, d.Detail)
			}
		})
	}
}

// TestTDOptInFieldsLoad: the opt-in fields are TDX-only, typed, and the
// service TD is a real measurement.
func TestTDOptInFieldsLoad(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		reason    error
		field     string
	}{
		{"allow_sept_ve on sgx", "apps:\n- {id: s, tee: sgx, mr_enclave: " + hexE1 + ", allow_sept_ve: true, secrets: {a: b}}\n", ErrBadValue, "allow_sept_ve"},
		{"allow_sept_ve not a bool", "apps:\n- {id: td, tee: tdx, mr_td: " + hexT1 + ", rtmr1: " + hexR1 + ", rtmr2: " + hexK2 + ", allow_sept_ve: yes please, secrets: {a: b}}\n", ErrBadValue, "allow_sept_ve"},
		{"zero mr_servicetd", "apps:\n- {id: td, tee: tdx, mr_td: " + hexT1 + ", rtmr1: " + hexR1 + ", rtmr2: " + hexK2 + ", mr_servicetd: " + hexZ + ", secrets: {a: b}}\n", ErrBadMeasurement, "mr_servicetd"},
		{"short mr_servicetd", "apps:\n- {id: td, tee: tdx, mr_td: " + hexT1 + ", rtmr1: " + hexR1 + ", rtmr2: " + hexK2 + ", mr_servicetd: abcd, secrets: {a: b}}\n", ErrBadMeasurement, "mr_servicetd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "yaml")
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, tc.reason) || le.Field != tc.field {
				t.Fatalf("want %v on %s, got %v", tc.reason, tc.field, err)
			}
		})
	}
}
