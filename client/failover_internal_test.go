package client

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestBackoffHonoursHintWithJitter: waits are never shorter than the
// server's hint, never longer than twice the hint or Max, and differ
// between draws (clients do not return in step).
func TestBackoffHonoursHintWithJitter(t *testing.T) {
	r := Retry{}.withDefaults()
	for _, tc := range []struct {
		n    int
		hint time.Duration
	}{{1, 0}, {3, 0}, {30, 0}, {1, 250 * time.Millisecond}, {5, 2 * time.Second}} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := r.backoff(tc.n, tc.hint)
			if d <= 0 || d < tc.hint || d > max(r.Max, 2*tc.hint)+time.Nanosecond {
				t.Fatalf("n=%d hint=%v: wait %v", tc.n, tc.hint, d)
			}
			seen[d] = true
		}
		if len(seen) < 50 {
			t.Fatalf("n=%d hint=%v: only %d distinct waits in 200", tc.n, tc.hint, len(seen))
		}
	}
}

func TestTargetParsing(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr bool
		multi   bool
	}{
		{"127.0.0.1:1", false, false},
		{"dns:///asps.example:7443", false, false},
		{"127.0.0.1:1,127.0.0.1:2", false, true},
		{" 127.0.0.1:1 , [::1]:2 ,", false, true},
		{"", true, false},
		{",", true, false},
		{"127.0.0.1:1,nohost", true, false},
		{"127.0.0.1:1,dns:///x:1", true, false},
	} {
		tgt, _, err := Target(tc.in)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%q: err %v", tc.in, err)
		}
		if err == nil && tc.multi != (tgt != tc.in && tgt != "127.0.0.1:1") {
			t.Fatalf("%q: target %q", tc.in, tgt)
		}
	}
}

// FuzzTarget: any --server value is refused or yields a target; a list of
// several is accepted only when every entry is a host:port.
func FuzzTarget(f *testing.F) {
	for _, s := range []string{"127.0.0.1:1", "a:1,b:2", "dns:///x:1", ",,", "[::1]:1, x", "a:1,dns:///b:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tgt, _, err := Target(s)
		if err != nil {
			return
		}
		if tgt == "" {
			t.Fatalf("%q: empty target", s)
		}
		var entries []string
		for a := range strings.SplitSeq(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				entries = append(entries, a)
			}
		}
		for _, a := range entries {
			if _, _, err := net.SplitHostPort(a); len(entries) > 1 && err != nil {
				t.Fatalf("%q: entry %q accepted in a list", s, a)
			}
		}
	})
}
