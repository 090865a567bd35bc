package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/collateral"
	"github.com/asps-project/asps/internal/testdata"
)

// TestAttack_CollateralServeFIFOAtStartup: a FIFO where a bundle document
// (or the TLS certificate) should be hung `asps collateral serve` at
// start-up, and SIGTERM was swallowed. Now it is refused at once and the
// process exits; should it not, SIGTERM must still end it.
func TestAttack_CollateralServeFIFOAtStartup(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name string
		args func(dir string) []string
		fifo string // relative to dir
	}{
		{"bundle document", func(dir string) []string {
			return []string{"collateral", "serve", "--dir", dir, "--listen", "127.0.0.1:0"}
		}, "tcb/sgx/00A067110000.json"},
		{"TLS certificate", func(dir string) []string {
			return []string{"collateral", "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "cert.pem")}
		}, "cert.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, filepath.FromSlash(tc.fifo))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skip("no FIFOs:", err)
			}
			var stderr bytes.Buffer
			cmd := exec.Command(bin, tc.args(dir)...)
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(15 * time.Second): // a hang guard
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
					t.Fatalf("start-up hung on the FIFO (SIGTERM ended it)\n%s", stderr.String())
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					<-done
					t.Fatalf("start-up hung on the FIFO and SIGTERM was swallowed\n%s", stderr.String())
				}
			}
			if err == nil || !strings.Contains(stderr.String(), "not a regular file: a FIFO") {
				t.Fatalf("exit %v; stderr:\n%s", err, stderr.String())
			}
		})
	}
}

// TestAttack_PlainHTTPPCCSRefusedByCommands: --pccs http://… off loopback
// is refused by the commands that take it, saying how to allow it.
func TestAttack_PlainHTTPPCCSRefusedByCommands(t *testing.T) {
	var quote string
	for _, c := range testdata.DCAPCases(t) {
		quote = filepath.Join(c.Dir, "quote.bin")
		break
	}
	out := t.TempDir()
	for _, args := range [][]string{
		{"collateral", "fetch", "--pccs", "http://pccs.example:8081", "--fmspc", "00A067110000", "--out", out},
		{"collateral", "serve", "--pccs", "http://pccs.example:8081", "--dir", out},
		{"quote", "verify", quote, "--pccs", "http://pccs.example:8081"},
	} {
		if quote == "" && args[0] == "quote" {
			continue
		}
		code, stdout, stderr := run(t, args...)
		if code == 0 || !strings.Contains(stdout+stderr, "plain-http collateral service refused") || !strings.Contains(stdout+stderr, "--pccs-allow-http") {
			t.Errorf("%v: exit %d\n%s%s", args[:2], code, stdout, stderr)
		}
	}
}

// TestCollateralMetrics: the collateral counters, rollback refusals and
// limited fetches among them, reach the server's metrics.
func TestCollateralMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collateralCollector(fakeStats{collateral.Stats{Rollbacks: 3, Limited: 5, InFlight: 2}}))
	static := prometheus.NewRegistry()
	static.MustRegister(collateralCollector(collateral.NewStatic(nil)))
	if mfs, err := static.Gather(); err != nil || len(mfs) != 0 {
		t.Fatalf("a static source exports %v, %v", mfs, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			if m.Counter != nil {
				got[name] = m.GetCounter().GetValue()
			} else {
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	if got["asps_collateral_documents_total/rollback_refused"] != 3 || got["asps_collateral_documents_total/limited"] != 5 || got["asps_collateral_fetches_in_flight"] != 2 {
		t.Fatalf("metrics %v", got)
	}
}

type fakeStats struct{ s collateral.Stats }

func (f fakeStats) Stats() collateral.Stats { return f.s }

func (fakeStats) Get(context.Context, string, string, string) (*dcap.Collateral, collateral.Info, error) {
	return nil, collateral.Info{}, nil
}
