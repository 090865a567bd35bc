package policy

import (
	"errors"
	"strings"
	"testing"
)

// TestTDXNeedsMoreThanMrTd: MRTD measures only the firmware that every
// tenant of a cloud shares, so an app naming only mr_td is refused.
func TestTDXNeedsMoreThanMrTd(t *testing.T) {
	mrtd := strings.Repeat("ab", 48)
	rtmr := strings.Repeat("cd", 48)
	for _, tc := range []struct {
		name  string
		extra string
		ok    bool
	}{
		{"mr_td alone", "", false},
		{"with rtmr1", "    rtmr1: " + rtmr + "\n", true},
		{"with mr_config_id", "    mr_config_id: " + rtmr + "\n", true},
		{"with mr_owner", "    mr_owner: " + rtmr + "\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "apps:\n  - id: td\n    tee: tdx\n    mr_td: " + mrtd + "\n" + tc.extra + "    secrets: {k: v}\n"
			_, err := Parse([]byte(doc), "yaml")
			if tc.ok != (err == nil) {
				t.Fatalf("got %v", err)
			}
			if err != nil && (!errors.Is(err, ErrNoSelector) || !strings.Contains(err.Error(), "rtmr")) {
				t.Fatalf("refused for the wrong reason: %v", err)
			}
		})
	}
}
