package server

import (
	"fmt"
	"net"
	"testing"
)

// TestAttack_IPv6AddressRotationEvadesPerAddressCaps: one IPv6 host holds
// a /64, so per-address limits count the /64.
func TestAttack_IPv6AddressRotationEvadesPerAddressCaps(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"[2001:db8:1:2::1]:443", "[2001:db8:1:2:ffff::9]:80"},
		{"[::1]:1", "[::2]:2"},
		{"127.0.0.1:1", "127.0.0.1:2"},
	} {
		a, _ := net.ResolveTCPAddr("tcp", tc.a)
		b, _ := net.ResolveTCPAddr("tcp", tc.b)
		if hostOf(a) != hostOf(b) {
			t.Errorf("%s and %s count as different sources: %s, %s", tc.a, tc.b, hostOf(a), hostOf(b))
		}
	}
	a, _ := net.ResolveTCPAddr("tcp", "[2001:db8:1:2::1]:1")
	b, _ := net.ResolveTCPAddr("tcp", "[2001:db8:1:3::1]:1")
	if hostOf(a) == hostOf(b) {
		t.Error("different /64s count as one source")
	}
}

// addrConn is a connection from a chosen remote address.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// TestAttack_ConnectionCapSpreadOverIPv6Prefixes: --max-conns-per-ip counts
// an IPv6 /64, and one allocation (a /48) holds 65,536 of them: rotating
// the /64 gave one attacker 65,536 times the cap. A /48 now holds at most
// prefixFactor times the per-address cap; another /48, and IPv4, are
// untouched; a closed connection gives its place back.
func TestAttack_ConnectionCapSpreadOverIPv6Prefixes(t *testing.T) {
	const perIP = 2
	l := newConnLimiter(nil, 0, perIP, 0, nil)
	conn := func(addr string) net.Conn {
		t.Helper()
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c, peer := net.Pipe()
		t.Cleanup(func() { c.Close(); peer.Close() })
		return addrConn{Conn: c, remote: a}
	}
	var admitted []*limitedConn
	for i := range 64 { // 64 /64s of one /48, perIP connections each
		for j := range perIP {
			if lc := l.admit(conn(fmt.Sprintf("[2001:db8:7:%x::%x]:443", i, j+1))); lc != nil {
				admitted = append(admitted, lc)
			}
		}
	}
	if want := perIP * prefixFactor; len(admitted) != want {
		t.Fatalf("%d connections admitted from one /48 spread over 64 /64s; want %d (%d per /64 × %d)", len(admitted), want, perIP, prefixFactor)
	}
	if l.admit(conn("[2001:db8:8::1]:443")) == nil {
		t.Error("another /48 refused")
	}
	if l.admit(conn("192.0.2.1:443")) == nil {
		t.Error("an IPv4 source refused")
	}
	admitted[0].Close()
	if l.admit(conn("[2001:db8:7:ffff::1]:443")) == nil {
		t.Error("a place given back by a closed connection is not reused")
	}
}
