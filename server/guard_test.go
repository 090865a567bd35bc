package server

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func tcpAddr(t *testing.T, s string) net.Addr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAttack_FailedAttestationFloodSpreadOverIPv6Prefixes: failed
// attestations were rate-limited per source only (an IPv4 address, an
// IPv6 /64). A routed /48 holds 65,536 /64s: an attacker rotating over
// them had 65,536 times the budget of one host. Failures now also count
// against the /48 (with prefixFactor times a /64's budget), so a new /64
// of an exhausted /48 is refused before any verification; other /48s
// and IPv4 sources are untouched.
func TestAttack_FailedAttestationFloodSpreadOverIPv6Prefixes(t *testing.T) {
	const burst = 3
	l := newSourceLimiter(rate.Limit(0.0001), burst, 1<<16)
	now := time.Unix(1_700_000_000, 0)
	// Each /64 of 2001:db8:7::/48 fails burst-1 times: under its own limit.
	var spent int
	for i := 0; spent < burst*prefixFactor; i++ {
		a := tcpAddr(t, fmt.Sprintf("[2001:db8:7:%x::1]:443", i))
		for range burst - 1 {
			if l.blocked(a, now) {
				t.Fatalf("/64 number %d blocked after %d failures of its /48, before the /48's budget of %d", i, spent, burst*prefixFactor)
			}
			l.failed(a, now)
			spent++
		}
	}
	for _, tc := range []struct {
		addr    string
		blocked bool
	}{
		{"[2001:db8:7:ffff::1]:443", true},              // a fresh /64 of the exhausted /48
		{"[2001:db8:7:ffff:1:2:3:4]:9", true},           // any address in it
		{"[2001:db8:8::1]:443", false},                  // the next /48
		{"[::ffff:203.0.113.9]:443", false},             // IPv4-mapped: an IPv4 source
		{"203.0.113.9:443", false},                      // IPv4
		{"[2001:db8:7:0::1]:1", true},                   // the first /64 (its /48 exhausted)
		{"[2001:0db8:0007:00aa:0:0:0:1]:1234", true},    // spelled out
		{"[2001:db8:6:ffff:ffff:ffff:ffff:1]:1", false}, // the /48 below
	} {
		if got := l.blocked(tcpAddr(t, tc.addr), now); got != tc.blocked {
			t.Errorf("%s: blocked %v, want %v", tc.addr, got, tc.blocked)
		}
	}
	// IPv4 sources are limited per address, not aggregated by prefix.
	for i := range burst {
		a := tcpAddr(t, fmt.Sprintf("198.51.100.%d:1", i+1))
		for range burst {
			l.failed(a, now)
		}
	}
	if l.blocked(tcpAddr(t, "198.51.100.200:1"), now) {
		t.Error("an IPv4 neighbour of failing addresses is blocked")
	}
	if !l.blocked(tcpAddr(t, "198.51.100.1:1"), now) {
		t.Error("an IPv4 address past its own budget is not blocked")
	}
}

// TestFailSourcesKeys: the keys a failure is counted under.
func TestFailSourcesKeys(t *testing.T) {
	for _, tc := range []struct{ addr, host, prefix string }{
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64", "2001:db8:1::/48"},
		{"[2001:db8:1:ffff::1]:1", "2001:db8:1:ffff::/64", "2001:db8:1::/48"},
		{"[::1]:7443", "::/64", "::/48"},
		{"127.0.0.1:7443", "127.0.0.1", ""},
		{"[::ffff:10.1.2.3]:1", "10.1.2.3", ""},
	} {
		host, prefix := failSources(tcpAddr(t, tc.addr))
		if host != tc.host || prefix != tc.prefix {
			t.Errorf("%s: %q %q, want %q %q", tc.addr, host, prefix, tc.host, tc.prefix)
		}
	}
	if h, p := failSources(nil); h != "" || p != "" {
		t.Errorf("nil address: %q %q", h, p)
	}
}

// TestVerifyGateBoundsAndQueue: n at once, 4n waiting, the rest refused;
// a waiter gets a slot when one frees.
func TestVerifyGateBoundsAndQueue(t *testing.T) {
	g := newVerifyGate(1, time.Hour, nil)
	rel, ok := g.enter(context.Background())
	if !ok {
		t.Fatal("first verification refused")
	}
	got := make(chan bool, 5)
	for range 5 {
		go func() {
			r, ok := g.enter(context.Background())
			got <- ok
			if ok {
				r()
			}
		}()
	}
	if ok := <-got; ok {
		t.Fatal("a sixth verification was let in while one ran and four waited")
	}
	rel()
	for range 4 {
		if ok := <-got; !ok {
			t.Fatal("a waiting verification was refused after the slot freed")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, _ := g.enter(context.Background())
	if _, ok := g.enter(ctx); ok {
		t.Fatal("a cancelled request got a slot while the gate was full")
	}
	r()
}
