package collateral

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asps-project/asps/dcap"
)

var (
	t0    = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	month = 30 * 24 * time.Hour
)

const (
	fmspcA = "00A067110000"
	fmspcB = "B0C06F000000"
)

// env is a fake PCS and a cache of it under a test PKI.
type env struct {
	pki   *testPKI
	pcs   *fakePCS
	clock *fakeClock
	dir   string
	cache *Cache
}

func newEnv(t *testing.T, o Options) *env {
	t.Helper()
	e := &env{pki: newTestPKI(t, "Test"), clock: &fakeClock{t: t0.Add(time.Hour)}, dir: t.TempDir()}
	e.pcs = newFakePCS(t, e.pki, t0, t0.Add(month))
	if o.Client == nil {
		o.Client = testClient(t, e.pcs.srv.URL)
	}
	o.Dir = e.dir
	o.TrustAnchors = []*x509.Certificate{e.pki.root}
	o.Now = e.clock.Now
	if o.RefreshInterval == 0 {
		o.RefreshInterval = -1
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	var err error
	if e.cache, err = NewCache(o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cache.Close() })
	return e
}

func (e *env) reopen(t *testing.T, o Options) *Cache {
	t.Helper()
	o.Dir = e.dir
	o.TrustAnchors = []*x509.Certificate{e.pki.root}
	o.Now = e.clock.Now
	o.RefreshInterval = -1
	o.Logger = quietLogger()
	c, err := NewCache(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) cached(k Key) bool {
	for _, d := range e.cache.Documents() {
		if d.Key == k {
			return true
		}
	}
	_, err := os.Stat(filepath.Join(e.dir, filepath.FromSlash(k.Path())))
	return err == nil
}

// TestRejections: every bad answer is rejected for its own reason, is
// neither served nor cached, and a good answer afterwards is.
func TestRejections(t *testing.T) {
	other := newTestPKI(t, "Other")
	tcb := func(body []byte) func(*env, Key, http.ResponseWriter) bool {
		return func(e *env, k Key, w http.ResponseWriter) bool {
			if k.Kind != KindTCBInfo {
				return false
			}
			writeDoc(w, k, body, e.pki.signingChain())
			return true
		}
	}
	type fault func(e *env, k Key, w http.ResponseWriter) bool
	cases := []struct {
		name    string
		tee     string
		target  Kind
		fault   func(e *env) fault
		reason  error
		retried bool
	}{
		{name: "truncated JSON", target: KindTCBInfo, reason: dcap.ErrMalformed, fault: func(e *env) fault {
			good := e.pki.signed(t, "tcbInfo", tcbInfoBody(t, TEESGX, fmspcA, t0, t0.Add(month)))
			return tcb(good[:len(good)/2])
		}},
		{name: "HTML instead of JSON", target: KindTCBInfo, reason: dcap.ErrMalformed, fault: func(e *env) fault {
			return tcb([]byte("<html><body>Service Unavailable</body></html>"))
		}},
		{name: "empty body", target: KindTCBInfo, reason: dcap.ErrMalformed, fault: func(e *env) fault {
			return tcb(nil)
		}},
		{name: "not UTF-8", target: KindTCBInfo, reason: dcap.ErrMalformed, fault: func(e *env) fault {
			return tcb([]byte("{\"tcbInfo\":\xff}"))
		}},
		{name: "oversized body", target: KindTCBInfo, reason: dcap.ErrMalformed, fault: func(e *env) fault {
			return tcb(bytes.Repeat([]byte(" "), dcap.MaxCollateralLen+1))
		}},
		{name: "bad signature", target: KindTCBInfo, reason: dcap.ErrTCBInfoSignature, fault: func(e *env) fault {
			body := tcbInfoBody(t, TEESGX, fmspcA, t0, t0.Add(month))
			sig := signRS(t, e.pki.signingKey, body)
			sig[10] ^= 1
			return tcb(pcsResponse("tcbInfo", body, sig))
		}},
		{name: "body altered after signing", target: KindTCBInfo, reason: dcap.ErrTCBInfoSignature, fault: func(e *env) fault {
			body := tcbInfoBody(t, TEESGX, fmspcA, t0, t0.Add(month))
			sig := signRS(t, e.pki.signingKey, body)
			return tcb(pcsResponse("tcbInfo", bytes.Replace(body, []byte(`"tcbEvaluationDataNumber":17`), []byte(`"tcbEvaluationDataNumber":18`), 1), sig))
		}},
		{name: "wrong FMSPC", target: KindTCBInfo, reason: dcap.ErrFMSPCMismatch, fault: func(e *env) fault {
			return tcb(e.pki.signed(t, "tcbInfo", tcbInfoBody(t, TEESGX, fmspcB, t0, t0.Add(month))))
		}},
		{name: "TDX TCB info for SGX", target: KindTCBInfo, reason: dcap.ErrTCBInfoMismatch, fault: func(e *env) fault {
			return tcb(e.pki.signed(t, "tcbInfo", tcbInfoBody(t, TEETDX, fmspcA, t0, t0.Add(month))))
		}},
		{name: "expired", target: KindTCBInfo, reason: dcap.ErrCollateralExpired, fault: func(e *env) fault {
			return tcb(e.pki.signed(t, "tcbInfo", tcbInfoBody(t, TEESGX, fmspcA, t0.Add(-month), t0.Add(-time.Hour))))
		}},
		{name: "not yet valid", target: KindTCBInfo, reason: dcap.ErrCollateralExpired, fault: func(e *env) fault {
			return tcb(e.pki.signed(t, "tcbInfo", tcbInfoBody(t, TEESGX, fmspcA, t0.Add(24*time.Hour), t0.Add(month))))
		}},
		{name: "issuer chain of another root", target: KindTCBInfo, reason: dcap.ErrUntrustedRoot, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindTCBInfo {
					return false
				}
				writeDoc(w, k, other.signed(t, "tcbInfo", tcbInfoBody(t, TEESGX, fmspcA, t0, t0.Add(month))), other.signingChain())
				return true
			}
		}},
		{name: "issuer chain of the PCK CA", target: KindTCBInfo, reason: dcap.ErrCertChain, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindTCBInfo {
					return false
				}
				writeDoc(w, k, e.pki.signed(t, "tcbInfo", tcbInfoBody(t, TEESGX, fmspcA, t0, t0.Add(month))), e.pki.caChain(CAProcessor))
				return true
			}
		}},
		{name: "signer not issued by the root", target: KindTCBInfo, reason: dcap.ErrCertChain, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindTCBInfo {
					return false
				}
				chain := dcap.EncodeChainPEM([]*x509.Certificate{other.signing, e.pki.root})
				writeDoc(w, k, other.signed(t, "tcbInfo", tcbInfoBody(t, TEESGX, fmspcA, t0, t0.Add(month))), chain)
				return true
			}
		}},
		{name: "no issuer chain header", target: KindTCBInfo, reason: dcap.ErrCertChain, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindTCBInfo {
					return false
				}
				_, _ = w.Write(e.pki.signed(t, "tcbInfo", tcbInfoBody(t, TEESGX, fmspcA, t0, t0.Add(month))))
				return true
			}
		}},
		{name: "garbage issuer chain header", target: KindTCBInfo, reason: dcap.ErrMalformed, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindTCBInfo {
					return false
				}
				w.Header().Set(HeaderTCBInfoIssuerChain, "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----")
				_, _ = w.Write(e.pki.signed(t, "tcbInfo", tcbInfoBody(t, TEESGX, fmspcA, t0, t0.Add(month))))
				return true
			}
		}},
		{name: "QE identity of SGX for TDX", tee: TEETDX, target: KindQEIdentity, reason: dcap.ErrQEIdentityMismatch, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindQEIdentity {
					return false
				}
				writeDoc(w, k, e.pki.signed(t, "enclaveIdentity", qeIdentityBody(t, TEESGX, t0, t0.Add(month))), e.pki.signingChain())
				return true
			}
		}},
		{name: "QE identity bad signature", target: KindQEIdentity, reason: dcap.ErrQEIdentitySignature, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindQEIdentity {
					return false
				}
				writeDoc(w, k, other.signed(t, "enclaveIdentity", qeIdentityBody(t, TEESGX, t0, t0.Add(month))), e.pki.signingChain())
				return true
			}
		}},
		{name: "PCK CRL signed by another key", target: KindPCKCRL, reason: dcap.ErrCRLInvalid, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindPCKCRL {
					return false
				}
				// Same issuer name, other key.
				writeDoc(w, k, other.crl(t, e.pki.processor, other.processorKey, t0, t0.Add(month)), e.pki.caChain(CAProcessor))
				return true
			}
		}},
		{name: "PCK CRL of the other CA", target: KindPCKCRL, reason: dcap.ErrCRLInvalid, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindPCKCRL {
					return false
				}
				writeDoc(w, k, e.pki.pckCRL(t, CAPlatform, t0, t0.Add(month)), e.pki.caChain(CAPlatform))
				return true
			}
		}},
		{name: "PCK CRL expired", target: KindPCKCRL, reason: dcap.ErrCRLExpired, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindPCKCRL {
					return false
				}
				writeDoc(w, k, e.pki.pckCRL(t, CAProcessor, t0.Add(-month), t0), e.pki.caChain(CAProcessor))
				return true
			}
		}},
		{name: "PCK CRL garbage", target: KindPCKCRL, reason: dcap.ErrMalformed, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindPCKCRL {
					return false
				}
				writeDoc(w, k, []byte("not a CRL"), e.pki.caChain(CAProcessor))
				return true
			}
		}},
		{name: "root CA CRL of another root", target: KindRootCACRL, reason: dcap.ErrCRLInvalid, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindRootCACRL {
					return false
				}
				writeDoc(w, k, other.rootCRL(t, t0, t0.Add(month)), nil)
				return true
			}
		}},
		{name: "503", target: KindTCBInfo, reason: ErrUnavailable, retried: true, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindTCBInfo {
					return false
				}
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return true
			}
		}},
		{name: "404", target: KindTCBInfo, reason: ErrNotFound, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindTCBInfo {
					return false
				}
				w.Header().Set("Error-Code", "NotFound")
				http.Error(w, "", http.StatusNotFound)
				return true
			}
		}},
		{name: "401", target: KindTCBInfo, reason: ErrRefused, fault: func(e *env) fault {
			return func(_ *env, k Key, w http.ResponseWriter) bool {
				if k.Kind != KindTCBInfo {
					return false
				}
				http.Error(w, "bad key", http.StatusUnauthorized)
				return true
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{FailureTTL: -1})
			tee := tc.tee
			if tee == "" {
				tee = TEESGX
			}
			f := tc.fault(e)
			e.pcs.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool { return f(e, k, w) })
			keys, _ := collateralKeys(tee, fmspcA, CAProcessor)
			var target Key
			for _, k := range keys {
				if k.Kind == tc.target {
					target = k
				}
			}
			col, _, err := e.cache.Get(context.Background(), tee, fmspcA, CAProcessor)
			if err == nil || col != nil {
				t.Fatalf("accepted")
			}
			t.Log(err)
			if !errors.Is(err, tc.reason) {
				t.Fatalf("error %v; want reason %v", err, tc.reason)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != target {
				t.Errorf("error names %v, want %v", ce, target)
			}
			if e.cached(target) {
				t.Fatal("the rejected document was cached")
			}
			wantReq := int64(1)
			if tc.retried {
				wantReq = 3
			}
			if n := e.pcs.count(target); n != wantReq {
				t.Errorf("%d requests for %s, want %d", n, target, wantReq)
			}
			// The service recovers: the next request fetches and verifies.
			e.pcs.setFault(nil)
			if _, info, err := e.cache.Get(context.Background(), tee, fmspcA, CAProcessor); err != nil || info.FromCache {
				t.Fatalf("after recovery: %v (from cache %v)", err, info.FromCache)
			}
			if !e.cached(target) {
				t.Fatal("the good document was not cached")
			}
		})
	}
}

// TestHang: a service that accepts and never answers times out, is
// retried, and fails with ErrUnavailable.
func TestHang(t *testing.T) {
	pki := newTestPKI(t, "Test")
	pcs := newFakePCS(t, pki, t0, t0.Add(month))
	pcs.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	})
	cl, err := NewClient(ClientOptions{BaseURL: pcs.srv.URL, Timeout: 50 * time.Millisecond, Retries: 1, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = cl.Fetch(context.Background(), TCBInfoKey("sgx", fmspcA))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v", err)
	}
	if n := pcs.count(TCBInfoKey("sgx", fmspcA)); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
	// The caller's context bounds the whole fetch.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	cl2, _ := NewClient(ClientOptions{BaseURL: pcs.srv.URL, Timeout: time.Hour, Retries: 5})
	if _, err := cl2.Fetch(ctx, TCBInfoKey("sgx", fmspcA)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("canceled: %v", err)
	}
}

// TestClientRequests: paths, query parameters, API key, header fallbacks.
func TestClientRequests(t *testing.T) {
	pki := newTestPKI(t, "Test")
	pcs := newFakePCS(t, pki, t0, t0.Add(month))
	var seen []string
	var keys []string
	pcs.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		seen = append(seen, r.URL.RequestURI())
		keys = append(keys, r.Header.Get(HeaderAPIKey))
		if k.Kind == KindTCBInfo {
			body, chain := pcs.good(k, t0, t0.Add(month))
			w.Header().Set(HeaderSGXTCBInfoIssuerChain, EncodeChainHeader(chain)) // the older header name only
			_, _ = w.Write(body)
			return true
		}
		return false
	})
	cl, err := NewClient(ClientOptions{BaseURL: pcs.srv.URL + "/sgx/certification/v4/", APIKey: "k1", Update: "early"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{TCBInfoKey("tdx", "b0c06f000000"), QEIdentityKey("tdx"), PCKCRLKey("Platform"), RootCACRLKey()} {
		r, err := cl.Fetch(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if k.Kind != KindRootCACRL && !bytes.HasPrefix(r.IssuerChain, []byte("-----BEGIN CERTIFICATE-----\n")) {
			t.Errorf("%s: issuer chain %.40q", k, r.IssuerChain)
		}
	}
	want := []string{
		"/tdx/certification/v4/tcb?fmspc=B0C06F000000&update=early",
		"/tdx/certification/v4/qe/identity?update=early",
		"/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
		"/sgx/certification/v4/rootcacrl",
	}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("requests\n%v\nwant\n%v", seen, want)
	}
	for i, k := range keys {
		if k != "k1" {
			t.Errorf("request %d: API key %q", i, k)
		}
	}
	// Intel PCS: the root CA CRL comes from Intel's certificates host,
	// which is not sent the API key.
	ic, _ := NewClient(ClientOptions{BaseURL: "https://api.trustedservices.intel.com", APIKey: "k"})
	if u := ic.URL(RootCACRLKey()); u != "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der" {
		t.Errorf("Intel root CA CRL URL %s", u)
	}
	for _, bad := range []ClientOptions{{BaseURL: "ftp://x"}, {BaseURL: ""}, {BaseURL: "http://x", Update: "late"}, {BaseURL: "http://x", CAFile: "/nonexistent"}, {BaseURL: "http://x", RootCACRLURL: "file:///x"}} {
		if _, err := NewClient(bad); err == nil {
			t.Errorf("NewClient(%+v) accepted", bad)
		}
	}
	if _, err := cl.Fetch(context.Background(), TCBInfoKey("sev", fmspcA)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad TEE: %v", err)
	}
}

// TestChainHeaderCoding: Intel's encoding, form encoding and plain PEM.
func TestChainHeaderCoding(t *testing.T) {
	pem := newTestPKI(t, "Test").signingChain()
	enc := EncodeChainHeader(pem)
	if strings.ContainsAny(enc, " +\n/=") {
		t.Errorf("encoded chain has reserved characters: %.80q", enc)
	}
	for name, v := range map[string]string{
		"intel": enc,
		"form":  strings.ReplaceAll(enc, "%20", "+"),
		"plain": string(pem),
	} {
		if got := DecodeChainHeader(v); !bytes.Equal(got, pem) {
			t.Errorf("%s: decodes to %.60q", name, got)
		}
	}
}

// TestRedirectDropsAPIKey: the API key is not sent to another origin, even
// one redirects may go to.
func TestRedirectDropsAPIKey(t *testing.T) {
	pki := newTestPKI(t, "Test")
	target := newFakePCS(t, pki, t0, t0.Add(month))
	var gotKey string
	target.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		gotKey = r.Header.Get(HeaderAPIKey)
		return false
	})
	front := newFakePCS(t, pki, t0, t0.Add(month))
	front.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get(HeaderAPIKey) != "secret" {
			t.Error("the PCS did not get the API key")
		}
		http.Redirect(w, r, strings.Replace(target.srv.URL, "127.0.0.1", "localhost", 1)+r.URL.RequestURI(), http.StatusFound)
		return true
	})
	cl, err := NewClient(ClientOptions{BaseURL: front.srv.URL, APIKey: "secret",
		RedirectOrigins: []string{strings.Replace(target.srv.URL, "127.0.0.1", "localhost", 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Fetch(context.Background(), QEIdentityKey(TEESGX)); err != nil {
		t.Fatal(err)
	}
	if target.requests.Load() != 1 || gotKey != "" {
		t.Errorf("redirect target got %d requests, API key %q", target.requests.Load(), gotKey)
	}
}

// TestClientTLS: a PCCS with its own CA, trusted through CAFile; without
// it the certificate is refused at once (no retries).
func TestClientTLS(t *testing.T) {
	pki := newTestPKI(t, "Test")
	pcs := newFakePCS(t, pki, t0, t0.Add(month))
	tlsSrv := httptest.NewTLSServer(pcs)
	defer tlsSrv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	cl, err := NewClient(ClientOptions{BaseURL: tlsSrv.URL, CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Fetch(context.Background(), RootCACRLKey()); err != nil {
		t.Fatal(err)
	}
	plain, _ := NewClient(ClientOptions{BaseURL: tlsSrv.URL, Retries: 3, Backoff: time.Millisecond})
	n := pcs.requests.Load()
	_, err = plain.Fetch(context.Background(), RootCACRLKey())
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Attempts != 1 || pcs.requests.Load() != n {
		t.Fatalf("untrusted TLS certificate: %v", err)
	}
	insecure, _ := NewClient(ClientOptions{BaseURL: tlsSrv.URL, InsecureSkipVerify: true})
	if _, err := insecure.Fetch(context.Background(), RootCACRLKey()); err != nil {
		t.Fatal(err)
	}
}
