package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"testing"

	"github.com/asps-project/asps/devmode"
)

// TestBenchProvisionAgainstServerProcess runs `asps bench provision`
// against a real `asps server`, reading its verdict-cache counts from
// --metrics-url and its CPU from --server-pid: with fresh evidence the
// cache answers none of the provisions; with reused certificates it
// answers all but each client's first; with --verdict-cache-bytes 0 it
// answers none.
func TestBenchProvisionAgainstServerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server process")
	}
	bin := buildBinary(t)
	for _, tc := range []struct {
		name       string
		serverArgs []string
		benchArgs  []string
		cached     bool // some provisions answered by the verdict cache
	}{
		{"fresh evidence", nil, []string{"--fresh-evidence", "--client", "http2"}, false},
		{"reused certificates", nil, nil, true},
		{"reused certificates, no verdict cache", []string{"--verdict-cache-bytes", "0"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startServerProcess(t, tc.serverArgs...)
			args := append([]string{"bench", "provision", "--server", p.addr, "--server-pin", p.pin, "--dev-dir", p.dir,
				"--metrics-url", "http://" + p.http + "/metrics", "--server-pid", fmt.Sprint(p.cmd.Process.Pid),
				"--clients", "2", "--duration", "1s", "--json"}, tc.benchArgs...)
			out, err := exec.Command(bin, args...).Output()
			if err != nil {
				t.Fatalf("bench provision: %v\n%s", err, out)
			}
			var r devmode.BenchResult
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if r.Provisions == 0 || r.Errors != 0 || r.VerdictCacheAnswers == nil || r.FreshQuotesVerified == nil {
				t.Fatalf("%s", out)
			}
			answers, verified := *r.VerdictCacheAnswers, *r.FreshQuotesVerified
			if tc.cached && (answers == 0 || verified != 2) || !tc.cached && (answers != 0 || verified < uint64(r.Provisions)) {
				t.Fatalf("%d provisions: %d answered by the verdict cache, %d verified\n%s", r.Provisions, answers, verified, out)
			}
			if r.ServerCPUSeconds <= 0 {
				t.Errorf("no server CPU read from /proc: %s", out)
			}
		})
	}
}

// TestVerdictCacheBytesFlag: a negative bound is a usage error.
func TestVerdictCacheBytesFlag(t *testing.T) {
	bin := buildBinary(t)
	for _, f := range []string{"--verdict-cache-bytes", "--negative-cache-bytes"} {
		err := exec.Command(bin, "server", "--policy", "x.yaml", f, "-1").Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%s -1: %v, want exit code 2", f, err)
		}
	}
}
