package collateral

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// failingSource fails every document the way an unreachable upstream
// does: the error carries the upstream URL, as configured, and the
// network error.
type failingSource struct{ err func(k Key) error }

func (s failingSource) Document(_ context.Context, k Key) (*Document, error) { return nil, s.err(k) }

// TestAttack_MirrorErrorsTellStrangersTheUpstream: the mirror answers
// anyone, and a failed document used to be answered with the whole error:
// the upstream URL as configured (credentials in its user info or an API
// key in its query included), the upstream's internal address from the
// network error and the upstream's own error text. An anonymous client now
// learns the document and the reason only; the detail stays in the log.
func TestAttack_MirrorErrorsTellStrangersTheUpstream(t *testing.T) {
	const upstream = "https://mirror-user:hunter2@pccs.corp.internal:8081/sgx/certification/v4/tcb?fmspc=00906ED50000&subscription-key=K3Y"
	secrets := []string{"hunter2", "mirror-user", "pccs.corp.internal", "K3Y", "10.9.8.7", "upstream says"}
	for _, tc := range []struct {
		reason error
		status int
	}{
		{ErrUnavailable, http.StatusServiceUnavailable},
		{ErrNotFound, http.StatusNotFound},
		{ErrRefused, http.StatusInternalServerError},
		{ErrRedirect, http.StatusInternalServerError},
		{ErrExpired, http.StatusServiceUnavailable},
	} {
		t.Run(tc.reason.Error(), func(t *testing.T) {
			src := failingSource{func(k Key) error {
				return &Error{Key: k, URL: upstream, Status: 502, Reason: tc.reason, Detail: "upstream says: pccs.corp.internal is down",
					Err: errors.New("dial tcp 10.9.8.7:8081: connect: connection refused")}
			}}
			srv := httptest.NewServer(NewHandlerWithOptions(src, HandlerOptions{ClientBurst: -1}))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/sgx/certification/v4/tcb?fmspc=00906ED50000")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			seen := string(body) + "\n" + resp.Header.Get("Error-Message") + "\n" + resp.Header.Get("Error-Code")
			for _, s := range secrets {
				if strings.Contains(seen, s) {
					t.Errorf("an anonymous client learned %q:\n%s", s, seen)
				}
			}
			if !strings.Contains(string(body), tc.reason.Error()) || !strings.Contains(string(body), "TCB info sgx/00906ED50000") {
				t.Errorf("the answer does not name the document and the reason: %q", body)
			}
		})
	}
}

// TestAttack_UpstreamPasswordInCollateralErrors: a PCCS URL with user info
// (a PCCS behind basic authentication) used to be written whole into every
// collateral error, and so into the log; the password is now redacted as
// net/http redacts it in its own errors.
func TestAttack_UpstreamPasswordInCollateralErrors(t *testing.T) {
	e := &Error{Key: RootCACRLKey(), URL: "https://mirror-user:hunter2@pccs.example:8081/sgx/certification/v4/rootcacrl", Reason: ErrUnavailable}
	if msg := e.Error(); strings.Contains(msg, "hunter2") || !strings.Contains(msg, "pccs.example:8081") {
		t.Fatalf("error text %q", msg)
	}
	if msg := (&Error{URL: "http://[::1", Reason: ErrRefused}).Error(); strings.Contains(msg, "[::1") {
		t.Fatalf("unparsable URL shown: %q", msg)
	}
}

// TestAttack_HostilePCCSErrorTextReachesTerminal: a PCCS's Error-Code and
// Error-Message headers went into the error verbatim and from there to
// `asps collateral fetch`'s output and the log. Header values cannot carry
// C0 controls, but they can carry C1 controls (U+009B is CSI on terminals
// that honour it) and any length; they are now escaped and bounded.
func TestAttack_HostilePCCSErrorTextReachesTerminal(t *testing.T) {
	pccs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Error-Code", "Bad\u009b2J")
		w.Header().Set("Error-Message", "gone\u009b31mACCEPTED\u202e"+strings.Repeat("x", 10000))
		w.WriteHeader(http.StatusNotFound)
	}))
	defer pccs.Close()
	c, err := NewClient(ClientOptions{BaseURL: pccs.URL, AllowHTTP: true, Retries: 0})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Fetch(context.Background(), QEIdentityKey("sgx"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("fetch: %v", err)
	}
	msg := err.Error()
	for i, r := range msg {
		if r < 0x20 || r >= 0x7f {
			t.Fatalf("the error carries %U at byte %d: %q", r, i, msg)
		}
	}
	if len(msg) > 2048 {
		t.Fatalf("the error is %d bytes", len(msg))
	}
	if !strings.Contains(msg, `gone\xc2\x9b31mACCEPTED`) {
		t.Fatalf("the server's message is not shown escaped: %q", msg)
	}
}
