package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/asps-project/asps/server"
	"github.com/asps-project/asps/store"
)

// countingStore is a store whose health check fails with the kind of text
// a Vault store gives (its address), counting the checks.
type countingStore struct {
	store.Store
	checks atomic.Int64
}

func (c *countingStore) Check(context.Context) error {
	c.checks.Add(1)
	return &store.Error{Store: "vault", Kind: store.ErrUnavailable,
		Reason: "GET /v1/sys/health at https://vault.internal.example:8200: HTTP 503 sealed by operator alice"}
}

// TestAttack_AnonymousHealthProbeFloodsStoreAndLearnsItsAddress: the
// health listener takes no certificate. Every /healthz used to run a store
// check — an anonymous flood of probes became a flood of Vault health
// calls (and AppRole logins) — and a failing check was answered with the
// store's error text: its address and its messages. Probes now read the
// state the server tracks and say only a fixed sentence.
func TestAttack_AnonymousHealthProbeFloodsStoreAndLearnsItsAddress(t *testing.T) {
	var cs *countingStore
	h := startHardened(t, func(o *server.Options) {
		cs = &countingStore{Store: o.Store}
		o.Store = cs
	})
	hs := server.NewHTTPServer(h.srv.HealthHandler())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go server.ServeHTTP(hs, l)
	t.Cleanup(func() { hs.Close() })
	url := "http://" + l.Addr().String() + "/healthz"

	get := func() (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthy server: %d %q", code, body)
	}
	// The store checker (asps server runs one every 10 s) found the store
	// down.
	h.srv.SetServing(false)
	const probes = 200
	for range probes {
		code, body := get()
		if code != http.StatusServiceUnavailable || body != "store unreachable\n" {
			t.Fatalf("probe answered %d %q, want 503 %q", code, body, "store unreachable\n")
		}
		if strings.Contains(body, "vault.internal") || strings.Contains(body, "alice") {
			t.Fatalf("an anonymous probe learned the store's error text: %q", body)
		}
	}
	if n := cs.checks.Load(); n != 0 {
		t.Fatalf("%d anonymous probes caused %d store checks, want 0", probes, n)
	}
	h.srv.SetServing(true)
	if code, _ := get(); code != http.StatusOK {
		t.Fatalf("after recovery: %d", code)
	}
}

// TestAttack_IdleHTTPConnectionsHeldForever: net/http keeps an idle
// keep-alive connection open forever unless IdleTimeout or ReadTimeout is
// set; the health listener's server sets every timeout and a header cap.
func TestAttack_IdleHTTPConnectionsHeldForever(t *testing.T) {
	hs := server.NewHTTPServer(http.NotFoundHandler())
	if hs.ReadHeaderTimeout <= 0 || hs.ReadTimeout <= 0 || hs.WriteTimeout <= 0 || hs.IdleTimeout <= 0 {
		t.Fatalf("unbounded timeouts: %+v", hs)
	}
	if hs.MaxHeaderBytes <= 0 || hs.MaxHeaderBytes > 64<<10 {
		t.Fatalf("MaxHeaderBytes %d", hs.MaxHeaderBytes)
	}
	if server.MaxHTTPConns <= 0 || server.MaxHTTPConns > 1024 {
		t.Fatalf("MaxHTTPConns %d", server.MaxHTTPConns)
	}
}
