package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asps-project/asps/internal/vaulttest"
)

// Tests against a real OpenBao raft cluster of three nodes
// (internal/vaulttest.StartCluster; skipped with a message when no
// vaultdev binary is available, see ASPS_VAULTDEV_BIN).

// clusterDo calls the cluster through node i with the root token and fails
// the test unless the answer is 2xx. It retries 5xx for a while: on a
// loaded machine raft may change leaders at any time.
func clusterDo(t *testing.T, c *vaulttest.Cluster, i int, method, path string, body any) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, b, err := c.Nodes[i].Do(method, path, body)
		if err == nil && code/100 == 2 {
			return b
		}
		if time.Now().After(deadline) || (err == nil && code < 500) {
			t.Fatalf("%s %s on node %d: %d %s %v", method, path, i, code, b, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterSecrets writes n KV v2 secrets app<i> with distinct values and
// returns a token of a policy that reads them (not the root token).
func clusterSecrets(t *testing.T, c *vaulttest.Cluster, leader, n int) (token string, values []string) {
	t.Helper()
	for i := 0; i < n; i++ {
		val := fmt.Sprintf("value-%d-%d", i, time.Now().UnixNano())
		clusterDo(t, c, leader, http.MethodPost, fmt.Sprintf("secret/data/app%d", i), map[string]any{"data": map[string]string{"key": val}})
		values = append(values, val)
	}
	clusterDo(t, c, leader, http.MethodPut, "sys/policies/acl/apps", map[string]any{"policy": `path "secret/data/app*" { capabilities = ["read"] }`})
	b := clusterDo(t, c, leader, http.MethodPost, "auth/token/create", map[string]any{"policies": []string{"apps"}, "ttl": "1h"})
	return jsonPath(t, b, "auth", "client_token"), values
}

func jsonPath(t *testing.T, b []byte, keys ...string) string {
	t.Helper()
	var m any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	for _, k := range keys {
		mm, ok := m.(map[string]any)
		if !ok {
			t.Fatalf("no %q in %s", k, b)
		}
		m = mm[k]
	}
	s, ok := m.(string)
	if !ok {
		t.Fatalf("%v in %s: not a string", keys, b)
	}
	return s
}

// TestAttack_VaultLeaderKilledDuringProvisioning: clients read secrets in a
// loop while the active OpenBao node is SIGKILLed. Every Get returns the
// right value or, within its deadline, a retryable (ErrUnavailable) store
// error — never a wrong value, never a verdict; once a new leader is
// elected, all succeed.
func TestAttack_VaultLeaderKilledDuringProvisioning(t *testing.T) {
	c := vaulttest.StartCluster(t, 3)
	t.Logf("cluster of 3 ready in %v", c.Started)
	leader := c.WaitLeader(t, 20*time.Second, -1)
	token, values := clusterSecrets(t, c, leader, 4)

	const timeout = 8 * time.Second
	v := newTestVault(t, VaultConfig{Address: strings.Join(c.Addrs(), ","), Token: token, KVVersion: 2, Timeout: timeout}, nil)

	var (
		ok, failed atomic.Int64
		maxLat     atomic.Int64
		mu         sync.Mutex
		problems   []string
	)
	report := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	get := func(i int) {
		begin := time.Now()
		val, err := v.Get(context.Background(), Request{Name: fmt.Sprintf("s%d", i), Ref: fmt.Sprintf("secret/app%d", i)})
		lat := time.Since(begin)
		for {
			m := maxLat.Load()
			if int64(lat) <= m || maxLat.CompareAndSwap(m, int64(lat)) {
				break
			}
		}
		switch {
		case err == nil && string(val) == values[i]:
			ok.Add(1)
		case err == nil:
			report("app%d: WRONG value %q", i, val)
		case !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrPermissionDenied):
			report("app%d: not a retryable error: %v", i, err)
		case lat > timeout+2*time.Second:
			report("app%d: failed after %v, past its deadline: %v", i, lat, err)
		default:
			failed.Add(1)
			t.Logf("app%d: retryable failure after %v: %v", i, lat, err)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := w; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				get(n % len(values))
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	before := ok.Load()
	killed := leader
	begin := time.Now()
	c.Nodes[killed].Kill()
	leader = c.WaitLeader(t, 30*time.Second, killed)
	election := time.Since(begin)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("SIGKILL of the leader %s: new leader %s after %v; %d Gets ok (%d before the kill), %d retryable failures, slowest Get %v",
		c.Nodes[killed].Addr, c.Nodes[leader].Addr, election, ok.Load(), before, failed.Load(), time.Duration(maxLat.Load()))
	if len(problems) > 0 {
		t.Fatalf("during the failover:\n%s", strings.Join(problems, "\n"))
	}
	if before == 0 || ok.Load() == before {
		t.Fatalf("no successful Get before (%d) or after the kill (%d)", before, ok.Load())
	}
	// After the election, every Get succeeds (the dead node stays in the
	// list and is skipped).
	for i := range values {
		val, err := v.Get(context.Background(), Request{Name: "s", Ref: fmt.Sprintf("secret/app%d", i)})
		if err != nil || string(val) != values[i] {
			t.Fatalf("after the election, app%d: %q %v", i, val, err)
		}
	}
}

// TestAttack_VaultNodeSealedServesNothing: a sealed node releases nothing
// (a store that knows only it fails closed, ErrUnavailable "sealed"), and a
// store that knows the cluster skips it, first in the list or not; once
// unsealed it serves again.
func TestAttack_VaultNodeSealedServesNothing(t *testing.T) {
	c := vaulttest.StartCluster(t, 3)
	leader := c.WaitLeader(t, 20*time.Second, -1)
	token, values := clusterSecrets(t, c, leader, 1)
	standby := (leader + 1) % 3
	c.SealNode(t, standby)

	only := newTestVault(t, VaultConfig{Address: c.Nodes[standby].Addr, Token: token, KVVersion: 2, Timeout: 3 * time.Second}, nil)
	val, err := only.Get(context.Background(), Request{Name: "s", Ref: "secret/app0"})
	checkStoreErr(t, err, ErrUnavailable, "s", "secret/app0", []string{token})
	if val != nil || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("sealed node: %q %v", val, err)
	}
	if err := only.Check(context.Background()); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "is sealed") {
		t.Fatalf("Check of the sealed node: %v", err)
	}

	addrs := []string{c.Nodes[standby].Addr}
	for i, s := range c.Nodes {
		if i != standby {
			addrs = append(addrs, s.Addr)
		}
	}
	v := newTestVault(t, VaultConfig{Address: strings.Join(addrs, ","), Token: token, KVVersion: 2, Timeout: 8 * time.Second}, nil)
	for range 3 {
		val, err = v.Get(context.Background(), Request{Name: "s", Ref: "secret/app0"})
		if err != nil || string(val) != values[0] {
			t.Fatalf("with a sealed node first: %q %v", val, err)
		}
	}
	if err := v.Check(context.Background()); err != nil {
		t.Fatalf("Check of the cluster: %v", err)
	}

	c.UnsealNode(t, standby)
	c.WaitReady(t, 30*time.Second)
	val, err = only.Get(context.Background(), Request{Name: "s", Ref: "secret/app0"})
	if err != nil || string(val) != values[0] {
		t.Fatalf("the node once unsealed: %q %v", val, err)
	}
}

// TestVaultAppRoleAcrossLeaderChange: the AppRole token of the store stays
// in use across a leader change (raft replicates tokens: no new login), is
// renewed on the new leader, and a store whose first node is dead logs in
// on another one.
func TestVaultAppRoleAcrossLeaderChange(t *testing.T) {
	c := vaulttest.StartCluster(t, 3)
	leader := c.WaitLeader(t, 20*time.Second, -1)
	_, values := clusterSecrets(t, c, leader, 1)
	clusterDo(t, c, leader, http.MethodPost, "sys/auth/approle", map[string]any{"type": "approle"})
	clusterDo(t, c, leader, http.MethodPost, "auth/approle/role/asps", map[string]any{
		"token_policies": []string{"apps"}, "token_ttl": "1h", "token_max_ttl": "24h",
	})
	roleID := jsonPath(t, clusterDo(t, c, leader, http.MethodGet, "auth/approle/role/asps/role-id", nil), "data", "role_id")
	secretID := jsonPath(t, clusterDo(t, c, leader, http.MethodPost, "auth/approle/role/asps/secret-id", nil), "data", "secret_id")

	clock := newFakeClock()
	cfg := VaultConfig{Address: strings.Join(c.Addrs(), ","), AppRole: &AppRole{RoleID: roleID, SecretID: secretID}, KVVersion: 2, Timeout: 10 * time.Second}
	v := newTestVault(t, cfg, clock)
	get := func(when string) {
		t.Helper()
		val, err := v.Get(context.Background(), Request{Name: "s", Ref: "secret/app0"})
		if err != nil || string(val) != values[0] {
			t.Fatalf("%s: %q %v", when, val, err)
		}
	}
	get("first")
	tok := v.auth.current()
	if tok == "" {
		t.Fatal("no AppRole token after the first Get")
	}

	killed := leader
	c.Nodes[killed].Kill()
	c.WaitLeader(t, 30*time.Second, killed)
	get("after the leader change")
	if v.auth.current() != tok {
		t.Fatal("logged in again after the leader change although the token was valid")
	}

	// Past two thirds of the TTL: renewed (same token, later expiry) on
	// the new leader.
	v.auth.mu.Lock()
	expBefore := v.auth.expires
	v.auth.mu.Unlock()
	clock.Advance(50 * time.Minute)
	get("after renewal")
	v.auth.mu.Lock()
	expAfter := v.auth.expires
	v.auth.mu.Unlock()
	if v.auth.current() != tok || !expAfter.After(expBefore) {
		t.Fatalf("not renewed: same token %v, expiry %v -> %v", v.auth.current() == tok, expBefore, expAfter)
	}

	// A new store whose first node is the dead one logs in on another.
	addrs := []string{c.Nodes[killed].Addr}
	for i, s := range c.Nodes {
		if i != killed {
			addrs = append(addrs, s.Addr)
		}
	}
	cfg.Address = strings.Join(addrs, ",")
	v2 := newTestVault(t, cfg, nil)
	if err := v2.Check(context.Background()); err != nil {
		t.Fatalf("Check with the first node dead: %v", err)
	}
	if v2.auth.current() == "" || v2.auth.current() == tok {
		t.Fatal("no new login for the new store")
	}
}
