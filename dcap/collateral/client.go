package collateral

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/asps-project/asps/dcap"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// BaseURL is the PCS or PCCS: https://api.trustedservices.intel.com
	// or https://pccs.example:8081. A trailing /sgx/certification/v4 is
	// accepted and dropped.
	BaseURL string
	// APIKey, if set, is sent as Ocp-Apim-Subscription-Key to BaseURL's
	// host (Intel PCS; a PCCS needs none).
	APIKey string
	// RootCACRLURL is where the root CA CRL is fetched. Default: Intel's
	// https://certificates.trustedservices.intel.com/IntelSGXRootCA.der when
	// BaseURL is Intel PCS, else BaseURL/sgx/certification/v4/rootcacrl
	// (a PCCS).
	RootCACRLURL string
	// Update, if set, is sent as the update parameter of TCB info and QE
	// identity requests: "standard" or "early".
	Update string
	// CAFile is a PEM file of the CA certificates that sign the service's
	// TLS certificate (a PCCS's self-signed one). It replaces the system
	// roots.
	CAFile string
	// InsecureSkipVerify skips TLS server verification. What is fetched
	// is still verified by its signatures; the API key is exposed.
	InsecureSkipVerify bool
	// AllowHTTP accepts a plain-http BaseURL or RootCACRLURL on a host
	// other than loopback. Off by default: over plain http anyone on the
	// path can replay older, validly signed collateral (the cache refuses
	// to go back, but a first fetch or a cold cache has nothing to compare
	// with) and read the API key. Loopback (127.0.0.0/8, ::1, localhost)
	// is exempt: a PCCS on the same host is not reachable by the network.
	AllowHTTP bool
	// RedirectOrigins are the origins ("https://host[:port]") a redirect
	// may lead to besides the origin of the request itself. By default a
	// redirect is followed only within the same scheme, host and port; a
	// redirect elsewhere is refused with ErrRedirect (no request is made
	// to it: no blind SSRF). A redirect from https to http is refused
	// always. The API key is sent only to BaseURL's origin, never to
	// another one.
	RedirectOrigins []string
	// Timeout bounds each attempt, headers and body (default 30s).
	Timeout time.Duration
	// Retries is how many times a request is retried after a timeout, a
	// network error or a 5xx answer (default 2; negative: none). Other
	// answers are not retried.
	Retries int
	// Backoff is the wait before the first retry, doubling for each next
	// one up to 30s, with jitter (default 500ms).
	Backoff time.Duration
	// HTTPClient, if set, is used as is (CAFile and InsecureSkipVerify are
	// then ignored).
	HTTPClient *http.Client
	// UserAgent is sent as User-Agent.
	UserAgent string
}

// Client fetches collateral documents over the Intel PCS v4 API, as
// served by Intel PCS and by a PCCS. It does not verify what it fetches:
// a Cache does.
type Client struct {
	base, rootCRL *url.URL
	o             ClientOptions
	hc            *http.Client
	redirects     map[string]bool // origins a redirect may go to
}

// Response is a document as the service served it.
type Response struct {
	URL         string
	Body        []byte
	IssuerChain []byte // PEM, URL-decoded from the header; nil for the root CA CRL
	Attempts    int
}

// NewClient checks the options and makes a client.
func NewClient(o ClientOptions) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("collateral: base URL %q is not an http(s) URL", o.BaseURL)
	}
	if err := checkScheme(base, o.AllowHTTP); err != nil {
		return nil, err
	}
	base.Path = strings.TrimSuffix(strings.TrimSuffix(base.Path, "/sgx/certification/v4"), "/tdx/certification/v4")
	base.RawQuery, base.Fragment = "", ""
	c := &Client{base: base, o: o}
	crl := o.RootCACRLURL
	if crl == "" {
		if strings.EqualFold(base.Hostname(), intelPCSHost) {
			crl = intelRootCACRLURL
		} else {
			crl = base.String() + rootCACRLPath
		}
	}
	if c.rootCRL, err = url.Parse(crl); err != nil || (c.rootCRL.Scheme != "http" && c.rootCRL.Scheme != "https") || c.rootCRL.Host == "" {
		return nil, fmt.Errorf("collateral: root CA CRL URL %q is not an http(s) URL", crl)
	}
	if err := checkScheme(c.rootCRL, o.AllowHTTP); err != nil {
		return nil, err
	}
	c.redirects = map[string]bool{}
	for _, r := range o.RedirectOrigins {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("collateral: redirect origin %q is not scheme://host[:port]", r)
		}
		if err := checkScheme(u, o.AllowHTTP); err != nil {
			return nil, err
		}
		c.redirects[origin(u)] = true
	}
	if o.Update != "" && o.Update != "standard" && o.Update != "early" {
		return nil, fmt.Errorf("collateral: update %q, want standard or early", o.Update)
	}
	if c.o.Timeout <= 0 {
		c.o.Timeout = 30 * time.Second
	}
	if c.o.Retries == 0 {
		c.o.Retries = 2
	} else if c.o.Retries < 0 {
		c.o.Retries = 0
	}
	if c.o.Backoff <= 0 {
		c.o.Backoff = 500 * time.Millisecond
	}
	if c.o.UserAgent == "" {
		c.o.UserAgent = defaultUserAgent
	}
	if o.HTTPClient != nil {
		hc := *o.HTTPClient
		c.hc = &hc
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify}
		if o.CAFile != "" {
			pem, err := ReadFile(o.CAFile, 1<<20)
			if err != nil {
				return nil, fmt.Errorf("collateral: CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("collateral: CA file %s holds no PEM certificate", o.CAFile)
			}
			tr.TLSClientConfig.RootCAs = pool
		}
		c.hc = &http.Client{Transport: tr}
	}
	// Redirects stay within the origin asked (or go to an origin the
	// operator allowed), never from https to http, and the API key goes
	// to the PCS's origin only.
	next := c.hc.CheckRedirect
	c.hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := c.checkRedirect(req, via); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		return nil
	}
	return c, nil
}

// redirectError is what CheckRedirect returns for a refused redirect; once
// maps it to ErrRedirect.
type redirectError struct{ from, to string }

func (e *redirectError) Error() string {
	return fmt.Sprintf("redirect from %s to %s refused", e.from, e.to)
}

// checkRedirect decides on a redirect to req (the first request is
// via[0]) and strips the API key unless req goes to BaseURL's origin.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	prev := via[len(via)-1].URL
	if prev.Scheme == "https" && req.URL.Scheme != "https" {
		return &redirectError{from: origin(prev), to: origin(req.URL)}
	}
	if o := origin(req.URL); o != origin(via[0].URL) && !c.redirects[o] {
		return &redirectError{from: origin(via[0].URL), to: o}
	}
	if origin(req.URL) != origin(c.base) {
		req.Header.Del(HeaderAPIKey)
	}
	return nil
}

// origin is scheme://host:port in canonical form (lower case, the default
// port made explicit).
func origin(u *url.URL) string {
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// checkScheme refuses a plain-http URL off loopback unless allowed.
func checkScheme(u *url.URL, allowHTTP bool) error {
	if u.Scheme != "http" || allowHTTP || isLoopback(u.Hostname()) {
		return nil
	}
	return &Error{URL: u.Redacted(), Reason: ErrPlainHTTP,
		Detail: "use https (a PCCS serves https), or allow plain http explicitly (--pccs-allow-http); loopback is exempt"}
}

// isLoopback reports whether host is a loopback address or "localhost".
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// URL returns where document k is fetched.
func (c *Client) URL(k Key) string {
	u := *c.base
	q := url.Values{}
	switch k.Kind {
	case KindTCBInfo:
		u.Path += "/" + k.TEE + "/certification/v4/tcb"
		q.Set("fmspc", k.FMSPC)
	case KindQEIdentity:
		u.Path += "/" + k.TEE + "/certification/v4/qe/identity"
	case KindPCKCRL:
		u.Path += "/sgx/certification/v4/pckcrl"
		q.Set("ca", k.CA)
		q.Set("encoding", "der")
	case KindRootCACRL:
		return c.rootCRL.String()
	}
	if c.o.Update != "" && (k.Kind == KindTCBInfo || k.Kind == KindQEIdentity) {
		q.Set("update", c.o.Update)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Fetch gets document k, retrying timeouts, network errors and 5xx
// answers. Errors are *Error with reason ErrUnavailable, ErrNotFound,
// ErrRefused or (a body over the size limit) dcap.ErrMalformed.
func (c *Client) Fetch(ctx context.Context, k Key) (*Response, error) {
	k, err := k.Normalize()
	if err != nil {
		return nil, err
	}
	u := c.URL(k)
	var last *Error
	for attempt := 1; ; attempt++ {
		resp, err, retry := c.once(ctx, k, u)
		if err == nil {
			resp.Attempts = attempt
			return resp, nil
		}
		err.Attempts = attempt
		last = err
		if !retry || attempt > c.o.Retries || ctx.Err() != nil {
			return nil, last
		}
		wait := c.o.Backoff << (attempt - 1)
		if wait > 30*time.Second || wait <= 0 {
			wait = 30 * time.Second
		}
		wait = wait/2 + rand.N(wait/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, last
		case <-t.C:
		}
	}
}

// once makes one attempt; retry says whether another may succeed
// (timeouts, network errors, 5xx).
func (c *Client) once(ctx context.Context, k Key, u string) (*Response, *Error, bool) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	fail := func(reason error, status int, err error) *Error {
		return &Error{Key: k, URL: u, Status: status, Reason: reason, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fail(ErrRefused, 0, err), false
	}
	req.Header.Set("User-Agent", c.o.UserAgent)
	if c.o.APIKey != "" && origin(req.URL) == origin(c.base) {
		req.Header.Set(HeaderAPIKey, c.o.APIKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var re *redirectError
		if errors.As(err, &re) {
			return nil, &Error{Key: k, URL: u, Reason: ErrRedirect, Detail: re.Error()}, false
		}
		// A TLS certificate that does not verify will not verify on the
		// next attempt either.
		var cv *tls.CertificateVerificationError
		return nil, fail(ErrUnavailable, 0, err), !errors.As(err, &cv)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode >= 500:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fail(ErrUnavailable, resp.StatusCode, errorHeaders(resp)), true
	case resp.StatusCode == http.StatusNotFound:
		return nil, fail(ErrNotFound, resp.StatusCode, errorHeaders(resp)), false
	default:
		return nil, fail(ErrRefused, resp.StatusCode, errorHeaders(resp)), false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyLen+1))
	if err != nil {
		return nil, fail(ErrUnavailable, 0, fmt.Errorf("reading the body: %w", err)), true
	}
	if len(body) > maxBodyLen {
		return nil, fail(dcap.ErrMalformed, 0, fmt.Errorf("body exceeds %d bytes", maxBodyLen)), false
	}
	r := &Response{URL: u, Body: body}
	switch k.Kind {
	case KindTCBInfo:
		r.IssuerChain = chainHeader(resp.Header, HeaderTCBInfoIssuerChain, HeaderSGXTCBInfoIssuerChain)
	case KindQEIdentity:
		r.IssuerChain = chainHeader(resp.Header, HeaderEnclaveIdentityChain)
	case KindPCKCRL:
		r.IssuerChain = chainHeader(resp.Header, HeaderPCKCRLIssuerChain)
	}
	return r, nil, false
}

// errorHeaders reports Intel's Error-Code and Error-Message headers.
func errorHeaders(resp *http.Response) error {
	code, msg := resp.Header.Get("Error-Code"), resp.Header.Get("Error-Message")
	if code == "" && msg == "" {
		return nil
	}
	return errors.New(strings.TrimSpace("PCS error " + serverText(code, 64) + " " + serverText(msg, 512)))
}

// serverText is text a PCS or PCCS sent, made safe for a log or a
// terminal: at most n bytes, printable ASCII kept, anything else (C1
// controls such as U+009B CSI, which HTTP header values may carry, bidi
// overrides, invalid UTF-8) written as a Go escape.
func serverText(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '\\' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "\\x%02x", c)
	}
	return b.String()
}

// chainHeader returns the first of the named headers present, URL-decoded.
func chainHeader(h http.Header, names ...string) []byte {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return DecodeChainHeader(v)
		}
	}
	return nil
}

// DecodeChainHeader decodes an issuer chain header: URL-encoded PEM as
// Intel sends it (spaces as %20, '+' as %2B). It also accepts plain PEM,
// and form encoding (spaces as '+').
func DecodeChainHeader(v string) []byte {
	if strings.Contains(v, "-----BEGIN CERTIFICATE-----") {
		return []byte(v)
	}
	s, err := url.PathUnescape(v)
	if err != nil {
		return []byte(v)
	}
	if !strings.Contains(s, "BEGIN CERTIFICATE") && strings.Contains(s, "BEGIN+CERTIFICATE") {
		if q, err := url.QueryUnescape(v); err == nil {
			s = q
		}
	}
	return []byte(s)
}

// EncodeChainHeader URL-encodes a PEM chain for a header, as Intel does
// (JavaScript's encodeURIComponent).
func EncodeChainHeader(pem []byte) string {
	return strings.ReplaceAll(url.QueryEscape(string(pem)), "+", "%20")
}
