package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAttack_ZeroShedLimitRefusesEveryWorkload: a shedding limit of 0
// (a typo, an unset variable in a config template) would shed every
// provisioning request — or, as server.Limits reads 0, silently fall back
// to the default. Zero and negative limits are refused at start, naming
// the flag, from the command line and from the config file alike.
func TestAttack_ZeroShedLimitRefusesEveryWorkload(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-in-flight", "0"}, "--max-in-flight 0: want a positive value"},
		{[]string{"--max-in-flight", "-1"}, "--max-in-flight -1: want a positive value"},
		{[]string{"--max-waiting", "0"}, "--max-waiting 0: want a positive value"},
		{[]string{"--max-wait", "0s"}, "--max-wait 0s: want a positive value"},
		{[]string{"--max-wait", "-5ms"}, "--max-wait -5ms: want a positive value"},
		{[]string{"--shed-retry-after", "0s"}, "--shed-retry-after 0s: want a duration above 0 and at most 1m"},
		{[]string{"--shed-retry-after", "2h"}, "--shed-retry-after 2h0m0s: want a duration above 0 and at most 1m"},
		{[]string{"--max-verifications", "-2"}, "--max-verifications -2: want 0 (half the CPUs) or more"},
		{[]string{"--config", writeConfig(t, "a.yaml", "max-waiting: 0\n")}, "--max-waiting 0: want a positive value"},
		{[]string{"--config", writeConfig(t, "b.yaml", "max-in-flight: -3\n")}, "--max-in-flight -3: want a positive value"},
	} {
		args := append([]string{"server", "--policy", filepath.Join(dir, "no-such-policy.yaml")}, tc.args...)
		code, _, stderr := run(t, args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestShedFlagsInHelp: the shedding limits are documented where the other
// limits are.
func TestShedFlagsInHelp(t *testing.T) {
	_, out, stderr := run(t, "help", "server")
	for _, f := range []string{"--max-in-flight", "--max-waiting", "--max-wait ", "--shed-retry-after", "--max-verifications"} {
		if !strings.Contains(out+stderr, f) {
			t.Errorf("asps help server does not show %s", f)
		}
	}
}
