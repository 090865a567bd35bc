package collateral

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAttack_PlainHTTPPCCSRefused: a plain-http PCCS off loopback is
// refused (anyone on the path could replay older collateral and read the
// API key) unless the operator allows it; loopback is exempt.
func TestAttack_PlainHTTPPCCSRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    ClientOptions
		want error
	}{
		{"http PCCS", ClientOptions{BaseURL: "http://pccs.example:8081"}, ErrPlainHTTP},
		{"http PCCS by address", ClientOptions{BaseURL: "http://10.0.0.5:8081"}, ErrPlainHTTP},
		{"http PCCS named like loopback", ClientOptions{BaseURL: "http://127.0.0.1.example.com"}, ErrPlainHTTP},
		{"http root CA CRL", ClientOptions{BaseURL: "https://pccs.example:8081", RootCACRLURL: "http://crl.example/root.der"}, ErrPlainHTTP},
		{"http redirect origin", ClientOptions{BaseURL: "https://pccs.example:8081", RedirectOrigins: []string{"http://mirror.example"}}, ErrPlainHTTP},
		{"http PCCS allowed", ClientOptions{BaseURL: "http://pccs.example:8081", AllowHTTP: true}, nil},
		{"https PCCS", ClientOptions{BaseURL: "https://pccs.example:8081"}, nil},
		{"loopback v4", ClientOptions{BaseURL: "http://127.0.0.1:8081"}, nil},
		{"loopback 127/8", ClientOptions{BaseURL: "http://127.1.2.3:8081"}, nil},
		{"loopback v6", ClientOptions{BaseURL: "http://[::1]:8081"}, nil},
		{"localhost", ClientOptions{BaseURL: "http://localhost:8081"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.o)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("NewClient: %v, want %v", err, tc.want)
			}
			if tc.want != nil && !strings.Contains(err.Error(), "--pccs-allow-http") {
				t.Errorf("the error does not say how to allow it: %v", err)
			}
		})
	}
}

// A listener that serves TLS and plain HTTP on one port, as a PCCS whose
// https port also answered plain http would: each connection is handed
// to the TLS or the plain server by its first byte.

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

type chanListener struct {
	c    chan net.Conn
	addr net.Addr
	once sync.Once
	done chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// TestAttack_PCCSRedirectsHTTPSToHTTPSameHostPort: an https PCCS redirects
// to http on its own host and port. The redirect is refused before any
// request is made, so the API key is never sent in clear text.
func TestAttack_PCCSRedirectsHTTPSToHTTPSameHostPort(t *testing.T) {
	pki := newTestPKI(t, "Test")
	pcs := newFakePCS(t, pki, t0, t0.Add(month))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsL := &chanListener{c: make(chan net.Conn), addr: ln.Addr(), done: make(chan struct{})}
	plainL := &chanListener{c: make(chan net.Conn), addr: ln.Addr(), done: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				tlsL.Close()
				plainL.Close()
				return
			}
			go func() {
				r := bufio.NewReader(c)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				b, err := r.Peek(1)
				_ = c.SetReadDeadline(time.Time{})
				if err != nil {
					c.Close()
					return
				}
				pc := &peekedConn{Conn: c, r: r}
				if b[0] == 0x16 { // a TLS handshake record
					tlsL.c <- pc
				} else {
					plainL.c <- pc
				}
			}()
		}
	}()
	var mu sync.Mutex
	var clearKeys []string
	plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		clearKeys = append(clearKeys, r.Header.Get(HeaderAPIKey))
		mu.Unlock()
		pcs.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	secure := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+ln.Addr().String()+r.URL.RequestURI(), http.StatusFound)
	}))
	secure.Listener.Close()
	secure.Listener = tlsL
	secure.StartTLS()
	go func() { _ = plain.Serve(plainL) }()
	t.Cleanup(func() { ln.Close(); secure.Close(); plain.Close() })

	cl, err := NewClient(ClientOptions{BaseURL: secure.URL, APIKey: "secret", HTTPClient: secure.Client(),
		Retries: 2, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Fetch(context.Background(), TCBInfoKey(TEESGX, fmspcA))
	mu.Lock()
	defer mu.Unlock()
	if len(clearKeys) != 0 {
		t.Fatalf("%d plain-http requests reached the PCCS port (API keys %q)", len(clearKeys), clearKeys)
	}
	var e *Error
	if !errors.Is(err, ErrRedirect) || !errors.As(err, &e) || e.Attempts != 1 {
		t.Fatalf("https → http redirect: %v; want ErrRedirect after one attempt", err)
	}
	// Even an origin the operator allowed is not reached over http from
	// https.
	cl2, _ := NewClient(ClientOptions{BaseURL: secure.URL, APIKey: "secret", HTTPClient: secure.Client(),
		RedirectOrigins: []string{"http://" + ln.Addr().String()}})
	if _, err := cl2.Fetch(context.Background(), QEIdentityKey(TEESGX)); !errors.Is(err, ErrRedirect) {
		t.Fatalf("https → allowed http origin: %v", err)
	}
	if len(clearKeys) != 0 {
		t.Fatalf("plain-http requests reached the PCCS port: %q", clearKeys)
	}
}

// TestAttack_PCCSRedirectToOtherLoopbackPort: a PCCS redirects to another
// port of the host (an internal service): refused, and nothing is sent
// there (no blind SSRF); with the origin allowed, it is followed without
// the API key.
func TestAttack_PCCSRedirectToOtherLoopbackPort(t *testing.T) {
	pki := newTestPKI(t, "Test")
	internal := newFakePCS(t, pki, t0, t0.Add(month))
	var gotKey []string
	internal.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		gotKey = append(gotKey, r.Header.Get(HeaderAPIKey))
		return false
	})
	front := newFakePCS(t, pki, t0, t0.Add(month))
	front.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		http.Redirect(w, r, internal.srv.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		return true
	})
	cl, err := NewClient(ClientOptions{BaseURL: front.srv.URL, APIKey: "secret", Retries: 2, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{TCBInfoKey(TEESGX, fmspcA), QEIdentityKey(TEETDX), PCKCRLKey(CAPlatform), RootCACRLKey()} {
		_, err := cl.Fetch(context.Background(), k)
		var e *Error
		if !errors.Is(err, ErrRedirect) || !errors.As(err, &e) || e.Attempts != 1 || !strings.Contains(err.Error(), internal.srv.URL) {
			t.Fatalf("%s: %v; want ErrRedirect naming the target, after one attempt", k, err)
		}
	}
	if n := internal.requests.Load(); n != 0 {
		t.Fatalf("the internal service got %d requests", n)
	}
	// Allowed by the operator: followed, and the key is not sent there.
	cl2, err := NewClient(ClientOptions{BaseURL: front.srv.URL, APIKey: "secret", RedirectOrigins: []string{internal.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl2.Fetch(context.Background(), QEIdentityKey(TEESGX)); err != nil {
		t.Fatal(err)
	}
	if len(gotKey) != 1 || gotKey[0] != "" {
		t.Fatalf("allowed origin: requests with API keys %q", gotKey)
	}
}

// TestRedirectSameOrigin: a redirect within the PCCS's own origin is
// followed, with the API key.
func TestRedirectSameOrigin(t *testing.T) {
	pki := newTestPKI(t, "Test")
	pcs := newFakePCS(t, pki, t0, t0.Add(month))
	var keys []string
	pcs.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		keys = append(keys, r.Header.Get(HeaderAPIKey))
		if r.URL.Query().Get("moved") == "" {
			http.Redirect(w, r, r.URL.RequestURI()+"&moved=1", http.StatusFound)
			return true
		}
		return false
	})
	cl, err := NewClient(ClientOptions{BaseURL: pcs.srv.URL, APIKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Fetch(context.Background(), TCBInfoKey(TEESGX, fmspcA)); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "secret,secret" {
		t.Fatalf("API keys sent: %q", keys)
	}
}
