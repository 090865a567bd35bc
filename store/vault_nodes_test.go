package store

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Tests of a store configured with several nodes of one cluster, against
// fakes: failover, verdicts, redirects, error messages. The same against a
// real OpenBao raft cluster is in vault_cluster_test.go.

// deadAddr returns an http address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	return addr
}

// TestVaultNodesFailover: a dead node and a sealed one are skipped; the
// answer comes from the healthy node, which is then asked first.
func TestVaultNodesFailover(t *testing.T) {
	sealed := newFakeVault(nil)
	sealed.sealed = true
	good := newFakeVault(nil)
	sealedSrv, goodSrv := startFake(t, sealed), startFake(t, good)
	dead := deadAddr(t)
	v := newTestVault(t, VaultConfig{Address: dead + "," + sealedSrv.URL, Addresses: []string{goodSrv.URL}, Token: "hvs.root-TOKEN", Timeout: 5 * time.Second}, nil)
	if got, want := v.Address(), dead+","+sealedSrv.URL+","+goodSrv.URL; got != want {
		t.Fatalf("Address() = %q, want %q", got, want)
	}
	for i := 0; i < 3; i++ {
		val, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
		if err != nil || string(val) != "image-key-v1-SECRET" {
			t.Fatalf("Get %d: %q %v", i, val, err)
		}
	}
	sealed.mu.Lock()
	n := sealed.requests["occlum/1/image_key"]
	sealed.mu.Unlock()
	if n != 1 { // the first Get only: then the good node is asked first
		t.Fatalf("sealed node asked %d times, want 1", n)
	}
	if err := v.Check(context.Background()); err != nil {
		t.Fatalf("Check with one healthy node: %v", err)
	}
}

// TestAttack_VaultVerdictNotRetriedOnOtherNodes: a 403 or 404 is the
// cluster's verdict: asking the other nodes could only turn a denial into
// a release by a node with a stale view; it is returned as is.
func TestAttack_VaultVerdictNotRetriedOnOtherNodes(t *testing.T) {
	for _, tc := range []struct {
		name, token, ref string
		kind             error
	}{
		{"denied", "hvs.app2-TOKEN", "occlum/1/image_key", ErrPermissionDenied},
		{"not found", "hvs.root-TOKEN", "occlum/1/nothing", ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, second := newFakeVault(nil), newFakeVault(nil)
			// The second node would release anything to anyone.
			second.tokens[tc.token] = &fakeToken{paths: []string{"*"}}
			second.kv1["occlum/1/nothing"] = map[string]any{"key": "stale-SECRET"}
			s1, s2 := startFake(t, first), startFake(t, second)
			v := newTestVault(t, VaultConfig{Address: s1.URL + "," + s2.URL, Timeout: 5 * time.Second}, nil)
			val, err := v.Get(context.Background(), Request{Name: "k", Ref: tc.ref, Token: tc.token})
			checkStoreErr(t, err, tc.kind, "k", tc.ref, []string{tc.token})
			if val != nil {
				t.Fatalf("value %q with the error", val)
			}
			second.mu.Lock()
			asked := len(second.requests)
			second.mu.Unlock()
			if asked != 0 {
				t.Fatalf("the verdict was retried on the second node (%v)", second.requests)
			}
		})
	}
}

// redirector answers every request with a redirect to target and counts
// the requests.
type redirector struct {
	target string
	n      atomic.Int32
}

func (r *redirector) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.n.Add(1)
	http.Redirect(w, req, r.target+req.URL.RequestURI(), http.StatusTemporaryRedirect)
}

// tokenCatcher records whether any request reached it (with a token).
type tokenCatcher struct {
	hits   atomic.Int32
	tokens atomic.Int32
}

func (c *tokenCatcher) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	c.hits.Add(1)
	if req.Header.Get("X-Vault-Token") != "" {
		c.tokens.Add(1)
	}
	writeJSON(w, 200, map[string]any{"data": map[string]any{"key": "attacker-value"}})
}

// TestAttack_VaultRedirectToForeignHostNotFollowed: a node (compromised,
// or a proxy in front of it) redirects to a host that is not one of the
// configured nodes. Following it would send the token there and take the
// "secret" from it; the store must not follow. A redirect to a configured
// node (a standby naming the active one) is followed.
func TestAttack_VaultRedirectToForeignHostNotFollowed(t *testing.T) {
	catcher := &tokenCatcher{}
	evil := httptest.NewServer(catcher)
	t.Cleanup(evil.Close)
	rd := &redirector{target: evil.URL}
	rdSrv := httptest.NewServer(rd)
	t.Cleanup(rdSrv.Close)

	for _, addrs := range [][]string{{rdSrv.URL}, {rdSrv.URL, deadAddr(t)}} {
		v := newTestVault(t, VaultConfig{Address: strings.Join(addrs, ","), Token: "hvs.root-TOKEN", Timeout: 300 * time.Millisecond}, nil)
		val, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
		checkStoreErr(t, err, ErrUnavailable, "k", "occlum/1/image_key", []string{"hvs.root-TOKEN"})
		if val != nil || !strings.Contains(err.Error(), "not a configured node") {
			t.Fatalf("%d nodes: %q %v", len(addrs), val, err)
		}
		if catcher.hits.Load() != 0 {
			t.Fatalf("%d nodes: the redirect was followed to %s (%d requests, %d with a token)", len(addrs), evil.URL, catcher.hits.Load(), catcher.tokens.Load())
		}
	}

	// A standby that redirects to a configured node: followed.
	good := newFakeVault(nil)
	goodSrv := startFake(t, good)
	standby := httptest.NewServer(&redirector{target: goodSrv.URL})
	t.Cleanup(standby.Close)
	v := newTestVault(t, VaultConfig{Address: standby.URL + "," + goodSrv.URL, Token: "hvs.root-TOKEN", Timeout: 2 * time.Second}, nil)
	val, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
	if err != nil || string(val) != "image-key-v1-SECRET" {
		t.Fatalf("redirect to a configured node: %q %v", val, err)
	}
}

// TestVaultNodesAllDownNamesThem: when every node fails until the deadline,
// the error is ErrUnavailable, names every node tried and why, and holds no
// credential.
func TestVaultNodesAllDownNamesThem(t *testing.T) {
	sealed := newFakeVault(nil)
	sealed.sealed = true
	standby := newFakeVault(nil)
	standby.status["occlum/1/image_key"] = 500
	sealedSrv, standbySrv := startFake(t, sealed), startFake(t, standby)
	dead := deadAddr(t)
	v := newTestVault(t, VaultConfig{Address: strings.Join([]string{dead, sealedSrv.URL, standbySrv.URL}, ","), Token: "hvs.root-TOKEN", Timeout: 400 * time.Millisecond}, nil)
	begin := time.Now()
	_, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
	checkStoreErr(t, err, ErrUnavailable, "k", "occlum/1/image_key", []string{"hvs.root-TOKEN"})
	msg := err.Error()
	for _, want := range []string{dead + ": connection refused", sealedSrv.URL + ": HTTP 503", standbySrv.URL + ": HTTP 500"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q: %s", want, msg)
		}
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("Get took %v with a 400ms timeout", d)
	}
	var se *Error
	if errors.As(err, &se) && se.Status != 0 && se.Status < 500 {
		t.Errorf("status %d", se.Status)
	}
	v = newTestVault(t, VaultConfig{Address: dead + "," + sealedSrv.URL, Token: "hvs.root-TOKEN", Timeout: 400 * time.Millisecond}, nil)
	err = v.Check(context.Background())
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no healthy node") || !strings.Contains(err.Error(), sealedSrv.URL+" is sealed") {
		t.Fatalf("Check: %v", err)
	}
}

// TestVaultNodesConfigErrors: every address of a list is checked as a
// single one is.
func TestVaultNodesConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  VaultConfig
		want string
	}{
		{VaultConfig{Address: "http://127.0.0.1:1,http://vault.example:8200"}, "plain http to a non-loopback host"},
		{VaultConfig{Address: "http://127.0.0.1:1", Addresses: []string{"ftp://127.0.0.1:2"}}, "scheme must be https or http"},
		{VaultConfig{Address: "http://127.0.0.1:1,,http://127.0.0.1:2"}, "not a URL"},
		{VaultConfig{Address: "http://127.0.0.1:1,http://127.0.0.1:1/"}, "given twice"},
		{VaultConfig{Address: "http://127.0.0.1:1,http://u:p@127.0.0.1:2"}, "credentials in the URL"},
		{VaultConfig{Addresses: []string{"http://127.0.0.1:1?x=1"}}, "no query or fragment"},
	} {
		_, err := NewVault(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	v, err := NewVault(VaultConfig{Address: " http://127.0.0.1:1 , http://localhost:2/"})
	if err != nil || v.Address() != "http://127.0.0.1:1,http://localhost:2" {
		t.Fatalf("%v %v", v, err)
	}
}

// TestAttack_VaultStalledNodeDoesNotStallReads: a node that accepts
// connections and never answers (a partition, a hung process) must not
// take the whole deadline: the next node is tried in time, and Check
// passes on the healthy node.
func TestAttack_VaultStalledNodeDoesNotStallReads(t *testing.T) {
	stalled, good := newFakeVault(nil), newFakeVault(nil)
	stalled.hang = true
	s1, s2 := startFake(t, stalled), startFake(t, good)
	v := newTestVault(t, VaultConfig{Address: s1.URL + "," + s2.URL, Token: "hvs.root-TOKEN", Timeout: 2 * time.Second}, nil)
	val, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
	if err != nil || string(val) != "image-key-v1-SECRET" {
		t.Fatalf("with the first node stalled: %q %v", val, err)
	}
	v = newTestVault(t, VaultConfig{Address: s1.URL + "," + s2.URL, Token: "hvs.root-TOKEN", Timeout: 2 * time.Second}, nil)
	if err := v.Check(context.Background()); err != nil {
		t.Fatalf("Check with the first node stalled: %v", err)
	}
}

// FuzzVaultAddrs: whatever the address list, NewVault either refuses it or
// every node it keeps is an http(s) URL with a host, no credentials, query
// or fragment, plain http only to a loopback host, and no node twice.
func FuzzVaultAddrs(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8200", "https://a:1,https://b:2", "http://127.0.0.1:1,http://vault.example:2",
		"https://u:p@a:1", "https://a:1?x#y", " http://[::1]:8200/ , https://a/b/", "http://localhost:1,http://LOCALHOST:1", ",", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		v, err := NewVault(VaultConfig{Address: addr, Timeout: time.Second})
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, n := range v.nodes {
			u := n.url
			if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
				t.Fatalf("%q: kept node %q", addr, n.addr)
			}
			if u.Scheme == "http" && !isLoopback(u.Hostname()) {
				t.Fatalf("%q: plain http to %q", addr, u.Hostname())
			}
			if seen[n.addr] {
				t.Fatalf("%q: node %q twice", addr, n.addr)
			}
			seen[n.addr] = true
		}
		if len(v.nodes) == 0 || v.Address() == "" {
			t.Fatalf("%q: no node", addr)
		}
	})
}

// TestVaultNodesAppRoleLoginOnAnotherNode: an AppRole login that a node
// refuses with 503 (sealed, standby without a leader) or 429 is made on
// the next node; a login refused with 400 (wrong credentials) is a verdict
// and is not tried elsewhere.
func TestVaultNodesAppRoleLoginOnAnotherNode(t *testing.T) {
	for _, tc := range []struct {
		status int
		ok     bool
	}{{503, true}, {429, true}, {400, false}} {
		first, second := newFakeVault(nil), newFakeVault(nil)
		first.loginStatus = tc.status
		s1, s2 := startFake(t, first), startFake(t, second)
		v := newTestVault(t, VaultConfig{Address: s1.URL + "," + s2.URL, AppRole: &AppRole{RoleID: "role-ID-1", SecretID: "secret-ID-SECRET"}, Timeout: 2 * time.Second}, nil)
		val, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
		second.mu.Lock()
		logins := second.logins
		second.mu.Unlock()
		if tc.ok {
			if err != nil || string(val) != "image-key-v1-SECRET" || logins != 1 {
				t.Fatalf("login refused with %d by the first node: %q %v, %d logins on the second", tc.status, val, err, logins)
			}
			continue
		}
		checkStoreErr(t, err, ErrPermissionDenied, "k", "", []string{"secret-ID-SECRET"})
		if logins != 0 {
			t.Fatalf("a 400 login was retried on the second node")
		}
	}
}
