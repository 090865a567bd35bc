package store

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

// Defaults of VaultConfig.
const (
	DefaultVaultTimeout = 10 * time.Second
	DefaultVaultField   = "key" // Intel ASPS reads the field "key"
	DefaultAppRoleMount = "approle"
)

// maxVaultResponse bounds the size of a Vault answer.
const maxVaultResponse = 8 << 20

// VaultConfig configures a Vault (or OpenBao) store. The environment
// (VAULT_ADDR, VAULT_TOKEN, VAULT_SKIP_VERIFY, ...) is deliberately ignored:
// everything is explicit.
type VaultConfig struct {
	// Address of the server, e.g. "https://vault.example:8200", or a
	// comma-separated list of the nodes of one cluster. Plain http:// is
	// accepted only for a loopback address unless AllowInsecureHTTP is set.
	Address string
	// Addresses are more nodes of the same cluster (after those of
	// Address). With several nodes, each request starts at the node that
	// last answered and moves on to the next one on a connection error, a
	// 5xx (sealed, standby without an active node, ...), 412 or 429, and
	// after a round in which every node failed so, waits (exponential
	// backoff with jitter) and tries again until Timeout. Verdicts (403,
	// 404, other 4xx) are never retried. Redirects are followed only to
	// configured nodes.
	Addresses []string
	// Token is the server-wide token. It is optional when every request
	// carries its own token (Request.Token, as in Intel's ASPS), and it
	// excludes AppRole.
	Token string
	// AppRole, when set, logs in at first use to obtain the server-wide
	// token, renews it, and logs in again when it expires or is refused.
	AppRole *AppRole
	// Namespace is sent as X-Vault-Namespace (Vault Enterprise, OpenBao).
	Namespace string
	// CACert is a PEM file of the CA certificates that may sign the
	// server's certificate. Empty: the system roots.
	CACert string
	// TLSServerName overrides the name checked in the server certificate.
	TLSServerName string
	// Timeout bounds each Get (login and retries included) and Check.
	// Zero means DefaultVaultTimeout.
	Timeout time.Duration
	// KVVersion (1 or 2) applies to references without a kv1:/kv2:
	// prefix. Zero means 1, as in Intel's ASPS.
	KVVersion int
	// DefaultField is the field read when the reference names none. Empty
	// means DefaultVaultField ("key").
	DefaultField string
	// MaxRetries is how many times a request is retried after a 5xx, 412
	// or 429 answer or a connection error, within Timeout. Zero: none.
	// It applies to a single node; with several, the rounds over the nodes
	// (see Addresses) replace it.
	MaxRetries int
	// AllowInsecureHTTP permits http:// to a non-loopback address.
	AllowInsecureHTTP bool
}

// AppRole holds AppRole credentials.
type AppRole struct {
	RoleID    string
	SecretID  string // may be empty for a role with bind_secret_id=false
	MountPath string // the auth mount; empty means "approle"
}

// Vault is the HashiCorp Vault / OpenBao KV v1 and v2 store. It is safe for
// concurrent use.
type Vault struct {
	addr         string // the configured addresses, comma-separated
	nodes        []*vaultNode
	pref         atomic.Int32 // index of the node that answered last
	kv           int
	field        string
	timeout      time.Duration
	staticToken  string
	transport    *http.Transport
	auth         *approleAuth
	now          func() time.Time
	configSecret []string // the configured credentials, scrubbed from messages
}

var _ Store = (*Vault)(nil)

// vaultNode is one configured server.
type vaultNode struct {
	addr string
	url  *url.URL
	base *api.Client // template: only copied (WithRequestCallbacks), never used or changed
	root *api.Client // the same without a namespace, for sys/health
}

// parseVaultAddrs splits and checks the configured addresses.
func parseVaultAddrs(cfg VaultConfig) ([]*url.URL, error) {
	var raw []string
	if cfg.Address != "" {
		raw = strings.Split(cfg.Address, ",")
	}
	raw = append(raw, cfg.Addresses...)
	if len(raw) == 0 {
		return nil, errors.New(`vault: address "": not a URL`)
	}
	seen := map[string]bool{}
	var us []*url.URL
	for _, a := range raw {
		a = strings.TrimSpace(a)
		u, err := parseVaultAddr(a, cfg)
		if err != nil {
			return nil, err
		}
		if seen[u.String()] {
			return nil, fmt.Errorf("vault: address %q given twice", a)
		}
		seen[u.String()] = true
		us = append(us, u)
	}
	return us, nil
}

func parseVaultAddr(addr string, cfg VaultConfig) (*url.URL, error) {
	u, err := url.Parse(addr)
	if err != nil || addr == "" {
		return nil, fmt.Errorf("vault: address %q: not a URL", addr)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("vault: address %q: scheme must be https or http", addr)
	case u.Host == "":
		return nil, fmt.Errorf("vault: address %q: no host", addr)
	case u.User != nil:
		return nil, errors.New("vault: address: credentials in the URL are not allowed")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("vault: address %q: no query or fragment allowed", addr)
	case u.Scheme == "http" && !isLoopback(u.Hostname()) && !cfg.AllowInsecureHTTP:
		return nil, fmt.Errorf("vault: address %q: plain http to a non-loopback host sends secrets and tokens in clear; use https (or set AllowInsecureHTTP)", addr)
	case u.Scheme == "http" && (cfg.CACert != "" || cfg.TLSServerName != ""):
		return nil, fmt.Errorf("vault: address %q is http but TLS settings are given", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// NewVault checks the configuration and returns a store. It does not
// contact the server; use Check for that.
func NewVault(cfg VaultConfig) (*Vault, error) {
	urls, err := parseVaultAddrs(cfg)
	if err != nil {
		return nil, err
	}
	v := &Vault{
		kv:          cfg.KVVersion,
		field:       cfg.DefaultField,
		timeout:     cfg.Timeout,
		staticToken: cfg.Token,
		now:         time.Now,
	}
	if v.kv == 0 {
		v.kv = 1
	}
	if v.kv != 1 && v.kv != 2 {
		return nil, fmt.Errorf("vault: KVVersion %d: must be 1 or 2", cfg.KVVersion)
	}
	if v.field == "" {
		v.field = DefaultVaultField
	}
	if v.timeout == 0 {
		v.timeout = DefaultVaultTimeout
	}
	if v.timeout < 0 {
		return nil, errors.New("vault: negative Timeout")
	}
	if cfg.MaxRetries < 0 {
		return nil, errors.New("vault: negative MaxRetries")
	}
	if cfg.Token != "" && !validToken(cfg.Token) {
		return nil, errors.New("vault: Token holds characters a token cannot have")
	}
	if cfg.Namespace != "" && (hasControl(cfg.Namespace) || strings.ContainsAny(cfg.Namespace, " \t")) {
		return nil, fmt.Errorf("vault: namespace %q: invalid", cfg.Namespace)
	}
	if cfg.Token != "" {
		v.configSecret = append(v.configSecret, cfg.Token)
	}
	if cfg.AppRole != nil {
		if cfg.Token != "" {
			return nil, errors.New("vault: give either Token or AppRole, not both")
		}
		ar := *cfg.AppRole
		if ar.RoleID == "" {
			return nil, errors.New("vault: AppRole without RoleID")
		}
		if hasControl(ar.RoleID) || hasControl(ar.SecretID) {
			return nil, errors.New("vault: AppRole RoleID or SecretID holds control characters")
		}
		ar.MountPath = strings.Trim(ar.MountPath, "/")
		if ar.MountPath == "" {
			ar.MountPath = DefaultAppRoleMount
		}
		if err := checkSegments(ar.MountPath); err != nil || strings.ContainsAny(ar.MountPath, "?#") {
			return nil, fmt.Errorf("vault: AppRole MountPath %q: invalid", ar.MountPath)
		}
		v.auth = &approleAuth{cfg: ar, sem: make(chan struct{}, 1)}
		if ar.SecretID != "" {
			v.configSecret = append(v.configSecret, ar.SecretID)
		}
	}

	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("vault: CA certificates: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("vault: CA certificates: no PEM certificate in %s", cfg.CACert)
		}
		tlsConf.RootCAs = pool
	}
	v.transport = &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		TLSClientConfig:       tlsConf,
	}
	hc := &http.Client{
		Transport: v.transport,
		// Redirects are this store's business (see call): neither net/http
		// nor the Vault client follows them, since the Vault client would
		// send the token to whatever host a Location names.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	// With several nodes, call goes round them instead of retrying one.
	maxRetries := cfg.MaxRetries
	if len(urls) > 1 {
		maxRetries = 0
	}
	var addrs []string
	for _, u := range urls {
		client, err := api.NewClient(&api.Config{
			Address:    u.String(),
			HttpClient: hc,
			// No client-side timeout: the caller's context, bounded by
			// v.timeout, governs the request and the reading of the body.
			Timeout:          0,
			MaxRetries:       maxRetries,
			DisableRedirects: true,
		})
		if err != nil {
			return nil, fmt.Errorf("vault: client: %w", err)
		}
		// Undo what api.NewClient takes from the environment.
		client.SetToken("")
		client.SetHeaders(http.Header{api.RequestHeaderName: {"true"}})
		client.SetWrappingLookupFunc(func(string, string) string { return "" })
		n := &vaultNode{addr: u.String(), url: u, root: client.WithNamespace("")}
		if cfg.Namespace != "" {
			client.SetNamespace(cfg.Namespace)
		}
		n.base = client
		v.nodes = append(v.nodes, n)
		addrs = append(addrs, n.addr)
	}
	v.addr = strings.Join(addrs, ",")
	return v, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validToken: a token goes into an HTTP header; Vault and OpenBao tokens
// are visible ASCII.
func validToken(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] <= 0x20 || t[i] >= 0x7f {
			return false
		}
	}
	return t != ""
}

// Kind returns "vault".
func (v *Vault) Kind() string { return "vault" }

// Address returns the server's address (the nodes' addresses,
// comma-separated).
func (v *Vault) Address() string { return v.addr }

// Close releases idle connections.
func (v *Vault) Close() error {
	v.transport.CloseIdleConnections()
	return nil
}

// client returns a client that sends token (none if empty). Each call makes
// a shallow copy of the template, so concurrent requests with different
// tokens never share mutable state.
func (v *Vault) client(tmpl *api.Client, token string) *api.Client {
	return tmpl.WithRequestCallbacks(func(r *api.Request) { r.ClientToken = token })
}

// answer is the JSON envelope of Vault's replies.
type answer struct {
	Errors   []string       `json:"errors"`
	Warnings []string       `json:"warnings"`
	Data     map[string]any `json:"data"`
	Auth     *struct {
		ClientToken   string `json:"client_token"`
		LeaseDuration int64  `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
	} `json:"auth"`
}

// trail records the nodes a call tried, for error messages.
type trail struct {
	multi bool // several nodes are configured
	steps []string
}

func (t *trail) add(addr, what string) {
	if len(t.steps) < 12 {
		t.steps = append(t.steps, addr+": "+what)
	} else if len(t.steps) == 12 {
		t.steps = append(t.steps, "...")
	}
}

// String is "" with a single node, else " (nodes tried: ...)".
func (t trail) String() string {
	if !t.multi || len(t.steps) == 0 {
		return ""
	}
	return " (nodes tried: " + strings.Join(t.steps, "; ") + ")"
}

// retryableStatus: answers after which another node (or a later try) may
// do better. Everything else is the cluster's verdict.
func retryableStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusPreconditionFailed
}

func isRedirect(status int) bool {
	return status == http.StatusMovedPermanently || status == http.StatusFound ||
		status == http.StatusTemporaryRedirect || status == http.StatusPermanentRedirect
}

// Backoff between rounds over all nodes (several nodes only).
const (
	roundBackoffMin = 50 * time.Millisecond
	roundBackoffMax = time.Second
)

// call performs one request, on the nodes in turn from the one that
// answered last (see VaultConfig.Addresses). A non-nil error means no HTTP
// answer (network, TLS, timeout, a redirect to a host that is not
// configured) from the last node tried; otherwise status is the HTTP status
// and a is the decoded body (zero if empty or not JSON). tr says which
// nodes were tried and why they were left.
func (v *Vault) call(ctx context.Context, token, method, path string, q url.Values, body []byte) (status int, a answer, tr trail, err error) {
	n := len(v.nodes)
	tr.multi = n > 1
	start := int(v.pref.Load())
	backoff := roundBackoffMin
	for {
		for k := 0; k < n; k++ {
			i := (start + k) % n
			var loc *url.URL
			actx, cancel := v.attemptCtx(ctx)
			status, a, loc, err = v.callNode(actx, v.nodes[i], token, method, path, q, body)
			if err == nil && isRedirect(status) {
				// A standby that cannot forward names the active node:
				// follow once, and only to a configured node (the token
				// goes with the request).
				j := v.nodeAt(loc)
				if j < 0 {
					tr.add(v.nodes[i].addr, fmt.Sprintf("HTTP %d redirect to a host that is not a configured node (not followed)", status))
					status, a, err = 0, answer{}, fmt.Errorf("%s: HTTP %d redirect to a host that is not a configured node (not followed)", v.nodes[i].addr, status)
				} else {
					tr.add(v.nodes[i].addr, fmt.Sprintf("HTTP %d redirect to %s", status, v.nodes[j].addr))
					i = j
					status, a, _, err = v.callNode(actx, v.nodes[i], token, method, path, q, body)
					if err == nil && isRedirect(status) {
						status, a, err = 0, answer{}, fmt.Errorf("%s: a second redirect (not followed)", v.nodes[i].addr)
					}
				}
			}
			cancel()
			if err == nil && !retryableStatus(status) {
				v.pref.Store(int32(i))
				return status, a, tr, nil
			}
			if err != nil {
				tr.add(v.nodes[i].addr, netWhat(ctx, err))
			} else {
				reason, _ := statusKind(status)
				tr.add(v.nodes[i].addr, reason+vaultSays(a.Errors, append([]string{token}, v.configSecret...)))
			}
			if ctx.Err() != nil || n == 1 {
				return status, a, tr, err
			}
		}
		// Every node failed: the cluster may be electing a leader or
		// unsealing. Wait (jittered exponential backoff) and go round
		// again, within the caller's deadline.
		d := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return status, a, tr, err
		case <-t.C:
		}
		backoff = min(2*backoff, roundBackoffMax)
		start = int(v.pref.Load())
	}
}

// minAttempt is the least time one node is given when several are
// configured.
const minAttempt = 500 * time.Millisecond

// attemptCtx bounds one attempt on one node: with several nodes, a share
// of Timeout (at least minAttempt), so that a node that accepts
// connections but never answers (a partition, a hung process) cannot
// take the whole deadline from the others; with one node, the request's
// own context.
func (v *Vault) attemptCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if len(v.nodes) < 2 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, max(v.timeout/time.Duration(len(v.nodes)), minAttempt))
}

// netWhat summarises a transport error for a trail.
func netWhat(ctx context.Context, err error) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return "no answer within the time allowed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "connection reset"
	default:
		return "no usable answer"
	}
}

// nodeAt returns the index of the configured node a redirect's Location
// names (same scheme, host and port, path below the node's), or -1.
func (v *Vault) nodeAt(loc *url.URL) int {
	if loc == nil {
		return -1
	}
	for i, n := range v.nodes {
		if loc.Scheme == n.url.Scheme && strings.EqualFold(loc.Host, n.url.Host) &&
			loc.User == nil && strings.HasPrefix(loc.Path, n.url.Path+"/") {
			return i
		}
	}
	return -1
}

// callNode performs one request on one node; loc is the Location of a
// redirect.
func (v *Vault) callNode(ctx context.Context, node *vaultNode, token, method, path string, q url.Values, body []byte) (status int, a answer, loc *url.URL, err error) {
	c := v.client(node.base, token)
	var resp *api.Response
	if method == http.MethodGet {
		resp, err = c.Logical().ReadRawWithDataWithContext(ctx, path, q)
	} else {
		resp, err = c.Logical().WriteRawWithContext(ctx, path, body)
	}
	if resp == nil || resp.Response == nil {
		if err == nil {
			err = errors.New("no answer")
		}
		return 0, a, nil, err
	}
	defer resp.Body.Close()
	var re *api.ResponseError
	if err != nil && !errors.As(err, &re) {
		return 0, a, nil, err
	}
	if isRedirect(resp.StatusCode) {
		loc, _ = resp.Location()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return resp.StatusCode, a, loc, nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxVaultResponse+1))
	if err != nil {
		return 0, a, nil, fmt.Errorf("reading the answer: %w", err)
	}
	if len(raw) > maxVaultResponse {
		return 0, a, nil, fmt.Errorf("answer larger than %d bytes", maxVaultResponse)
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&a); err != nil {
			a = answer{}
			if resp.StatusCode/100 == 2 {
				return 0, a, nil, errors.New("the answer is not Vault's JSON")
			}
		}
	}
	return resp.StatusCode, a, nil, nil
}

// Get reads the secret at req.Ref (syntax in the package documentation)
// with req.Token, or else the server-wide token.
func (v *Vault) Get(ctx context.Context, req Request) ([]byte, error) {
	// Every token this Get sent (an AppRole token may be replaced while
	// a request is in flight) and the configured credentials are scrubbed
	// from what it returns.
	var sent []string
	secrets := func() []string {
		s := append([]string{req.Token}, v.configSecret...)
		s = append(s, sent...)
		if v.auth != nil {
			s = append(s, v.auth.current())
		}
		return s
	}
	// Reasons are built here from paths and fields, except Vault's own
	// messages, which go through says; causes are scrubbed too.
	fail := func(kind error, status int, reason string, cause error) error {
		return &Error{Store: "vault", Name: req.Name, Ref: req.Ref, Kind: kind, Status: status,
			Reason: reason, Err: scrubErr(cause, secrets())}
	}
	says := func(errs []string) string { return vaultSays(errs, secrets()) }
	ref, err := ParseVaultRef(req.Ref)
	if err == nil {
		_, _, err = ref.APIPath(v.kv)
	}
	if err != nil {
		var re *RefError
		if errors.As(err, &re) {
			err = errors.New(re.Msg)
		}
		return nil, fail(ErrNotFound, 0, "invalid reference: "+err.Error(), nil)
	}
	path, q, _ := ref.APIPath(v.kv)
	kv := ref.KV
	if kv == 0 {
		kv = v.kv
	}
	field := ref.Field
	if field == "" {
		field = v.field
	}
	where := "GET /v1/" + path
	if len(q) > 0 {
		where += "?" + q.Encode()
	}

	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()

	var status int
	var a answer
	var tr trail
	for attempt := 0; ; attempt++ {
		tok, fromAppRole, terr := v.tokenFor(ctx, req.Token)
		if terr != nil {
			return nil, fail(terr.Kind, terr.Status, terr.Reason, terr.Err)
		}
		sent = append(sent, tok)
		status, a, tr, err = v.call(ctx, tok, http.MethodGet, path, q, nil)
		if err != nil {
			return nil, fail(ErrUnavailable, 0, v.netReason(ctx, where)+scrub(tr.String(), secrets()), err)
		}
		if status == http.StatusForbidden && fromAppRole && attempt == 0 && v.reloginAfterDenied(ctx, tok) {
			// The AppRole token may have expired or been revoked: log in
			// again once (bounded: reloginAfterDenied).
			continue
		}
		break
	}

	switch {
	case status/100 == 2:
	case status == http.StatusNotFound:
		return nil, fail(ErrNotFound, status, notFoundReason(where, kv, ref, a)+says(a.Errors), nil)
	default:
		reason, kind := statusKind(status)
		if kind == ErrUnavailable && tr.String() != "" {
			// The trail quotes each node's message.
			return nil, fail(kind, status, fmt.Sprintf("%s: %s%s", where, reason, scrub(tr.String(), secrets())), nil)
		}
		return nil, fail(kind, status, fmt.Sprintf("%s: %s%s", where, reason, says(a.Errors)), nil)
	}
	if a.Data == nil {
		return nil, fail(ErrNotFound, status, where+": the answer has no data", nil)
	}
	data := a.Data
	if kv == 2 {
		inner, ok := data["data"].(map[string]any)
		if !ok {
			return nil, fail(ErrNotFound, status, where+": "+v2Missing(a), nil)
		}
		data = inner
	}
	val, ok := data[field]
	if !ok {
		reason := fmt.Sprintf("%s: the secret has no field %q", where, field)
		if kv == 1 && isMap(data["data"]) && isMap(data["metadata"]) {
			reason += " (the answer looks like KV v2: write the reference as kv2:<mount>/<path>)"
		}
		return nil, fail(ErrNotFound, status, reason, nil)
	}
	switch t := val.(type) {
	case nil:
		return nil, fail(ErrNotFound, status, fmt.Sprintf("%s: field %q is null", where, field), nil)
	case string:
		return []byte(t), nil
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(t); err != nil {
			return nil, fail(ErrUnavailable, status, fmt.Sprintf("%s: field %q: cannot encode the value as JSON", where, field), nil)
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
	}
}

func isMap(x any) bool {
	_, ok := x.(map[string]any)
	return ok
}

// statusKind maps an HTTP status other than 2xx and 404.
func statusKind(status int) (string, error) {
	switch {
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return fmt.Sprintf("HTTP %d: the token is invalid or expired, or its policy does not allow this", status), ErrPermissionDenied
	case status == http.StatusServiceUnavailable:
		return "HTTP 503: sealed, or not ready", ErrUnavailable
	case status == http.StatusTooManyRequests:
		return "HTTP 429: rate limited", ErrUnavailable
	case status == http.StatusPreconditionFailed:
		return "HTTP 412: replication state not yet reached", ErrUnavailable
	case status >= 500:
		return fmt.Sprintf("HTTP %d: server error", status), ErrUnavailable
	case status >= 400:
		return fmt.Sprintf("HTTP %d: request refused", status), ErrNotFound
	default:
		return fmt.Sprintf("HTTP %d: unexpected answer", status), ErrUnavailable
	}
}

func notFoundReason(where string, kv int, ref VaultRef, a answer) string {
	reason := where + ": no secret there"
	for _, w := range a.Warnings {
		if strings.Contains(w, "versioned K/V") {
			return where + ": the mount is KV v2: write the reference as kv2:<mount>/<path>"
		}
	}
	if kv == 2 {
		if a.Data != nil {
			return where + ": " + v2Missing(a)
		}
		if _, p, ok := strings.Cut(ref.Path, "/"); ok && ref.Mount == "" && strings.HasPrefix(p, "data/") {
			reason += " (kv2: references name the path without data/)"
		}
		reason += " (or the mount is not KV v2)"
	}
	return reason
}

// v2Missing explains a KV v2 answer without data: a deleted or destroyed
// version.
func v2Missing(a answer) string {
	meta, _ := a.Data["metadata"].(map[string]any)
	version := ""
	if n, ok := meta["version"].(json.Number); ok {
		version = " " + n.String()
	}
	if d, _ := meta["destroyed"].(bool); d {
		return "version" + version + " is destroyed"
	}
	if t, _ := meta["deletion_time"].(string); t != "" {
		return "version" + version + " was deleted at " + t
	}
	return "the answer has no data.data"
}

// vaultSays quotes Vault's own error messages for a reason text: joined,
// whitespace folded, secrets scrubbed, then cut to 300 bytes.
func vaultSays(errs []string, secrets []string) string {
	var msgs []string
	for _, e := range errs {
		// Scrubbed before it is cut: a credential straddling the cut
		// would no longer be found whole.
		e = scrub(strings.Join(strings.Fields(e), " "), secrets)
		if e != "" {
			msgs = append(msgs, e)
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	s := strings.Join(msgs, "; ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return fmt.Sprintf(" (vault says: %q)", s)
}

func (v *Vault) netReason(ctx context.Context, where string) string {
	who := v.addr
	if len(v.nodes) > 1 {
		who = "any of " + strings.ReplaceAll(v.addr, ",", ", ")
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("%s: no answer from %s within the time allowed", where, who)
	}
	return fmt.Sprintf("%s: no usable answer from %s", where, who)
}

// tokenFor chooses the token: the request's, else the static one, else
// AppRole's.
func (v *Vault) tokenFor(ctx context.Context, reqToken string) (string, bool, *Error) {
	switch {
	case reqToken != "":
		if !validToken(reqToken) {
			return "", false, &Error{Kind: ErrPermissionDenied, Reason: "the request's token is malformed"}
		}
		return reqToken, false, nil
	case v.staticToken != "":
		return v.staticToken, false, nil
	case v.auth != nil:
		tok, err := v.auth.get(ctx, v)
		if err != nil {
			return "", false, err
		}
		return tok, true, nil
	default:
		return "", false, &Error{Kind: ErrPermissionDenied, Reason: "no token: the request carries none and the store has neither Token nor AppRole"}
	}
}

// Check reports whether the server answers, is initialised and unsealed,
// and, with AppRole, whether the login works. It does not prove that any
// given token may read any given secret.
func (v *Vault) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	fail := func(kind error, reason string, cause error) error {
		return &Error{Store: "vault", Kind: kind, Reason: reason, Err: scrubErr(cause, v.configSecret)}
	}
	// One healthy node is enough: requests go round the nodes.
	var problems []string
	var firstErr error
	healthy := false
	for _, n := range v.nodes {
		actx, cancel := v.attemptCtx(ctx)
		reason, cause := v.checkNode(actx, n)
		cancel()
		if reason == "" {
			healthy = true
			break
		}
		problems = append(problems, reason)
		if firstErr == nil {
			firstErr = cause
		}
	}
	if !healthy {
		reason := problems[0]
		if len(problems) > 1 {
			reason = "no healthy node: " + strings.Join(problems, "; ")
		}
		return fail(ErrUnavailable, reason, firstErr)
	}
	if v.auth != nil {
		if _, err := v.auth.get(ctx, v); err != nil {
			err.Store = "vault"
			return err
		}
	}
	return nil
}

// checkNode returns "" if the node answers initialised and unsealed, else
// why not.
func (v *Vault) checkNode(ctx context.Context, n *vaultNode) (string, error) {
	h, err := v.client(n.root, "").Sys().HealthWithContext(ctx)
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) {
			return fmt.Sprintf("GET /v1/sys/health at %s: HTTP %d%s", n.addr, re.StatusCode, vaultSays(re.Errors, v.configSecret)), nil
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Sprintf("GET /v1/sys/health: no answer from %s within the time allowed", n.addr), err
		}
		return fmt.Sprintf("GET /v1/sys/health: no usable answer from %s", n.addr), err
	}
	switch {
	case !h.Initialized:
		return n.addr + " is not initialised", nil
	case h.Sealed:
		return n.addr + " is sealed", nil
	}
	return "", nil
}

// ---- AppRole ----

// approleAuth holds the AppRole token. sem serialises logins and renewals
// (and honours contexts while waiting); mu guards the fields for readers.
type approleAuth struct {
	cfg AppRole
	sem chan struct{}

	mu        sync.Mutex
	token     string
	expires   time.Time // zero: no expiry
	refreshAt time.Time // zero: never
	issued    time.Time // when token was obtained (login or renewal)
	renewable bool
	// deniedLogin is the last login after a 403 on a token too young to
	// have expired (reloginAfterDenial bounds them).
	deniedLogin time.Time
}

// reloginAfterDenial is how old an AppRole token must be before a 403
// makes the store log in again: a denial of one path says nothing of a
// token just issued, and a login is a write on every node of a cluster.
const reloginAfterDenial = 10 * time.Second

func (a *approleAuth) current() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token
}

func (a *approleAuth) fresh(now time.Time) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && (a.refreshAt.IsZero() || now.Before(a.refreshAt)) {
		return a.token, true
	}
	return "", false
}

func (a *approleAuth) invalidate(tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token == tok {
		a.token = ""
	}
}

// reloginAfterDenied decides, after a 403 to tok, whether to log in again
// (and drops tok if so). A token older than reloginAfterDenial may have
// expired or been revoked: yes. A younger one is asked about itself
// (auth/token/lookup-self, a read): still valid means the 403 is the
// policy's denial of this path, no login; otherwise (revoked, or a token
// that may not look itself up) at most one such login per
// reloginAfterDenial. So a workload asking again and again for a path its
// role cannot read costs no token creation per request.
func (v *Vault) reloginAfterDenied(ctx context.Context, tok string) bool {
	a, now := v.auth, v.now()
	a.mu.Lock()
	replaced, young := a.token != tok, now.Sub(a.issued) < reloginAfterDenial && !now.Before(a.issued)
	a.mu.Unlock()
	if replaced {
		return true // another request logged in meanwhile: try the new token
	}
	if young {
		if status, _, _, err := v.call(ctx, tok, http.MethodGet, "auth/token/lookup-self", nil, nil); err == nil && status/100 == 2 {
			return false
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if young {
		if !a.deniedLogin.IsZero() && now.Sub(a.deniedLogin) < reloginAfterDenial && !now.Before(a.deniedLogin) {
			return false
		}
		a.deniedLogin = now
	}
	if a.token == tok {
		a.token = ""
	}
	return true
}

func (a *approleAuth) set(now time.Time, tok string, ttl time.Duration, renewable bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.token, a.renewable, a.issued = tok, renewable, now
	if ttl > 0 {
		a.expires = now.Add(ttl)
		a.refreshAt = now.Add(ttl * 2 / 3)
	} else {
		a.expires, a.refreshAt = time.Time{}, time.Time{}
	}
}

// get returns a usable token: the current one while fresh; past two thirds
// of its TTL, renewed (if renewable and the renewal extends it) or replaced
// by a new login. If the login fails while the old token is still valid,
// the old token serves and the login is tried again a little later.
func (a *approleAuth) get(ctx context.Context, v *Vault) (string, *Error) {
	if tok, ok := a.fresh(v.now()); ok {
		return tok, nil
	}
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return "", &Error{Kind: ErrUnavailable, Reason: "waiting for the AppRole login", Err: ctx.Err()}
	}
	defer func() { <-a.sem }()

	now := v.now()
	if tok, ok := a.fresh(now); ok { // another goroutine did the work
		return tok, nil
	}
	a.mu.Lock()
	old, expires, renewable := a.token, a.expires, a.renewable
	a.mu.Unlock()
	oldValid := old != "" && (expires.IsZero() || now.Before(expires))

	if oldValid && renewable {
		// Accept a renewal that at least doubles the time left; one capped
		// by the token's max TTL gains nothing, so log in again instead.
		if ttl, ok := v.renewSelf(ctx, old); ok && ttl >= 2*expires.Sub(now) {
			a.set(now, old, ttl, true)
			return old, nil
		}
	}
	tok, ttl, renewable, err := v.login(ctx)
	if err != nil {
		if oldValid && ctx.Err() == nil {
			a.mu.Lock()
			a.refreshAt = now.Add(min(5*time.Second, expires.Sub(now)/2))
			a.mu.Unlock()
			return old, nil
		}
		a.invalidate(old)
		return "", err
	}
	a.set(now, tok, ttl, renewable)
	return tok, nil
}

func (v *Vault) login(ctx context.Context) (token string, ttl time.Duration, renewable bool, e *Error) {
	cfg := v.auth.cfg
	where := "AppRole login at auth/" + cfg.MountPath + "/login"
	body := map[string]string{"role_id": cfg.RoleID}
	if cfg.SecretID != "" {
		body["secret_id"] = cfg.SecretID
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", 0, false, &Error{Kind: ErrPermissionDenied, Reason: where + ": cannot encode the credentials"}
	}
	status, a, tr, err := v.call(ctx, "", http.MethodPost, "auth/"+cfg.MountPath+"/login", nil, b)
	if err != nil {
		return "", 0, false, &Error{Kind: ErrUnavailable, Reason: v.netReason(ctx, where) + scrub(tr.String(), v.configSecret), Err: scrubErr(err, v.configSecret)}
	}
	switch {
	case status/100 == 2:
	case retryableStatus(status):
		reason, kind := statusKind(status)
		return "", 0, false, &Error{Kind: kind, Status: status, Reason: where + ": " + reason + scrub(tr.String(), v.configSecret) + vaultSays(a.Errors, v.configSecret)}
	default:
		return "", 0, false, &Error{Kind: ErrPermissionDenied, Status: status,
			Reason: fmt.Sprintf("%s: refused (HTTP %d)%s", where, status, vaultSays(a.Errors, v.configSecret))}
	}
	if a.Auth == nil || !validToken(a.Auth.ClientToken) {
		return "", 0, false, &Error{Kind: ErrUnavailable, Status: status, Reason: where + ": the answer holds no token"}
	}
	return a.Auth.ClientToken, time.Duration(a.Auth.LeaseDuration) * time.Second, a.Auth.Renewable, nil
}

// renewSelf renews token; ok is false if the renewal failed.
func (v *Vault) renewSelf(ctx context.Context, token string) (time.Duration, bool) {
	status, a, _, err := v.call(ctx, token, http.MethodPost, "auth/token/renew-self", nil, []byte("{}"))
	if err != nil || status/100 != 2 || a.Auth == nil || a.Auth.LeaseDuration <= 0 {
		return 0, false
	}
	if a.Auth.ClientToken != "" && a.Auth.ClientToken != token {
		return 0, false
	}
	return time.Duration(a.Auth.LeaseDuration) * time.Second, true
}

// ---- keeping credentials out of messages ----

func scrub(s string, secrets []string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "[redacted]")
		}
	}
	return s
}

// scrubbedError carries a cause with any credential removed from its text,
// and still unwraps to it for errors.Is (context.DeadlineExceeded, ...).
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func scrubErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	return &scrubbedError{msg: scrub(err.Error(), secrets), err: err}
}
