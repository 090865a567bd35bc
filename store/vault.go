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
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
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
	// Address of the server, e.g. "https://vault.example:8200". Plain
	// http:// is accepted only for a loopback address unless
	// AllowInsecureHTTP is set.
	Address string
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
	addr         string
	kv           int
	field        string
	timeout      time.Duration
	staticToken  string
	transport    *http.Transport
	base         *api.Client // template: only copied (WithRequestCallbacks), never used or changed
	root         *api.Client // the same without a namespace, for sys/health
	auth         *approleAuth
	now          func() time.Time
	configSecret []string // the configured credentials, scrubbed from messages
}

var _ Store = (*Vault)(nil)

// NewVault checks the configuration and returns a store. It does not
// contact the server; use Check for that.
func NewVault(cfg VaultConfig) (*Vault, error) {
	u, err := url.Parse(cfg.Address)
	if err != nil || cfg.Address == "" {
		return nil, fmt.Errorf("vault: address %q: not a URL", cfg.Address)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("vault: address %q: scheme must be https or http", cfg.Address)
	case u.Host == "":
		return nil, fmt.Errorf("vault: address %q: no host", cfg.Address)
	case u.User != nil:
		return nil, errors.New("vault: address: credentials in the URL are not allowed")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("vault: address %q: no query or fragment allowed", cfg.Address)
	case u.Scheme == "http" && !isLoopback(u.Hostname()) && !cfg.AllowInsecureHTTP:
		return nil, fmt.Errorf("vault: address %q: plain http to a non-loopback host sends secrets and tokens in clear; use https (or set AllowInsecureHTTP)", cfg.Address)
	case u.Scheme == "http" && (cfg.CACert != "" || cfg.TLSServerName != ""):
		return nil, fmt.Errorf("vault: address %q is http but TLS settings are given", cfg.Address)
	}
	v := &Vault{
		addr:        strings.TrimSuffix(u.String(), "/"),
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
		// The Vault client follows one redirect itself (standby nodes).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client, err := api.NewClient(&api.Config{
		Address:    v.addr,
		HttpClient: hc,
		// No client-side timeout: the caller's context, bounded by
		// v.timeout, governs the request and the reading of the body.
		Timeout:    0,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("vault: client: %w", err)
	}
	// Undo what api.NewClient takes from the environment.
	client.SetToken("")
	client.SetHeaders(http.Header{api.RequestHeaderName: {"true"}})
	client.SetWrappingLookupFunc(func(string, string) string { return "" })
	v.root = client.WithNamespace("")
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	v.base = client
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

// Address returns the server's address.
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

// call performs one request. A non-nil error means no HTTP answer (network,
// TLS, timeout); otherwise status is the HTTP status and a is the decoded
// body (zero if empty or not JSON).
func (v *Vault) call(ctx context.Context, token, method, path string, q url.Values, body []byte) (status int, a answer, err error) {
	c := v.client(v.base, token)
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
		return 0, a, err
	}
	defer resp.Body.Close()
	var re *api.ResponseError
	if err != nil && !errors.As(err, &re) {
		return 0, a, err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxVaultResponse+1))
	if err != nil {
		return 0, a, fmt.Errorf("reading the answer: %w", err)
	}
	if len(raw) > maxVaultResponse {
		return 0, a, fmt.Errorf("answer larger than %d bytes", maxVaultResponse)
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&a); err != nil {
			a = answer{}
			if resp.StatusCode/100 == 2 {
				return 0, a, errors.New("the answer is not Vault's JSON")
			}
		}
	}
	return resp.StatusCode, a, nil
}

// Get reads the secret at req.Ref (syntax in the package documentation)
// with req.Token, or else the server-wide token.
func (v *Vault) Get(ctx context.Context, req Request) ([]byte, error) {
	secrets := func() []string {
		s := append([]string{req.Token}, v.configSecret...)
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
	says := func(errs []string) string { return scrub(vaultSays(errs), secrets()) }
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
	for attempt := 0; ; attempt++ {
		tok, fromAppRole, terr := v.tokenFor(ctx, req.Token)
		if terr != nil {
			return nil, fail(terr.Kind, terr.Status, terr.Reason, terr.Err)
		}
		status, a, err = v.call(ctx, tok, http.MethodGet, path, q, nil)
		if err != nil {
			return nil, fail(ErrUnavailable, 0, v.netReason(ctx, where), err)
		}
		if status == http.StatusForbidden && fromAppRole && attempt == 0 {
			// The AppRole token may have expired or been revoked: log in
			// again once.
			v.auth.invalidate(tok)
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

func vaultSays(errs []string) string {
	var msgs []string
	for _, e := range errs {
		e = strings.Join(strings.Fields(e), " ")
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
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("%s: no answer from %s within the time allowed", where, v.addr)
	}
	return fmt.Sprintf("%s: no usable answer from %s", where, v.addr)
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
	h, err := v.client(v.root, "").Sys().HealthWithContext(ctx)
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) {
			return fail(ErrUnavailable, fmt.Sprintf("GET /v1/sys/health at %s: HTTP %d%s", v.addr, re.StatusCode, scrub(vaultSays(re.Errors), v.configSecret)), nil)
		}
		return fail(ErrUnavailable, v.netReason(ctx, "GET /v1/sys/health"), err)
	}
	switch {
	case !h.Initialized:
		return fail(ErrUnavailable, v.addr+" is not initialised", nil)
	case h.Sealed:
		return fail(ErrUnavailable, v.addr+" is sealed", nil)
	}
	if v.auth != nil {
		if _, err := v.auth.get(ctx, v); err != nil {
			err.Store = "vault"
			return err
		}
	}
	return nil
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
	renewable bool
}

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

func (a *approleAuth) set(now time.Time, tok string, ttl time.Duration, renewable bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.token, a.renewable = tok, renewable
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
	status, a, err := v.call(ctx, "", http.MethodPost, "auth/"+cfg.MountPath+"/login", nil, b)
	if err != nil {
		return "", 0, false, &Error{Kind: ErrUnavailable, Reason: v.netReason(ctx, where), Err: scrubErr(err, v.configSecret)}
	}
	switch {
	case status/100 == 2:
	case status == http.StatusTooManyRequests || status == http.StatusPreconditionFailed || status >= 500:
		reason, kind := statusKind(status)
		return "", 0, false, &Error{Kind: kind, Status: status, Reason: where + ": " + reason + scrub(vaultSays(a.Errors), v.configSecret)}
	default:
		return "", 0, false, &Error{Kind: ErrPermissionDenied, Status: status,
			Reason: fmt.Sprintf("%s: refused (HTTP %d)%s", where, status, scrub(vaultSays(a.Errors), v.configSecret))}
	}
	if a.Auth == nil || !validToken(a.Auth.ClientToken) {
		return "", 0, false, &Error{Kind: ErrUnavailable, Status: status, Reason: where + ": the answer holds no token"}
	}
	return a.Auth.ClientToken, time.Duration(a.Auth.LeaseDuration) * time.Second, a.Auth.Renewable, nil
}

// renewSelf renews token; ok is false if the renewal failed.
func (v *Vault) renewSelf(ctx context.Context, token string) (time.Duration, bool) {
	status, a, err := v.call(ctx, token, http.MethodPost, "auth/token/renew-self", nil, []byte("{}"))
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
