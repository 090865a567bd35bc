package server

import (
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
