package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
)

// TestAttack_RecognisedConnectionHoldsHeaderListsOnEveryStream: the cap on
// streams waiting for their request (8 per connection, 1,024 in all) stops
// at recognition. A connection whose first request matched an app — the
// app's own code, compromised, or any enclave of an app pinned by
// mr_signer and product — may then hold all 128 streams with header lists
// just under the 16 KiB limit and never send the request, renewed every
// 10 s, on each of its 256 connections per address (4,096 in all): about
// 37 KB of heap a stream, over a gigabyte per address. Waiting streams
// should stay bounded per connection and in all, recognised or not.
func TestAttack_RecognisedConnectionHoldsHeaderListsOnEveryStream(t *testing.T) {
	h := startHardened(t, nil)
	a, err := devmode.Attester(h.env.PKI, claims.SGX, devmode.DemoIdentity(claims.SGX))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ratls.NewCertificate(context.Background(), a, ratls.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const conns, streams = 4, 120
	before := heapInUse()
	held := 0
	for c := range conns {
		r := dialRawH2(t, h.addr, cert)
		// One complete WhoAmI: the connection is recognised.
		r.grpcHeaders("/asps.v1.Secrets/WhoAmI")
		if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.block(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if err := r.fr.WriteData(1, true, []byte{0, 0, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for answered := false; !answered; {
			f, err := r.fr.ReadFrame()
			if err != nil {
				t.Fatalf("connection %d: WhoAmI not answered: %v", c, err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					r.fr.WriteSettingsAck()
				}
			case *http2.GoAwayFrame:
				t.Fatalf("connection %d: GOAWAY %v", c, f.ErrCode)
			case *http2.RSTStreamFrame:
				t.Fatalf("connection %d: WhoAmI reset: %v", c, f.ErrCode)
			case *http2.HeadersFrame:
				answered = f.StreamID == 1 && f.StreamEnded()
			}
		}
		r.conn.SetReadDeadline(time.Time{})
		for s := 1; s <= streams; s++ {
			r.grpcHeaders("/asps.v1.Secrets/GetSecrets")
			for i := range 300 { // about 15 KiB decoded, under the limit
				r.enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-%d", i), Value: "vvvvvvvvvvvvvv", Sensitive: true})
			}
			if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*s + 1), BlockFragment: r.block(), EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
		}
		r.fr.WritePing(false, [8]byte{0xff})
		o := r.readUntilPingAck(t, 10*time.Second)
		if o.ended {
			t.Fatalf("connection %d ended: %v", c, o.endErr)
		}
		held += streams - len(o.answered)
	}
	grew := int64(heapInUse()) - int64(before)
	t.Logf("%d streams of 15 KiB headers waiting on %d recognised connections: heap +%d KiB", held, conns, grew>>10)
	if held > 8*conns {
		t.Errorf("%d streams wait for their request on %d recognised connections, want at most %d", held, conns, 8*conns)
	}
	if grew > 8<<20 {
		t.Errorf("heap grew %d MiB while the streams wait", grew>>20)
	}
}
