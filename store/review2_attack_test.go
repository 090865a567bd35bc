package store

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoNode answers every request with status and a Vault error message
// that quotes the token it was sent after pad bytes of filler (as a proxy
// or a node logging "permission denied for token ..." may).
type echoNode struct {
	status int
	pad    int
}

func (e echoNode) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	msg := strings.Repeat("x", e.pad) + " " + req.Header.Get("X-Vault-Token") + " rest"
	writeJSON(w, e.status, vaultErrors(msg))
}

// TestAttack_VaultTokenPrefixLeaksThroughTruncatedMessage: Vault's own
// messages are cut to 300 bytes (vaultSays) BEFORE the credentials are
// scrubbed out of them (scrub), so a token that straddles the cut is no
// longer found whole and its first part is returned in the error text —
// on one node (says) and in the multi-node trail ("nodes tried: ...").
func TestAttack_VaultTokenPrefixLeaksThroughTruncatedMessage(t *testing.T) {
	const token = "hvs.CAESIJ1a2b3c4d5e6f7g8h9i0jKLMNOPQRSTUVWXYZabcdefghijk"
	// "x"*pad + " " puts the token at byte pad+1 of the message; a cut at
	// 300 keeps its first 300-(pad+1) bytes.
	const pad = 270
	leaked := token[:300-(pad+1)]
	for _, tc := range []struct {
		name   string
		status int
		nodes  int
	}{
		{"one node, 403", http.StatusForbidden, 1},
		{"two nodes, 500 trail", http.StatusInternalServerError, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []string
			for i := 0; i < tc.nodes; i++ {
				srv := httptest.NewServer(echoNode{status: tc.status, pad: pad})
				t.Cleanup(srv.Close)
				addrs = append(addrs, srv.URL)
			}
			v := newTestVault(t, VaultConfig{Address: strings.Join(addrs, ","), Token: token, Timeout: 700 * time.Millisecond}, nil)
			_, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
			if err == nil {
				t.Fatal("Get succeeded")
			}
			if msg := err.Error(); strings.Contains(msg, leaked) {
				t.Fatalf("error text holds the first %d bytes of the token (%q): %s", len(leaked), leaked, msg)
			}
		})
	}
}

// raceNode is an AppRole Vault: logins hand out hvs.first-TOKEN-still-valid,
// then hvs.second-TOKEN (300 s, not renewable); "occlum/1/slow" waits for
// release, then fails with a 500 whose message quotes the token sent;
// everything else is 404.
type raceNode struct {
	logins  atomic.Int32
	arrived chan struct{}
	release chan struct{}
}

func (n *raceNode) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	tok := req.Header.Get("X-Vault-Token")
	switch {
	case strings.HasSuffix(req.URL.Path, "/auth/approle/login"):
		t := "hvs.first-TOKEN-still-valid"
		if n.logins.Add(1) > 1 {
			t = "hvs.second-TOKEN"
		}
		writeJSON(w, 200, map[string]any{"auth": map[string]any{"client_token": t, "lease_duration": 300, "renewable": false}})
	case strings.HasSuffix(req.URL.Path, "/occlum/1/slow"):
		close(n.arrived)
		<-n.release
		writeJSON(w, 500, vaultErrors("internal error serving request for token "+tok))
	default:
		writeJSON(w, 404, vaultErrors())
	}
}

// TestAttack_VaultAppRoleTokenInFlightNotScrubbed: Get scrubs its error
// texts of the AppRole token current when the error is built
// (v.auth.current()), not of the token the request was actually sent
// with. While a request is on the wire, the store replaces its AppRole
// token (past two thirds of its TTL a concurrent request logs in again;
// a 403 on any path does the same): the slow request's error then quotes
// the first token — still valid at Vault for the rest of its TTL — in
// clear, into the server's logs and audit reasons.
func TestAttack_VaultAppRoleTokenInFlightNotScrubbed(t *testing.T) {
	n := &raceNode{arrived: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { // before srv.Close: never leave the slow handler blocked
		select {
		case <-n.release:
		default:
			close(n.release)
		}
	})
	clock := newFakeClock()
	v := newTestVault(t, VaultConfig{Address: srv.URL, AppRole: &AppRole{RoleID: "role-ID-1", SecretID: "secret-ID-1"}, Timeout: 5 * time.Second}, clock)

	slowErr := make(chan error, 1)
	go func() {
		_, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/slow"})
		slowErr <- err
	}()
	<-n.arrived // the slow request is on the wire with the first token
	clock.Advance(250 * time.Second)
	_, err := v.Get(context.Background(), Request{Name: "o", Ref: "occlum/1/other"})
	if n.logins.Load() != 2 {
		t.Fatalf("other Get: %v after %d logins; want a second login past 2/3 of the TTL", err, n.logins.Load())
	}
	close(n.release)
	err = <-slowErr
	checkStoreErr(t, err, ErrUnavailable, "k", "occlum/1/slow", []string{"hvs.first-TOKEN-still-valid", "secret-ID-1"})
}

// loginCounter is an AppRole Vault whose token may read nothing: every
// read is 403 (a policy denial; the token stays valid), every login
// hands out a new token.
type loginCounter struct{ logins atomic.Int32 }

func (n *loginCounter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if strings.HasSuffix(req.URL.Path, "/auth/approle/login") {
		k := n.logins.Add(1)
		writeJSON(w, 200, map[string]any{"auth": map[string]any{"client_token": "hvs.token-" + strings.Repeat("x", int(k%7)+1), "lease_duration": 3600, "renewable": true}})
		return
	}
	writeJSON(w, 403, vaultErrors("permission denied"))
}

// TestAttack_VaultDeniedPathLogsInOncePerRequest: a 403 on a path the
// AppRole's policy does not cover makes Get drop the AppRole token and log
// in again — on every request. A workload that keeps asking for such a
// name (its app lists a secret the store's role cannot read) turns each of
// its requests into an AppRole login: a token created (a raft write on
// every node of the cluster) and the previous one left valid, never
// revoked, until its TTL; and every other read waits behind the login
// semaphore meanwhile. Re-logins after a 403 must be bounded (the token
// was just issued; a denial of one path says nothing of the token).
func TestAttack_VaultDeniedPathLogsInOncePerRequest(t *testing.T) {
	n := &loginCounter{}
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	v := newTestVault(t, VaultConfig{Address: srv.URL, AppRole: &AppRole{RoleID: "role-ID-1", SecretID: "secret-ID-1"}, Timeout: 5 * time.Second}, newFakeClock())
	const requests = 50
	for i := 0; i < requests; i++ {
		_, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/denied"})
		checkStoreErr(t, err, ErrPermissionDenied, "k", "occlum/1/denied", []string{"secret-ID-1"})
	}
	if got := n.logins.Load(); got > 5 {
		t.Fatalf("%d requests for a denied path made %d AppRole logins (tokens created, none revoked); want a bounded few", requests, got)
	}
}
