package client_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/policy"
)

// TestAttack_ServerPolicyTDXZeroSelectorSpellings: a server policy goes
// through the policy package after the client adds a placeholder secrets
// list (re-encoding the document as YAML). The all-zero and code-free TDX
// selectors stay refused in every spelling through that path, and so do
// the --server-mr-td/--server-rtmr shorthands.
func TestAttack_ServerPolicyTDXZeroSelectorSpellings(t *testing.T) {
	zeros := strings.Repeat("0", 96)
	for _, tc := range []struct {
		name, doc string
		reason    error
	}{
		{"0x all-zero rtmr1", "apps:\n  - {id: s, tee: tdx, mr_td: " + td + ", rtmr1: '0x" + zeros + "'}\n", policy.ErrBadMeasurement},
		{"0X bare all-zero rtmr2", "apps:\n  - {id: s, tee: tdx, mr_td: " + td + ", rtmr2: 0X" + zeros + "}\n", policy.ErrBadMeasurement},
		{"bare-number all-zero rtmr0", "apps:\n  - {id: s, tee: tdx, mr_td: " + td + ", rtmr0: " + zeros + "}\n", policy.ErrBadMeasurement},
		{"json mr_td with upper-case mr_owner only", `{"apps": [{"id": "s", "tee": "tdx", "mr_td": "` + strings.ToUpper(td) + `", "mr_owner": "0X` + strings.ToUpper(rtmr) + `"}]}`, policy.ErrNoSelector},
		{"json rtmr3 only", `{"apps": [{"id": "s", "tee": "tdx", "mr_td": "` + td + `", "rtmr3": "` + rtmr + `"}]}`, policy.ErrNoSelector},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range []string{"", "yaml", "json"} {
				if format == "json" && !strings.HasPrefix(tc.doc, "{") {
					continue
				}
				if _, err := client.ParseServerPolicy([]byte(tc.doc), format, false); !errors.Is(err, tc.reason) {
					t.Fatalf("format %q: %v, want %v", format, err, tc.reason)
				}
			}
		})
	}
	for _, id := range []client.ServerIdentity{
		{MrTd: td},
		{MrTd: td, Rtmr: [3]string{"0x" + zeros}},
		{MrTd: "0X" + zeros, Rtmr: [3]string{"", rtmr}},
	} {
		if _, err := id.Policy(); err == nil {
			t.Errorf("shorthand %+v accepted", id)
		}
	}
}
