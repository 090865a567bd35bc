package collateral

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"strings"
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
	return &handler{src: src}
}

type handler struct{ src DocumentSource }

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
	d, err := h.src.Document(r.Context(), k)
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(err, ErrUnavailable), errors.Is(err, ErrExpired):
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Error-Code", http.StatusText(status))
		w.Header().Set("Error-Message", k.String()+": "+errorReason(err))
		http.Error(w, err.Error(), status)
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
