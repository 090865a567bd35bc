package collateral

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DocumentSource gives the mirror its documents: a Bundle (offline) or a
// Cache (fetching from an upstream PCS or PCCS).
type DocumentSource interface {
	Document(ctx context.Context, k Key) (*Document, error)
}

var (
	_ DocumentSource = (*Cache)(nil)
	_ DocumentSource = (*Bundle)(nil)
)

// NewHandler returns a PCCS-compatible HTTP handler over src: the Intel
// PCS v4 paths, query parameters and issuer chain headers (URL-encoded
// PEM), serving each document as it was fetched, so that any DCAP
// verifier (Intel's QPL and QVL, dcap-qvl, asps) can use it as its PCCS:
//
//	GET /sgx/certification/v4/tcb?fmspc=HEX          TCB-Info-Issuer-Chain, SGX-TCB-Info-Issuer-Chain
//	GET /tdx/certification/v4/tcb?fmspc=HEX          (same)
//	GET /sgx/certification/v4/qe/identity            SGX-Enclave-Identity-Issuer-Chain
//	GET /tdx/certification/v4/qe/identity            (same)
//	GET /sgx/certification/v4/pckcrl?ca=processor|platform[&encoding=der|pem]
//	                                                 SGX-PCK-CRL-Issuer-Chain; PEM unless encoding=der
//	GET /sgx/certification/v4/rootcacrl[?encoding=der|pem]
//	                                                 hex-encoded DER as a PCCS serves it, or DER, or PEM
//
// Unknown documents are 404, bad parameters 400, an unreachable upstream
// 503. Other paths of the PCS API (PCK certificates) are not served.
func NewHandler(src DocumentSource) http.Handler {
	return NewHandlerWithOptions(src, HandlerOptions{})
}

// HandlerOptions bound what the mirror's clients, who need not identify
// themselves, can make it fetch from its upstream with the operator's API
// key. They concern only requests that would start an upstream fetch (a
// document not cached, or expired): documents in the cache or bundle are
// served without limit, and requests for a document already being
// fetched join that fetch. The Cache's own limits (Options.MaxFetches,
// Options.UnknownBurst) apply besides.
type HandlerOptions struct {
	// ClientBurst and ClientEvery: each client (an IPv4 address, an IPv6
	// /64) may start ClientBurst fetches at once, then one per ClientEvery
	// (defaults 8 and 5s; a negative ClientBurst: no limit). Beyond it the
	// answer is 429 with Retry-After.
	ClientBurst int
	ClientEvery time.Duration
	// MaxClients bounds the clients tracked (default 4096); when all are
	// recently active, a new client's fetch is refused (503) rather than
	// forgetting another's limit.
	MaxClients int
}

// NewHandlerWithOptions is NewHandler with limits on what clients can
// make it fetch.
func NewHandlerWithOptions(src DocumentSource, o HandlerOptions) http.Handler {
	if o.ClientBurst == 0 {
		o.ClientBurst = 8
	}
	if o.ClientEvery <= 0 {
		o.ClientEvery = 5 * time.Second
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 4096
	}
	return &handler{src: src, o: o, clients: map[netip.Prefix]*clientLimit{}}
}

type handler struct {
	src DocumentSource
	o   HandlerOptions

	mu      sync.Mutex
	clients map[netip.Prefix]*clientLimit
}

type clientLimit struct {
	lim  *rate.Limiter
	last time.Time
}

// clientOf is the unit a client is limited by: its IPv4 address or its
// IPv6 /64 (what one host is usually given).
func clientOf(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	a := ap.Addr().Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// gate is the fetch gate of one request: the client's rate limit.
func (h *handler) gate(client netip.Prefix) FetchGate {
	return func(k Key) error {
		if h.o.ClientBurst < 0 {
			return nil
		}
		now := time.Now()
		h.mu.Lock()
		defer h.mu.Unlock()
		cl := h.clients[client]
		if cl == nil {
			if len(h.clients) >= h.o.MaxClients {
				// Forget the clients whose allowance is whole again.
				full := time.Duration(h.o.ClientBurst) * h.o.ClientEvery
				for p, c := range h.clients {
					if now.Sub(c.last) >= full {
						delete(h.clients, p)
					}
				}
			}
			if len(h.clients) >= h.o.MaxClients {
				return &Error{Key: k, Reason: ErrBusy, Detail: fmt.Sprintf("%d clients started fetches recently", len(h.clients))}
			}
			cl = &clientLimit{lim: rate.NewLimiter(rate.Every(h.o.ClientEvery), h.o.ClientBurst)}
			h.clients[client] = cl
		}
		cl.last = now
		if !cl.lim.AllowN(now, 1) {
			return &Error{Key: k, Reason: ErrRateLimited, Detail: fmt.Sprintf("this client may start %d fetches at once, then one per %s", h.o.ClientBurst, h.o.ClientEvery)}
		}
		return nil
	}
}

// keyForPath maps a PCS v4 API path and query to the document it names.
func keyForPath(p string, q url.Values) (Key, bool) {
	switch p {
	case "/sgx/certification/v4/tcb", "/tdx/certification/v4/tcb":
		return TCBInfoKey(p[1:4], q.Get("fmspc")), true
	case "/sgx/certification/v4/qe/identity", "/tdx/certification/v4/qe/identity":
		return QEIdentityKey(p[1:4]), true
	case "/sgx/certification/v4/pckcrl":
		return PCKCRLKey(q.Get("ca")), true
	case "/sgx/certification/v4/rootcacrl":
		return RootCACRLKey(), true
	}
	return Key{}, false
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	q := r.URL.Query()
	k, known := keyForPath(strings.TrimSuffix(r.URL.Path, "/"), q)
	if !known {
		httpError(w, http.StatusNotFound, "no such PCS API path")
		return
	}
	k, err := k.Normalize()
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	enc := strings.ToLower(q.Get("encoding"))
	if enc != "" && enc != "der" && enc != "pem" {
		httpError(w, http.StatusBadRequest, "encoding must be der or pem")
		return
	}
	// The request's context: a fetch started for it is canceled when the
	// client goes away (and nobody else waits for it).
	ctx := WithFetchGate(r.Context(), h.gate(clientOf(r.RemoteAddr)))
	d, err := h.src.Document(ctx, k)
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(err, ErrRateLimited):
			status = http.StatusTooManyRequests
			w.Header().Set("Retry-After", strconv.Itoa(int(h.o.ClientEvery.Seconds()+0.999)))
		case errors.Is(err, ErrBusy):
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "10")
		case errors.Is(err, ErrUnavailable), errors.Is(err, ErrExpired):
			status = http.StatusServiceUnavailable
		}
		// Anyone may ask: the answer names the document and the reason
		// only. The error itself — the upstream URL as configured
		// (credentials or a key in it), its network address, its own
		// error text — stays in the cache's log.
		msg := k.String() + ": " + errorReason(err)
		w.Header().Set("Error-Code", http.StatusText(status))
		w.Header().Set("Error-Message", msg)
		http.Error(w, msg, status)
		return
	}
	hd := w.Header()
	body := d.Body
	switch k.Kind {
	case KindTCBInfo:
		hd.Set("Content-Type", "application/json")
		hd.Set(HeaderTCBInfoIssuerChain, EncodeChainHeader(d.IssuerChain))
		hd.Set(HeaderSGXTCBInfoIssuerChain, EncodeChainHeader(d.IssuerChain))
	case KindQEIdentity:
		hd.Set("Content-Type", "application/json")
		hd.Set(HeaderEnclaveIdentityChain, EncodeChainHeader(d.IssuerChain))
	case KindPCKCRL:
		hd.Set(HeaderPCKCRLIssuerChain, EncodeChainHeader(d.IssuerChain))
		if enc == "der" {
			hd.Set("Content-Type", "application/pkix-crl")
		} else {
			hd.Set("Content-Type", "application/x-pem-file")
			body = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: d.Body})
		}
	case KindRootCACRL:
		switch enc {
		case "der":
			hd.Set("Content-Type", "application/pkix-crl")
		case "pem":
			hd.Set("Content-Type", "application/x-pem-file")
			body = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: d.Body})
		default:
			hd.Set("Content-Type", "text/plain")
			body = []byte(hex.EncodeToString(d.Body))
		}
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	_, _ = w.Write(body)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Error-Code", http.StatusText(status))
	w.Header().Set("Error-Message", strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return ' '
		}
		return r
	}, msg))
	http.Error(w, msg, status)
}

// errorReason is the short reason of an error, for the Error-Message
// header.
func errorReason(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Reason != nil {
		return e.Reason.Error()
	}
	return "error"
}

// NewMirrorServer returns an http.Server for the mirror's handler with the
// limits an anonymous client must not be able to exceed: the header in
// 10s and at most 16 KiB of it, the whole request in 30s, the answer in a
// minute (an upstream fetch included), idle connections closed after a
// minute.
func NewMirrorServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}
