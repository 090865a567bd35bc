package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func selfSignedDER(tb testing.TB, cn string) []byte {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// FuzzIntelCtx feeds arbitrary `ctx` strings (Intel ASPS's SecretRequest
// field, where Intel's client puts its RA-TLS certificate) to
// checkIntelCtx, on a connection with a client certificate and on one
// without. Beyond not panicking: blank ctx is accepted; a non-blank ctx is
// accepted only when its first PEM block is exactly the connection's
// client certificate; refusals are InvalidArgument or Unauthenticated with
// a fixed message that never echoes the ctx text.
func FuzzIntelCtx(f *testing.F) {
	own, other := selfSignedDER(f, "the connection's client certificate"), selfSignedDER(f, "someone else's certificate")
	leaf, err := x509.ParseCertificate(own)
	if err != nil {
		f.Fatal(err)
	}
	ownPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: own}))
	otherPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other}))
	for _, s := range []string{"", " \n\t", ownPEM, otherPEM, otherPEM + ownPEM, "junk\n" + ownPEM, ownPEM[:len(ownPEM)/2],
		strings.Replace(ownPEM, "CERTIFICATE", "PRIVATE KEY", 2), "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "\x1b]0;x\x07"} {
		f.Add(s)
	}
	withCert := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1},
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}}})
	without := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2},
		AuthInfo: credentials.TLSInfo{}})
	fixed := map[string]bool{}
	for _, c := range []string{"x", otherPEM} {
		for _, ctx := range []context.Context{withCert, without} {
			if err := checkIntelCtx(ctx, c); err != nil {
				fixed[status.Convert(err).Message()] = true
			}
		}
	}
	if len(fixed) != 3 {
		f.Fatalf("want the 3 refusal messages from the seeds, got %v", fixed)
	}
	f.Fuzz(func(t *testing.T, c string) {
		blank := strings.TrimSpace(c) == ""
		blk, _ := pem.Decode([]byte(c))
		same := blk != nil && bytes.Equal(blk.Bytes, leaf.Raw)
		for _, tc := range []struct {
			name string
			ctx  context.Context
			ok   bool
		}{{"with a client certificate", withCert, blank || same}, {"without one", without, blank}} {
			err := checkIntelCtx(tc.ctx, c)
			if (err == nil) != tc.ok {
				t.Fatalf("%s: ctx %q: err %v, want accepted=%v", tc.name, c, err, tc.ok)
			}
			if err == nil {
				continue
			}
			st, _ := status.FromError(err)
			if st.Code() != codes.InvalidArgument && st.Code() != codes.Unauthenticated {
				t.Fatalf("%s: refusal code %v", tc.name, st.Code())
			}
			if !fixed[st.Message()] {
				t.Fatalf("%s: refusal message %q is not one of the fixed ones (it may echo the ctx text)", tc.name, st.Message())
			}
		}
	})
}

// FuzzFailSources feeds arbitrary addresses to the keying of the
// per-source limits. Beyond not panicking: the source key is hostOf's; an
// IPv6 source is its /64 and its prefix key its /48 (the /64 inside the
// /48); addresses that differ only below bit 64 share both keys, and
// addresses that differ only in bits 48–63 share the /48 key and not the
// /64 key; IPv4 (and IPv4-mapped) sources have no prefix key.
func FuzzFailSources(f *testing.F) {
	f.Add([]byte(net.ParseIP("2001:db8:1:2::1")), uint16(443))
	f.Add([]byte(net.ParseIP("127.0.0.1")), uint16(1))
	f.Add([]byte(net.ParseIP("::ffff:10.0.0.1")), uint16(0))
	f.Add([]byte{1, 2, 3}, uint16(9))
	f.Fuzz(func(t *testing.T, ip []byte, port uint16) {
		a := &net.TCPAddr{IP: net.IP(ip), Port: int(port)}
		host, prefix := failSources(a)
		if host != hostOf(a) {
			t.Fatalf("%v: source key %q, hostOf %q", a, host, hostOf(a))
		}
		if len(ip) != net.IPv6len || net.IP(ip).To4() != nil {
			if prefix != "" {
				t.Fatalf("%v: a prefix key %q for a non-IPv6 source", a, prefix)
			}
			return
		}
		if !strings.HasSuffix(host, "/64") || !strings.HasSuffix(prefix, "/48") {
			t.Fatalf("%v: keys %q %q", a, host, prefix)
		}
		low := bytes.Clone(ip)
		for i := 8; i < 16; i++ {
			low[i] ^= 0xa5
		}
		if h, p := failSources(&net.TCPAddr{IP: low, Port: int(port) ^ 1}); h != host || p != prefix {
			t.Fatalf("%v and %v (same /64) have keys %q %q and %q %q", ip, low, host, prefix, h, p)
		}
		mid := bytes.Clone(ip)
		mid[7] ^= 0x01
		if net.IP(mid).To4() != nil {
			return
		}
		if h, p := failSources(&net.TCPAddr{IP: mid, Port: int(port)}); h == host || p != prefix {
			t.Fatalf("%v and %v (same /48, other /64) have keys %q %q and %q %q", ip, mid, host, prefix, h, p)
		}
	})
}

// FuzzOcclumDecode: Occlum's reply encoding (a JSON string of base64)
// round-trips any value, and whatever OcclumDecode accepts re-encodes to
// text that decodes to the same bytes.
func FuzzOcclumDecode(f *testing.F) {
	f.Add([]byte("secret"), `"c2VjcmV0"`)
	f.Add([]byte{}, `""`)
	f.Add([]byte{0, 0xff}, `"\u0041A=="`)
	f.Fuzz(func(t *testing.T, v []byte, s string) {
		got, err := OcclumDecode(occlumEncode(v))
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("%x does not round-trip: %x, %v", v, got, err)
		}
		d, err := OcclumDecode(s)
		if err != nil {
			return
		}
		d2, err := OcclumDecode(occlumEncode(d))
		if err != nil || !bytes.Equal(d, d2) {
			t.Fatalf("%q decodes to %x, which does not round-trip: %x, %v", s, d, d2, err)
		}
	})
}
