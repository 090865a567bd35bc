package policy

import (
	"errors"
	"strings"
	"testing"
)

// TestAttack_TDXZeroSelectorSpellings: the all-zero and code-free TDX
// selectors of issue 11.1, written as an attacker (or a careless template)
// would to slip past a check on the literal text: a 0x or 0X prefix, upper
// case, a YAML bare number, JSON, quoted and unquoted. Each is refused with
// the reason of its plain spelling.
func TestAttack_TDXZeroSelectorSpellings(t *testing.T) {
	zeros := strings.Repeat("0", 96)
	for _, tc := range []struct {
		name, format, doc string
		reason            error
	}{
		{"0x all-zero rtmr1", "yaml", "apps:\n  - {id: td, tee: tdx, mr_td: " + hexT1 + ", rtmr1: '0x" + zeros + "', secrets: {k: v}}\n", ErrBadMeasurement},
		{"0X all-zero rtmr2", "yaml", "apps:\n  - {id: td, tee: tdx, mr_td: " + hexT1 + ", rtmr2: 0X" + zeros + ", secrets: {k: v}}\n", ErrBadMeasurement},
		{"bare-number all-zero rtmr0", "yaml", "apps:\n  - {id: td, tee: tdx, mr_td: " + hexT1 + ", rtmr0: " + zeros + ", secrets: {k: v}}\n", ErrBadMeasurement},
		{"upper-case 0X all-zero mr_td", "yaml", "apps:\n  - {id: td, tee: tdx, mr_td: 0X" + zeros + ", rtmr1: " + hexR1 + ", rtmr2: " + hexK2 + ", secrets: {k: v}}\n", ErrBadMeasurement},
		{"json 0x all-zero rtmr1", "json", `{"apps": [{"id": "td", "tee": "tdx", "mr_td": "` + hexT1 + `", "rtmr1": "0x` + zeros + `", "secrets": {"k": "v"}}]}`, ErrBadMeasurement},
		{"json upper-case mr_owner only", "json", `{"apps": [{"id": "td", "tee": "tdx", "mr_td": "` + strings.ToUpper(hexT1) + `", "mr_owner": "0X` + strings.ToUpper(hexR1) + `", "secrets": {"k": "v"}}]}`, ErrNoSelector},
		{"null rtmr1", "yaml", "apps:\n  - {id: td, tee: tdx, mr_td: " + hexT1 + ", rtmr1: null, secrets: {k: v}}\n", ErrBadMeasurement},
		{"empty rtmr1", "json", `{"apps": [{"id": "td", "tee": "tdx", "mr_td": "` + hexT1 + `", "rtmr1": "", "secrets": {"k": "v"}}]}`, ErrBadMeasurement},
		{"blank rtmr1", "yaml", "apps:\n  - {id: td, tee: tdx, mr_td: " + hexT1 + ", rtmr1: '  ', secrets: {k: v}}\n", ErrBadMeasurement},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range []string{tc.format, ""} {
				_, err := Parse([]byte(tc.doc), format)
				if !errors.Is(err, tc.reason) {
					t.Fatalf("format %q: %v, want %v", format, err, tc.reason)
				}
			}
			if _, err := Import([]byte(tc.doc)); !errors.Is(err, tc.reason) {
				t.Fatalf("Import: %v, want %v", err, tc.reason)
			}
		})
	}
}
