package attest_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/asps-project/asps/attest"
)

// TestDetectOrder: configfs-tsm (tdx_guest) first, then Gramine, then
// Occlum; the first usable one wins.
func TestDetectOrder(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *standIn)
		want  string
	}{
		{"all three", func(s *standIn) { s.withTSM("tdx_guest").withGramine("dcap").withOcclum() }, "tsm"},
		{"gramine and occlum", func(s *standIn) { s.withGramine("dcap").withOcclum() }, "gramine"},
		{"occlum", func(s *standIn) { s.withOcclum() }, "occlum"},
		{"tsm of another vendor, then gramine", func(s *standIn) { s.withTSM("sev_guest").withGramine("dcap") }, "gramine"},
		{"gramine without dcap, then occlum", func(s *standIn) { s.withGramine("none").withOcclum() }, "occlum"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStandIn(t)
			tc.setup(s)
			a, err := attest.DetectWith(s.opts())
			if err != nil {
				t.Fatal(err)
			}
			if a.Name() != tc.want {
				t.Errorf("detected %s, want %s", a.Name(), tc.want)
			}
			if left := s.leftEntries(); len(left) != 0 {
				t.Errorf("detection left configfs-tsm entries behind: %q", left)
			}
			if a.Name() != "occlum" && s.dev != nil && len(s.dev.reqs) != 0 {
				t.Errorf("Occlum's device was asked %#x although %s came first", s.dev.reqs, a.Name())
			}
			// The detected attester works.
			rd := reportData("detected " + tc.name)
			q, err := a.Quote(t.Context(), rd)
			if err != nil {
				t.Fatal(err)
			}
			tee := "sgx"
			if a.Name() == "tsm" {
				tee = "tdx"
			}
			checkQuote(t, q, tee, rd)
		})
	}
}

// TestDetectNone: no usable TEE gives ErrNoTEE, naming every path looked
// at and what was seen there, in order.
func TestDetectNone(t *testing.T) {
	t.Run("nothing", func(t *testing.T) {
		s := newStandIn(t)
		a, err := attest.DetectWith(s.opts())
		if a != nil {
			t.Errorf("detected %s", a.Name())
		}
		if !errors.Is(err, attest.ErrNoTEE) {
			t.Fatalf("error %v does not wrap ErrNoTEE", err)
		}
		var nt *attest.NoTEEError
		if !errors.As(err, &nt) {
			t.Fatalf("error %T is not a *NoTEEError", err)
		}
		var names []string
		for _, f := range nt.Findings {
			names = append(names, f.Attester)
			if f.Usable() || f.Seen != "not found" {
				t.Errorf("%s: seen %q usable %v, want not found", f.Attester, f.Seen, f.Usable())
			}
		}
		if strings.Join(names, ",") != "tsm,gramine,occlum" {
			t.Errorf("looked for %q, want tsm, gramine, occlum in that order", names)
		}
		msg := err.Error()
		for _, p := range []string{
			"tsm at " + s.p("/sys/kernel/config/tsm/report"),
			"gramine at " + s.p("/dev/attestation/attestation_type"),
			"occlum at " + s.p("/dev/sgx"),
			"not found", "simulator is never chosen automatically",
		} {
			if !strings.Contains(msg, p) {
				t.Errorf("error %q\ndoes not mention %q", msg, p)
			}
		}
		if i, j, k := strings.Index(msg, "tsm at"), strings.Index(msg, "gramine at"), strings.Index(msg, "occlum at"); !(i < j && j < k) {
			t.Errorf("error %q does not list tsm, gramine, occlum in order", msg)
		}
	})
	t.Run("misconfigured", func(t *testing.T) {
		s := newStandIn(t).withTSM("sev_guest").withGramine("none")
		os.MkdirAll(s.p("/dev/sgx/enclave"), 0o755)
		_, err := attest.DetectWith(s.opts())
		wantErr(t, err, "no TEE found",
			`is "sev_guest", want "tdx_guest"`,
			`is "none", want "dcap"`, `sgx.remote_attestation = "dcap"`,
			"/dev/sgx is a directory")
		if !errors.Is(err, attest.ErrNoTEE) {
			t.Errorf("error %v does not wrap ErrNoTEE", err)
		}
		var nt *attest.NoTEEError
		errors.As(err, &nt)
		seen := map[string]string{}
		for _, f := range nt.Findings {
			seen[f.Attester] = f.Seen
		}
		want := map[string]string{"tsm": `provider "sev_guest"`, "gramine": `attestation type "none"`, "occlum": "a directory"}
		for k, v := range want {
			if seen[k] != v {
				t.Errorf("%s: seen %q, want %q", k, seen[k], v)
			}
		}
		if left := s.leftEntries(); len(left) != 0 {
			t.Errorf("detection left configfs-tsm entries behind: %q", left)
		}
	})
}

func TestProbeStopsAtFirstUsable(t *testing.T) {
	s := newStandIn(t).withGramine("dcap").withOcclum()
	f := attest.Probe(s.opts())
	if len(f) != 2 || f[0].Attester != "tsm" || f[1].Attester != "gramine" || !f[1].Usable() {
		t.Fatalf("findings %+v, want tsm (not found) then gramine (usable)", f)
	}
	if f[1].Seen != `attestation type "dcap"` {
		t.Errorf("gramine seen %q", f[1].Seen)
	}
	if len(s.opened) != 0 {
		t.Errorf("Occlum's device was opened although Gramine came first")
	}
}

func TestByName(t *testing.T) {
	s := newStandIn(t).withTSM("tdx_guest").withGramine("dcap").withOcclum()
	for name, want := range map[string]string{
		"gramine": "gramine", "occlum": "occlum", "tsm": "tsm", "tdx": "tsm", "configfs-tsm": "tsm",
		"TSM": "tsm", "auto": "tsm", "": "tsm",
	} {
		a, err := attest.ByNameWith(name, s.opts())
		if err != nil {
			t.Errorf("%q: %v", name, err)
			continue
		}
		if a.Name() != want {
			t.Errorf("%q: got %s, want %s", name, a.Name(), want)
		}
	}
	if left := s.leftEntries(); len(left) != 0 {
		t.Errorf("entries left behind: %q", left)
	}
}

func TestByNameErrors(t *testing.T) {
	s := newStandIn(t)
	_, err := attest.ByNameWith("sim", s.opts())
	if !errors.Is(err, attest.ErrSimulator) {
		t.Errorf("sim: %v, want ErrSimulator", err)
	}
	wantErr(t, err, "dev mode", "simulator PKI", "--dev-dir")
	if errors.Is(err, attest.ErrNoTEE) {
		t.Error("sim: the error says no TEE was found; it should say the simulator is dev mode only")
	}

	_, err = attest.ByNameWith("sgx-sdk", s.opts())
	if !errors.Is(err, attest.ErrUnknownTEE) {
		t.Errorf("unknown: %v, want ErrUnknownTEE", err)
	}
	wantErr(t, err, `"sgx-sdk"`, "gramine", "occlum", "tsm")

	for name, parts := range map[string][]string{
		"gramine": {"asked for gramine", s.p("/dev/attestation/attestation_type"), "not found"},
		"occlum":  {"asked for occlum", s.p("/dev/sgx"), "not found"},
		"tsm":     {"asked for tsm", s.p("/sys/kernel/config/tsm/report"), "not found"},
	} {
		_, err := attest.ByNameWith(name, s.opts())
		if !errors.Is(err, attest.ErrNoTEE) {
			t.Errorf("%s: %v does not wrap ErrNoTEE", name, err)
		}
		wantErr(t, err, parts...)
	}

	s.withGramine("epid")
	_, err = attest.ByNameWith("gramine", s.opts())
	wantErr(t, err, `is "epid", want "dcap"`, `sgx.remote_attestation = "dcap"`)
}

func TestRuntime(t *testing.T) {
	sgx, _ := simAttesters(t)
	if r := attest.Runtime(sgx); r != "sim" {
		t.Errorf("simulator runtime %q, want sim", r)
	}
	if r := attest.Runtime(nil); r != "" {
		t.Errorf("nil runtime %q", r)
	}
}
