package store

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fakeClock is shared by the fake server and the store under test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fakeToken struct {
	paths     []string  // API paths (below /v1/) it may read; "*" for all
	expires   time.Time // zero: never
	maxExpiry time.Time // zero: none
	ttl       time.Duration
	renewable bool
}

type kv2Version struct {
	data      map[string]any
	deleted   bool
	destroyed bool
}

// fakeVault is a small fake of the Vault HTTP API: KV v1, KV v2 (with
// versions, deletion and the "versioned K/V" warning), tokens with
// per-path permissions, AppRole login, renew-self, sys/health, sealing, a
// namespace, hanging and injected statuses. It answers as Vault does as far
// as this package can tell.
type fakeVault struct {
	clock *fakeClock

	mu        sync.Mutex
	kv1       map[string]map[string]any
	kv2       map[string]map[string][]kv2Version // mount → path → versions
	tokens    map[string]*fakeToken
	sealed    bool
	hang      bool
	namespace string         // if set, secrets exist only in this namespace
	status    map[string]int // API path → status to answer instead
	failures  map[string]int // API path → how many more times to answer 503
	requests  map[string]int // API path → requests seen

	approleMount     string
	roleID, secretID string
	approleTTL       time.Duration
	approleMaxTTL    time.Duration
	approlePaths     []string
	approleSeq       int
	loginStatus      int // if non-zero, logins answer this

	logins, renewals int
	seenNamespaces   map[string][]string // API path → namespace headers seen
	seenTokens       []string
}

func newFakeVault(clock *fakeClock) *fakeVault {
	if clock == nil {
		clock = newFakeClock()
	}
	return &fakeVault{
		clock: clock,
		kv1: map[string]map[string]any{
			"occlum/1/image_key":  {"key": "image-key-v1-SECRET"},
			"occlum/1/rsa_pubkey": {"key": "rsa-pub-SECRET", "other": "other-SECRET"},
			"occlum/2/master_key": {"key": "app2-master-SECRET"},
		},
		kv2: map[string]map[string][]kv2Version{
			"secret": {
				"myapp/db": {
					{data: map[string]any{"password": "db-pass-v1-SECRET", "key": "db-key-v1-SECRET"}},
					{data: map[string]any{
						"password": "db-pass-v2-SECRET", "key": "db-key-v2-SECRET",
						"port": json.Number("5432"), "opts": map[string]any{"tls": true, "user": "app", "dsn": "a<b&c"},
						"nothing": nil, "enabled": true,
					}},
				},
				"myapp/old": {
					{data: map[string]any{"password": "old-pass-SECRET"}, deleted: true},
					{data: map[string]any{"password": "old-pass-2-SECRET"}, destroyed: true},
				},
			},
			"teams/a": {
				"myapp/db": {{data: map[string]any{"password": "team-pass-SECRET"}}},
			},
		},
		tokens: map[string]*fakeToken{
			"hvs.root-TOKEN":   {paths: []string{"*"}},
			"hvs.app1-TOKEN":   {paths: []string{"occlum/1/image_key", "occlum/1/rsa_pubkey"}},
			"hvs.app2-TOKEN":   {paths: []string{"occlum/2/master_key"}},
			"hvs.nobody-TOKEN": {},
		},
		status:         map[string]int{},
		failures:       map[string]int{},
		requests:       map[string]int{},
		approleMount:   "approle",
		roleID:         "role-ID-1",
		secretID:       "secret-ID-SECRET",
		approleTTL:     time.Hour,
		approlePaths:   []string{"*"},
		seenNamespaces: map[string][]string{},
	}
}

// allSecrets lists every value and credential the fake holds, to check
// that none leaks into an error message.
func (f *fakeVault) allSecrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	add := func(m map[string]any) {
		for _, v := range m {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
	}
	for _, m := range f.kv1 {
		add(m)
	}
	for _, paths := range f.kv2 {
		for _, vs := range paths {
			for _, v := range vs {
				add(v.data)
			}
		}
	}
	for t := range f.tokens {
		out = append(out, t)
	}
	return append(out, f.secretID)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func vaultErrors(msgs ...string) map[string]any {
	if msgs == nil {
		msgs = []string{}
	}
	return map[string]any{"errors": msgs}
}

func (f *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hang := f.hang
	f.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()

	p, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		writeJSON(w, 404, vaultErrors())
		return
	}
	ns := r.Header.Get("X-Vault-Namespace")
	f.seenNamespaces[p] = append(f.seenNamespaces[p], ns)
	now := f.clock.Now()

	if p == "sys/health" {
		code := 200
		if f.sealed {
			code = 503
			if c, err := strconv.Atoi(r.URL.Query().Get("sealedcode")); err == nil {
				code = c
			}
		}
		writeJSON(w, code, map[string]any{"initialized": true, "sealed": f.sealed, "standby": false, "version": "1.99.0-fake"})
		return
	}
	f.requests[p]++
	if f.sealed {
		writeJSON(w, 503, vaultErrors("Vault is sealed"))
		return
	}
	if f.failures[p] > 0 {
		f.failures[p]--
		writeJSON(w, 503, vaultErrors("Vault is sealed"))
		return
	}
	if code, ok := f.status[p]; ok {
		writeJSON(w, code, vaultErrors(fmt.Sprintf("injected status %d", code)))
		return
	}
	if f.namespace != "" && ns != f.namespace {
		writeJSON(w, 404, vaultErrors(fmt.Sprintf("no handler for route %q. route entry not found.", p)))
		return
	}

	if p == "auth/"+f.approleMount+"/login" && (r.Method == http.MethodPut || r.Method == http.MethodPost) {
		f.logins++
		if f.loginStatus != 0 {
			writeJSON(w, f.loginStatus, vaultErrors("login trouble"))
			return
		}
		var body struct {
			RoleID   string `json:"role_id"`
			SecretID string `json:"secret_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.RoleID != f.roleID || body.SecretID != f.secretID {
			writeJSON(w, 400, vaultErrors("invalid role or secret ID"))
			return
		}
		f.approleSeq++
		tok := fmt.Sprintf("hvs.approle-%d-TOKEN", f.approleSeq)
		ft := &fakeToken{paths: f.approlePaths, ttl: f.approleTTL, renewable: true}
		if f.approleTTL > 0 {
			ft.expires = now.Add(f.approleTTL)
		}
		if f.approleMaxTTL > 0 {
			ft.maxExpiry = now.Add(f.approleMaxTTL)
		}
		f.tokens[tok] = ft
		writeJSON(w, 200, map[string]any{"auth": map[string]any{
			"client_token": tok, "lease_duration": int(f.approleTTL.Seconds()), "renewable": true,
			"policies": []string{"default", "app"},
		}})
		return
	}

	tok := r.Header.Get("X-Vault-Token")
	ft, ok := f.tokens[tok]
	if ok && !ft.expires.IsZero() && !now.Before(ft.expires) {
		delete(f.tokens, tok)
		ok = false
	}
	if !ok {
		writeJSON(w, 403, vaultErrors("permission denied", "invalid token"))
		return
	}
	f.seenTokens = append(f.seenTokens, tok)

	if p == "auth/token/renew-self" && (r.Method == http.MethodPut || r.Method == http.MethodPost) {
		f.renewals++
		if !ft.renewable {
			writeJSON(w, 400, vaultErrors("lease is not renewable"))
			return
		}
		exp := now.Add(ft.ttl)
		if !ft.maxExpiry.IsZero() && exp.After(ft.maxExpiry) {
			exp = ft.maxExpiry
		}
		ft.expires = exp
		writeJSON(w, 200, map[string]any{
			"auth":     map[string]any{"client_token": tok, "lease_duration": int(exp.Sub(now).Seconds()), "renewable": true},
			"warnings": nil,
		})
		return
	}
	if r.Method != http.MethodGet {
		writeJSON(w, 405, vaultErrors("unsupported operation"))
		return
	}
	allowed := false
	for _, a := range ft.paths {
		if a == "*" || a == p {
			allowed = true
		}
	}
	if !allowed {
		writeJSON(w, 403, vaultErrors("permission denied"))
		return
	}

	for mount, paths := range f.kv2 {
		rest, ok := strings.CutPrefix(p, mount+"/")
		if !ok {
			continue
		}
		sp, ok := strings.CutPrefix(rest, "data/")
		if !ok {
			writeJSON(w, 404, map[string]any{"errors": []string{}, "warnings": []string{
				"Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.",
			}})
			return
		}
		versions, ok := paths[sp]
		if !ok {
			writeJSON(w, 404, vaultErrors())
			return
		}
		n := len(versions)
		if q := r.URL.Query().Get("version"); q != "" {
			var err error
			if n, err = strconv.Atoi(q); err != nil {
				writeJSON(w, 400, vaultErrors("invalid version"))
				return
			}
			if n == 0 {
				n = len(versions)
			}
		}
		if n < 1 || n > len(versions) {
			writeJSON(w, 404, vaultErrors())
			return
		}
		v := versions[n-1]
		meta := map[string]any{"version": n, "created_time": "2026-01-01T00:00:00Z", "deletion_time": "", "destroyed": v.destroyed}
		if v.deleted {
			meta["deletion_time"] = "2026-01-02T00:00:00Z"
		}
		if v.deleted || v.destroyed {
			writeJSON(w, 404, map[string]any{"data": map[string]any{"data": nil, "metadata": meta}})
			return
		}
		writeJSON(w, 200, map[string]any{"request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 0,
			"data": map[string]any{"data": v.data, "metadata": meta}})
		return
	}
	if data, ok := f.kv1[p]; ok {
		writeJSON(w, 200, map[string]any{"request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 2764800, "data": data})
		return
	}
	writeJSON(w, 404, vaultErrors())
}
