package policy_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/policy"
)

// TestAttack_TCBEvaluationRollbackBelowPolicyMinimumDenied: collateral of
// an older TCB recovery (lower tcbEvaluationDataNumber) judges a platform
// by older standards. A policy that requires a minimum refuses claims
// verified with older collateral, naming seen vs required; the global
// minimum is a floor no app can lower. The quotes and collateral are the
// simulator's, verified by the real verifier, so this also proves the
// verifier carries the number into the claims.
func TestAttack_TCBEvaluationRollbackBelowPolicyMinimumDenied(t *testing.T) {
	pki, err := sim.DefaultPKI()
	if err != nil {
		t.Fatal(err)
	}
	mrEnclave := [32]byte{1, 2, 3}
	verified := func(evalNumber int) *claims.Claims {
		c := simClaims(t, sim.Options{PKI: pki, TEE: claims.SGX, TCBEvaluationDataNumber: evalNumber,
			Identity: sim.Identity{MrEnclave: mrEnclave}})
		if got := c.TCBEvalDataNumber; got != uint32(evalNumber) {
			t.Fatalf("claims carry tcb evaluation data number %d, the collateral has %d", got, evalNumber)
		}
		return c
	}
	doc := func(global, app string) string {
		return "allow_simulated: true\n" + global + fmt.Sprintf("apps:\n  - id: e\n    tee: sgx\n    mr_enclave: %x\n", mrEnclave) + app + "    secrets: {k: v}\n"
	}
	for _, tc := range []struct {
		name        string
		global, app string
		eval        int
		says        string // "" admits
	}{
		{"no minimum", "", "", 16, ""},
		{"app minimum met", "", "    min_tcb_evaluation_data_number: 17\n", 17, ""},
		{"app minimum, older collateral", "", "    min_tcb_evaluation_data_number: 17\n", 16, "tcb evaluation data number 16 is below the 17"},
		{"global minimum, older collateral", "min_tcb_evaluation_data_number: 18\n", "", 17, "tcb evaluation data number 17 is below the 18"},
		{"app cannot lower the global minimum", "min_tcb_evaluation_data_number: 18\n", "    min_tcb_evaluation_data_number: 10\n", 17, "below the 18"},
		{"global minimum met", "min_tcb_evaluation_data_number: 18\n", "", 18, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Parse([]byte(doc(tc.global, tc.app)), "yaml")
			if err != nil {
				t.Fatal(err)
			}
			a, err := p.Match(verified(tc.eval))
			if tc.says == "" {
				if err != nil || a.ID != "e" {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var d *policy.Denial
			if !errors.As(err, &d) || d.Reason != policy.ErrTCBEvaluationTooOld || d.App != "e" {
				t.Fatalf("want %v, got %v", policy.ErrTCBEvaluationTooOld, err)
			}
			if !strings.Contains(d.Detail, tc.says) {
				t.Errorf("detail does not say %q: %s", tc.says, d.Detail)
			}
		})
	}
	t.Run("chain-only claims carry no number", func(t *testing.T) {
		p, err := policy.Parse([]byte(doc("", "    min_tcb_evaluation_data_number: 1\n    tcb_statuses: [Unknown]\n")), "yaml")
		if err != nil {
			t.Fatal(err)
		}
		c := verified(17)
		c.TCBStatus, c.TCBEvalDataNumber = claims.StatusUnknown, 0
		if _, err := p.Match(c); !errors.Is(err, policy.ErrTCBEvaluationTooOld) || !strings.Contains(err.Error(), "not evaluated") {
			t.Fatalf("got %v", err)
		}
	})
	for _, bad := range []string{"-1", "x", "4294967296", "1.5"} {
		if _, err := policy.Parse([]byte(doc("", "    min_tcb_evaluation_data_number: "+bad+"\n")), "yaml"); !errors.Is(err, policy.ErrBadValue) {
			t.Errorf("min_tcb_evaluation_data_number %s: got %v", bad, err)
		}
	}
}
