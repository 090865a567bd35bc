package collateral

import (
	"context"
	"net"
	"net/http"
	"testing"
)

// TestAttack_MirrorIdleConnectionFlood: the mirror answers anyone and had
// no connection limit: one address could open connections that never send
// a request (each held up to the header timeout, renewed at will) until
// the process ran out of file descriptors — and with them its upstream
// fetches and cache files. One client now holds at most
// MaxMirrorConnsPerClient; over it its connections are closed at once,
// and another client is still served.
func TestAttack_MirrorIdleConnectionFlood(t *testing.T) {
	src := failingSource{func(k Key) error { return &Error{Key: k, Reason: ErrNotFound} }}
	srv := NewMirrorServer(NewHandler(src))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(LimitConnections(ln))
	t.Cleanup(func() { srv.Shutdown(context.Background()); srv.Close() })
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range MaxMirrorConnsPerClient {
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	extra, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.Write([]byte("GET /sgx/certification/v4/qe/identity HTTP/1.1\r\nHost: x\r\n\r\n"))
	if n, err := extra.Read(make([]byte, 64)); err == nil {
		t.Fatalf("connection %d of one client was served (%d bytes)", MaxMirrorConnsPerClient+1, n)
	}
	resp, err := http.Get("http://" + ln.Addr().String() + "/sgx/certification/v4/qe/identity")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another client during the flood: %d", resp.StatusCode)
	}
}
