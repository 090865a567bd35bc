package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
// set, and the health listener had no connection limit: connections that
// never send a request pile up until the process (whose gRPC listener
// shares the file descriptors) runs out. The server sets every timeout and
// a header cap, and one address holds at most MaxHTTPConnsPerIP
// connections; over it, its connections are closed at once, and a probe
// from another address is still answered.
func TestAttack_IdleHTTPConnectionsHeldForever(t *testing.T) {
	hs := server.NewHTTPServer(http.NotFoundHandler())
	if hs.ReadHeaderTimeout <= 0 || hs.ReadTimeout <= 0 || hs.WriteTimeout <= 0 || hs.IdleTimeout <= 0 {
		t.Fatalf("unbounded timeouts: %+v", hs)
	}
	if hs.MaxHeaderBytes <= 0 || hs.MaxHeaderBytes > 64<<10 {
		t.Fatalf("MaxHeaderBytes %d", hs.MaxHeaderBytes)
	}
	h := startHardened(t, nil)
	hs = server.NewHTTPServer(h.srv.HealthHandler())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go server.ServeHTTP(hs, l)
	t.Cleanup(func() { hs.Close() })
	// The attacker, from 127.0.0.3: connections that say nothing.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range server.MaxHTTPConnsPerIP {
		c, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Its next connection is closed without an answer (a read ends, it
	// does not wait for a timeout).
	extra, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	if n, err := extra.Read(make([]byte, 64)); err == nil {
		t.Fatalf("connection %d from one address was served (%d bytes)", server.MaxHTTPConnsPerIP+1, n)
	}
	// The prober, from 127.0.0.1, is answered.
	resp, err := http.Get("http://" + l.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("probe during the flood: %d", resp.StatusCode)
	}
}

// blockingCollector holds every Collect until release is closed.
type blockingCollector struct {
	desc    *prometheus.Desc
	started chan struct{}
	release chan struct{}
}

func (b *blockingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }

func (b *blockingCollector) Collect(ch chan<- prometheus.Metric) {
	b.started <- struct{}{}
	<-b.release
	ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, 1)
}

// TestAttack_MetricsScrapesUnbounded: anyone who reaches the metrics port
// could start any number of scrapes at once, each gathering every
// collector. Beyond server.MaxMetricsInFlight a scrape is refused at once with 503.
func TestAttack_MetricsScrapesUnbounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	bc := &blockingCollector{desc: prometheus.NewDesc("asps_test_slow", "a slow collector", nil, nil),
		started: make(chan struct{}, 64), release: make(chan struct{})}
	reg.MustRegister(bc)
	ts := httptest.NewServer(server.MetricsHandler(reg))
	defer ts.Close()
	done := make(chan int, server.MaxMetricsInFlight)
	for range server.MaxMetricsInFlight {
		go func() {
			resp, err := http.Get(ts.URL)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	for range server.MaxMetricsInFlight {
		<-bc.started // every allowed scrape is inside Collect
	}
	// Without the bound this scrape would wait inside Collect too.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(ts.URL)
	if err != nil {
		t.Fatalf("scrape %d while %d are in flight: %v; want 503 at once", server.MaxMetricsInFlight+1, server.MaxMetricsInFlight, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("scrape %d while %d are in flight: status %d, want 503", server.MaxMetricsInFlight+1, server.MaxMetricsInFlight, resp.StatusCode)
	}
	close(bc.release)
	for range server.MaxMetricsInFlight {
		if code := <-done; code != http.StatusOK {
			t.Fatalf("an allowed scrape: status %d", code)
		}
	}
}
