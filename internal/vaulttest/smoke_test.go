package vaulttest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestSmoke talks plain net/http to the server: kv v1 mount at occlum/1,
// write, read, seal, unseal, restart.
func TestSmoke(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Addr, "http://127.0.0.1:") || s.RootToken == "" {
		t.Fatalf("bad server %+v", s)
	}

	do := func(method, path, body string, want int) []byte {
		t.Helper()
		req, err := http.NewRequest(method, s.Addr+"/v1/"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Vault-Token", s.RootToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
		}
		return b
	}
	readFoo := func() string {
		t.Helper()
		var r struct {
			Data map[string]string `json:"data"`
		}
		if err := json.Unmarshal(do(http.MethodGet, "occlum/1/foo", "", http.StatusOK), &r); err != nil {
			t.Fatal(err)
		}
		return r.Data["k"]
	}

	do(http.MethodPost, "sys/mounts/occlum/1", `{"type":"kv","options":{"version":"1"}}`, http.StatusNoContent)
	do(http.MethodPost, "occlum/1/foo", `{"k":"v1"}`, http.StatusNoContent)
	if got := readFoo(); got != "v1" {
		t.Fatalf("read %q, want v1", got)
	}
	do(http.MethodPost, "sys/auth/approle", `{"type":"approle"}`, http.StatusNoContent)

	s.Seal()
	do(http.MethodGet, "occlum/1/foo", "", http.StatusServiceUnavailable)
	s.Unseal()
	if got := readFoo(); got != "v1" {
		t.Fatalf("after unseal: read %q, want v1", got)
	}

	addr := s.Addr
	s.RestartSealed()
	do(http.MethodGet, "occlum/1/foo", "", http.StatusServiceUnavailable)
	s.Unseal()
	if got := readFoo(); got != "v1" {
		t.Fatalf("after restart: read %q, want v1", got)
	}
	if s.Addr != addr {
		t.Logf("restart moved the server from %s to %s", addr, s.Addr)
	}
	s.Stop()
	if _, err := http.Get(s.Addr + "/v1/sys/health"); err == nil {
		t.Fatal("server still answers after Stop")
	}
}
