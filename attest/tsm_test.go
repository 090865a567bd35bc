package attest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/asps-project/asps/attest"
)

func TestTSMQuote(t *testing.T) {
	s := newStandIn(t).withTSM("tdx_guest")
	a := attest.NewTSM(s.opts())
	if a.Name() != "tsm" || attest.Runtime(a) != "tdx-guest" {
		t.Errorf("name %q runtime %q, want tsm, tdx-guest", a.Name(), attest.Runtime(a))
	}
	rd := reportData("tdx guest")
	q, err := a.Quote(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	checkQuote(t, q, "tdx", rd)
	if len(s.made) != 1 || len(s.removed) != 1 || s.made[0] != s.removed[0] {
		t.Errorf("entries made %q, removed %q: want one, made and removed", s.made, s.removed)
	}
	if left := s.leftEntries(); len(left) != 0 {
		t.Errorf("entries left behind: %q", left)
	}
	if !strings.HasPrefix(s.made[0], s.p("/sys/kernel/config/tsm/report/asps-")) {
		t.Errorf("entry %s, want one under the report directory named asps-…", s.made[0])
	}
}

// TestTSMConcurrentWriter: another writer bumps the entry's generation
// between our inblob write and outblob read; the attester notices, asks
// again, and gives up after a bounded number of attempts.
func TestTSMConcurrentWriter(t *testing.T) {
	t.Run("recovers", func(t *testing.T) {
		s := newStandIn(t).withTSM("tdx_guest")
		s.interfere = 2
		rd := reportData("ours")
		q, err := attest.NewTSM(s.opts()).Quote(context.Background(), rd)
		if err != nil {
			t.Fatal(err)
		}
		checkQuote(t, q, "tdx", rd)
		if s.interfere != 0 {
			t.Errorf("%d interferences left, want all used", s.interfere)
		}
		if left := s.leftEntries(); len(left) != 0 {
			t.Errorf("entries left behind: %q", left)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		s := newStandIn(t).withTSM("tdx_guest")
		s.interfere = 1000
		o := s.opts()
		o.TSMAttempts = 4
		_, err := attest.NewTSM(o).Quote(context.Background(), reportData("ours"))
		wantErr(t, err, s.p("/sys/kernel/config/tsm/report/asps-"), "another writer", "4 attempts",
			"generation 6 before writing inblob, 8 after reading outblob, want 7", "gave up")
		if s.interfere != 1000-4 {
			t.Errorf("%d attempts, want 4", 1000-s.interfere)
		}
		if left := s.leftEntries(); len(left) != 0 {
			t.Errorf("entries left behind after the error: %q", left)
		}
	})
}

func TestTSMErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *standIn)
		parts []string
	}{
		{"sev provider", func(s *standIn) { s.provider = "sev_guest" }, []string{"/provider", `is "sev_guest", want "tdx_guest"`, "Intel TDX quotes only"}},
		{"no provider", func(s *standIn) { s.providerErr = syscall.ENXIO }, []string{"/provider", "no such device or address", "load the tdx_guest module"}},
		{"not root", func(s *standIn) { s.mkdirErr = syscall.EACCES }, []string{"create a report entry in", "/sys/kernel/config/tsm/report", "permission denied", "needs root"}},
		{"rmdir fails", func(s *standIn) { s.rmdirErr = syscall.EBUSY }, []string{"remove report entry", "device or resource busy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStandIn(t).withTSM("tdx_guest")
			tc.setup(s)
			q, err := attest.NewTSM(s.opts()).Quote(context.Background(), reportData("x"))
			wantErr(t, err, tc.parts...)
			if q != nil {
				t.Error("a quote came back with the error")
			}
			if s.rmdirErr == nil {
				if left := s.leftEntries(); len(left) != 0 {
					t.Errorf("entries left behind: %q", left)
				}
			}
		})
	}
}

func TestTSMMissing(t *testing.T) {
	s := newStandIn(t)
	_, err := attest.NewTSM(s.opts()).Quote(context.Background(), reportData("x"))
	wantErr(t, err, s.p("/sys/kernel/config/tsm/report"), "not found")
}

// TestTSMConcurrentQuotes: each Quote has its own entry, so concurrent
// quotes in one process do not disturb each other.
func TestTSMConcurrentQuotes(t *testing.T) {
	s := newStandIn(t).withTSM("tdx_guest")
	a := attest.NewTSM(s.opts())
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd := reportData(fmt.Sprintf("quote %d", i))
			q, err := a.Quote(context.Background(), rd)
			if err != nil {
				t.Error(err)
				return
			}
			checkQuote(t, q, "tdx", rd)
		}()
	}
	wg.Wait()
	if len(s.made) != 6 || len(s.removed) != 6 {
		t.Errorf("%d entries made, %d removed; want 6 and 6", len(s.made), len(s.removed))
	}
	if left := s.leftEntries(); len(left) != 0 {
		t.Errorf("entries left behind: %q", left)
	}
}
