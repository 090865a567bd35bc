package server

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Connection caps of the plain-HTTP health and metrics listener
// (ServeHTTP). Anyone who can reach it can open connections: without caps,
// idle ones would be held until the process runs out of file descriptors,
// which the gRPC listener shares. A connection over a cap is closed at
// once — never queued — so that a prober from another address (the
// kubelet) is not kept waiting behind an attacker's connections.
const (
	MaxHTTPConnsPerIP = 16
	MaxHTTPConns      = 1024
)

// HealthHandler answers the health probe of the plain-HTTP listener
// (/healthz), which anyone who can reach that port may call without a
// certificate. It reports the state the server already tracks — the last
// store check passed to SetServing and the audit log's health — so a
// probe costs no call to the secret store, however many arrive, and its
// answer is "ok" or one of Ready's fixed sentences: never the store's
// error text (its address, its messages), which stays in the log.
func (s *Server) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if err := s.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// MaxMetricsInFlight bounds the /metrics scrapes served at once: each one
// gathers every collector, and anyone who reaches the port may ask.
const MaxMetricsInFlight = 4

// MetricsHandler serves reg's metrics for Prometheus: at most
// MaxMetricsInFlight scrapes at once (the rest get 503 at once), each
// bounded to 10 s.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: MaxMetricsInFlight, Timeout: 10 * time.Second})
}

// NewHTTPServer returns the http.Server for the health and metrics
// listener: header, read, write and idle timeouts and a 16 KiB header
// cap, so a slow or idle anonymous client holds a connection for seconds,
// not forever (net/http keeps an idle keep-alive connection open
// indefinitely when IdleTimeout and ReadTimeout are zero).
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       15 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// ServeHTTP serves hs on l within MaxHTTPConnsPerIP connections per source
// address (IPv6: per /64) and MaxHTTPConns in all.
func ServeHTTP(hs *http.Server, l net.Listener) error {
	return hs.Serve(&httpLimiter{Listener: l, perIP: map[string]int{}})
}

type httpLimiter struct {
	net.Listener
	mu    sync.Mutex
	total int
	perIP map[string]int
}

func (l *httpLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		l.mu.Lock()
		over := l.total >= MaxHTTPConns || l.perIP[ip] >= MaxHTTPConnsPerIP
		if !over {
			l.total++
			l.perIP[ip]++
		}
		l.mu.Unlock()
		if over {
			c.Close()
			continue
		}
		return &httpConn{Conn: c, l: l, ip: ip}, nil
	}
}

type httpConn struct {
	net.Conn
	l    *httpLimiter
	ip   string
	once sync.Once
}

func (c *httpConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.total--
		if c.l.perIP[c.ip]--; c.l.perIP[c.ip] <= 0 {
			delete(c.l.perIP, c.ip)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
