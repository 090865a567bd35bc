package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// baoNode is one OpenBao node (vaultdev in raft mode) of the cluster.
type baoNode struct {
	proc
	bin                string
	port, clusterPort  int
	dir, keyFile, join string
	addr               string
}

// bao is a 3-node OpenBao raft cluster on loopback.
type bao struct {
	nodes  []*baoNode
	token  string
	unseal string
}

func (n *baoNode) startNode(sealed bool) error {
	n.args = []string{n.bin, "-raft", "-port", strconv.Itoa(n.port), "-cluster-port", strconv.Itoa(n.clusterPort),
		"-storage-dir", n.dir, "-node-id", filepath.Base(n.dir), "-key-file", n.keyFile}
	if n.join != "" {
		n.args = append(n.args, "-join", n.join)
	}
	if sealed {
		n.args = append(n.args, "-sealed")
	}
	// vaultdev prints one JSON ready line on stdout; it goes to the log,
	// so read it from there.
	before := 0
	if b, err := os.ReadFile(n.log); err == nil {
		before = len(b)
	}
	if err := n.start(); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(n.log)
		for _, line := range strings.Split(string(b[min(before, len(b)):]), "\n") {
			var rl struct {
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rl) == nil && rl.Addr != "" {
				n.addr = rl.Addr
				return nil
			}
		}
		if n.pid() == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not start", n.name)
}

// startBao starts the cluster: node 1 initialises it, the others join
// with the shared unseal key; it returns once all are voters and one is
// active.
func startBao(bin, work string) (*bao, error) {
	b := &bao{}
	keyFile := filepath.Join(work, "bao.key")
	for i := range 3 {
		n := &baoNode{bin: bin, port: freePort(), clusterPort: freePort(), dir: filepath.Join(work, fmt.Sprintf("bao%d", i+1)), keyFile: keyFile}
		n.proc = proc{name: fmt.Sprintf("openbao%d", i+1), log: filepath.Join(work, fmt.Sprintf("openbao%d.log", i+1))}
		n.addr = fmt.Sprintf("http://127.0.0.1:%d", n.port)
		if i > 0 {
			n.join = b.nodes[0].addr
		}
		if err := n.startNode(false); err != nil {
			b.kill()
			return nil, err
		}
		b.nodes = append(b.nodes, n)
	}
	var st struct {
		RootToken string `json:"root_token"`
		UnsealKey []byte `json:"unseal_key"`
	}
	raw, err := os.ReadFile(keyFile)
	if err == nil {
		err = json.Unmarshal(raw, &st)
	}
	if err != nil {
		b.kill()
		return nil, fmt.Errorf("cluster key file: %w", err)
	}
	b.token = st.RootToken
	b.unseal = base64Std(st.UnsealKey)
	if _, err := b.waitReady(60 * time.Second); err != nil {
		b.kill()
		return nil, err
	}
	return b, nil
}

func (b *bao) kill() {
	for _, n := range b.nodes {
		n.signal(syscall.SIGKILL)
	}
}

func (b *bao) addrs() []string {
	var a []string
	for _, n := range b.nodes {
		a = append(a, n.addr)
	}
	return a
}

// do calls node n with the root token; code 0 and an error when there is
// no answer.
func (b *bao) do(n *baoNode, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = strings.NewReader(string(j))
	}
	req, _ := http.NewRequest(method, n.addr+"/v1/"+path, r)
	req.Header.Set("X-Vault-Token", b.token)
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, out, err
}

// write stores a KV v2 secret through any node (retrying 5xx for a while:
// the cluster may be electing).
func (b *bao) write(path string, data map[string]string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, n := range b.nodes {
			code, out, err := b.do(n, http.MethodPost, "secret/data/"+path, map[string]any{"data": data})
			if err == nil && code/100 == 2 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("write %s: %d %s %v", path, code, out, err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leader returns the active node, or nil: the running node that says
// is_self and that every other running node names.
func (b *bao) leader() *baoNode {
	var self *baoNode
	named := map[string]bool{}
	for _, n := range b.nodes {
		if n.pid() == 0 {
			continue
		}
		code, out, err := b.do(n, http.MethodGet, "sys/leader", nil)
		if err != nil || code != http.StatusOK {
			continue
		}
		var st struct {
			IsSelf        bool   `json:"is_self"`
			LeaderAddress string `json:"leader_address"`
		}
		if json.Unmarshal(out, &st) != nil {
			continue
		}
		if st.IsSelf {
			if self != nil {
				return nil
			}
			self = n
		}
		if st.LeaderAddress != "" {
			named[st.LeaderAddress] = true
		}
	}
	if self == nil || len(named) != 1 || !named[self.addr] {
		return nil
	}
	return self
}

// waitLeader waits for an active node other than not (nil: any) that
// serves a KV read.
func (b *bao) waitLeader(not *baoNode, limit time.Duration) (*baoNode, time.Duration, error) {
	start := time.Now()
	for time.Since(start) < limit {
		if l := b.leader(); l != nil && l != not {
			if code, _, err := b.do(l, http.MethodGet, "secret/data/chaos/demo", nil); err == nil && code == http.StatusOK {
				return l, time.Since(start), nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return nil, time.Since(start), fmt.Errorf("no new OpenBao leader after %v", limit)
}

// waitReady waits until every node is running and unsealed, all three are
// raft voters and every node names the active one.
func (b *bao) waitReady(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var err error
	for time.Since(start) < limit {
		if err = b.ready(); err == nil {
			return time.Since(start), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("OpenBao cluster not ready after %v: %v", limit, err)
}

func (b *bao) ready() error {
	for _, n := range b.nodes {
		code, out, err := b.do(n, http.MethodGet, "sys/seal-status", nil)
		if err != nil || code != http.StatusOK || !strings.Contains(string(out), `"sealed":false`) {
			return fmt.Errorf("%s sealed or down", n.name)
		}
	}
	l := b.leader()
	if l == nil {
		return errors.New("no agreed leader")
	}
	code, out, err := b.do(l, http.MethodGet, "sys/storage/raft/configuration", nil)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("raft configuration: %d %v", code, err)
	}
	if c := strings.Count(string(out), `"voter":true`); c != len(b.nodes) {
		return fmt.Errorf("%d voters", c)
	}
	return nil
}

// unsealNode unseals n with the shared key.
func (b *bao) unsealNode(n *baoNode) error {
	code, out, err := b.do(n, http.MethodPut, "sys/unseal", map[string]string{"key": b.unseal})
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("unseal %s: %d %s %v", n.name, code, out, err)
	}
	return nil
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
