package server

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// MaxHTTPConns caps the connections of the plain-HTTP health and metrics
// listener (ServeHTTP): anyone who can reach it can open connections, and
// without a cap idle ones would be held until the process runs out of file
// descriptors, which the gRPC listener shares.
const MaxHTTPConns = 64

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
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// ServeHTTP serves hs on l with at most MaxHTTPConns connections open.
func ServeHTTP(hs *http.Server, l net.Listener) error {
	return hs.Serve(netutil.LimitListener(l, MaxHTTPConns))
}
