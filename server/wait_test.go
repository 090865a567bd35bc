package server_test

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestAttack_HeaderListsHeldOnEveryStream: the header-list limit (16 KiB)
// bounds one stream, the request wait (10 s) how long it is held — but a
// peer with a certificate that only passes the handshake's screen (no TEE
// needed) could fill all 128 streams of each of its connections with
// header lists just under the limit and never send the request: measured
// 37 KB of heap per stream (480 streams on 4 connections: +17 MiB), so
// 256 connections from one address held over a gigabyte, renewed every
// 10 s. On a connection whose workload is not attested and recognised at
// most 8 streams may now wait for their request (1,024 in all); the rest
// are refused at once, and a legitimate fetch is served meanwhile.
func TestAttack_HeaderListsHeldOnEveryStream(t *testing.T) {
	h := startHardened(t, nil)
	cert := untrustedCert(t)
	const conns, streams = 4, 120
	before := heapInUse()
	for c := range conns {
		r := dialRawH2(t, h.addr, cert)
		for s := range streams {
			r.grpcHeaders("/asps.v1.Secrets/GetSecrets")
			for i := range 300 { // about 15 KiB decoded, under the limit
				r.enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-%d", i), Value: "vvvvvvvvvvvvvv", Sensitive: true})
			}
			if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*s + 1), BlockFragment: r.block(), EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
		}
		r.fr.WritePing(false, [8]byte{1})
		o := r.readUntilPingAck(t, 10*time.Second)
		if o.ended {
			t.Fatalf("connection %d ended: %v", c, o.endErr)
		}
		if waiting := streams - len(o.answered); waiting > 8 {
			t.Fatalf("connection %d: %d streams wait for their request, want at most 8", c, waiting)
		}
	}
	grew := int64(heapInUse()) - int64(before)
	t.Logf("%d streams of %d KiB headers on %d unattested connections: heap +%d KiB", conns*streams, 15, conns, grew>>10)
	if grew > 8<<20 {
		t.Fatalf("heap grew %d MiB while the streams wait", grew>>20)
	}
	if err := h.legitFetch(t); err != nil {
		t.Fatalf("legitimate fetch while the streams wait: %v", err)
	}
}
