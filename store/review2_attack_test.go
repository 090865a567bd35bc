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
