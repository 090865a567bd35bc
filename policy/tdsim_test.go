package policy_test

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"testing"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/policy"
)

// TestAttack_SimulatedTDsAgainstTDXRules: the TDX rules on claims the real
// verifier derived from simulated TD quotes (v4 and v5): the attacker's
// kernel on the victim's firmware, a TD without SEPT_VE_DISABLE, and a TD
// bound to a service TD are refused; the victim's own TD is served.
func TestAttack_SimulatedTDsAgainstTDXRules(t *testing.T) {
	pki, err := sim.DefaultPKI()
	if err != nil {
		t.Fatal(err)
	}
	mrTD := sha512.Sum384([]byte("victim firmware"))
	kernel := sha512.Sum384([]byte("victim kernel"))
	cmdline := sha512.Sum384([]byte("victim command line and initrd"))
	owner := sha512.Sum384([]byte("victim owner"))
	victim := sim.Identity{MrTD: mrTD, MrOwner: owner}
	victim.Rtmr[1] = kernel
	victim.Rtmr[2] = cmdline
	verify := func(version int, id sim.Identity) *claims.Claims {
		t.Helper()
		return simClaims(t, sim.Options{PKI: pki, TEE: claims.TDX, QuoteVersion: version, Identity: id})
	}
	p, err := policy.Parse(fmt.Appendf(nil, "allow_simulated: true\napps:\n  - {id: td, tee: tdx, mr_td: %x, rtmr1: %x, rtmr2: %x, mr_owner: %x, secrets: {k: v}}\n", mrTD, kernel, cmdline, owner), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	attackerKernel := victim
	attackerKernel.Rtmr[1] = sha512.Sum384([]byte("attacker kernel"))
	noSeptVE := victim
	noSeptVE.TdAttributes = [8]byte{3: 0x40} // PKS alone, as a real TD without SEPT_VE_DISABLE
	serviceTD := victim
	serviceTD.MrServiceTD = sha512.Sum384([]byte("a migration TD"))
	for _, tc := range []struct {
		name    string
		version int
		id      sim.Identity
		reason  error
	}{
		{"victim v4", 4, victim, nil},
		{"victim v5", 5, victim, nil},
		{"attacker kernel, same firmware and owner", 4, attackerKernel, policy.ErrNoMatchingApp},
		{"no SEPT_VE_DISABLE", 4, noSeptVE, policy.ErrTDAttributeNotAllowed},
		{"bound service TD", 5, serviceTD, policy.ErrServiceTDNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := p.Match(verify(tc.version, tc.id))
			if tc.reason == nil {
				if err != nil || a.ID != "td" {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.reason) {
				t.Fatalf("want %v, got %v", tc.reason, err)
			}
		})
	}
}
