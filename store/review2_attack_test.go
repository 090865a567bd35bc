package store

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
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
