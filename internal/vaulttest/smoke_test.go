package vaulttest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
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

// TestClusterSmoke: three raft voters and one leader; a write on the leader
// is read on every standby (request forwarding); SIGKILL of the leader
// elects a new one with the data intact; the killed node rejoins; a sealed
// standby serves nothing until unsealed.
func TestClusterSmoke(t *testing.T) {
	c := StartCluster(t, 3)
	t.Logf("cluster of 3 ready in %v", c.Started)
	leader := c.WaitLeader(t, 20*time.Second, -1)
	servers, err := c.RaftConfiguration(leader)
	if err != nil {
		t.Fatal(err)
	}
	voters, leaders := 0, 0
	for _, s := range servers {
		if s.Voter {
			voters++
		}
		if s.Leader {
			leaders++
		}
	}
	if len(servers) != 3 || voters != 3 || leaders != 1 {
		t.Fatalf("raft configuration %+v: want 3 voters, 1 leader", servers)
	}

	// write retries 5xx for a while: on a loaded machine raft may change
	// leaders at any moment (1 s timeouts), which is not what this checks.
	write := func(i int, v string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, b, err := c.Nodes[i].Do(http.MethodPost, "secret/data/foo", map[string]any{"data": map[string]string{"k": v}})
			if err == nil && code == http.StatusOK {
				return
			}
			if time.Now().After(deadline) || (err == nil && code < 500) {
				t.Fatalf("write on node %d: %d %s %v", i, code, b, err)
			}
			t.Logf("write on node %d: %d %s %v (retrying)", i, code, b, err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	read := func(i int) (int, string) {
		t.Helper()
		code, b, err := c.Nodes[i].Do(http.MethodGet, "secret/data/foo", nil)
		if err != nil {
			return 0, err.Error()
		}
		var r struct {
			Data struct {
				Data map[string]string `json:"data"`
			} `json:"data"`
		}
		_ = json.Unmarshal(b, &r)
		if code != http.StatusOK {
			t.Logf("GET secret/data/foo on node %d: %d %s", i, code, b)
		}
		return code, r.Data.Data["k"]
	}
	write(leader, "v1")
	for i := range c.Nodes {
		if code, v := read(i); code != http.StatusOK || v != "v1" {
			t.Fatalf("read on node %d (leader %d): %d %q", i, leader, code, v)
		}
	}

	killed := leader
	begin := time.Now()
	c.Nodes[killed].Kill()
	leader = c.WaitLeader(t, 20*time.Second, killed)
	t.Logf("new leader %s %v after SIGKILL of %s", c.Nodes[leader].Addr, time.Since(begin), c.Nodes[killed].Addr)
	for i := range c.Nodes {
		if i == killed {
			continue
		}
		if code, v := read(i); code != http.StatusOK || v != "v1" {
			t.Fatalf("after the kill, read on node %d: %d %q", i, code, v)
		}
	}
	write(leader, "v2")
	c.StartNode(t, killed)
	c.WaitReady(t, 30*time.Second)
	if code, v := read(killed); code != http.StatusOK || v != "v2" {
		t.Fatalf("restarted node: %d %q", code, v)
	}

	standby := (leader + 1) % 3
	c.SealNode(t, standby)
	if code, _ := read(standby); code != http.StatusServiceUnavailable {
		t.Fatalf("sealed node answered %d, want 503", code)
	}
	c.UnsealNode(t, standby)
	c.WaitReady(t, 30*time.Second)
	if code, v := read(standby); code != http.StatusOK || v != "v2" {
		t.Fatalf("unsealed node: %d %q", code, v)
	}
}
