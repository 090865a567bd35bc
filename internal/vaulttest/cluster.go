package vaulttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is an OpenBao cluster on loopback: vaultdev nodes in raft mode
// (integrated storage), joined, unsealed, one of them active.
//
//	c := vaulttest.StartCluster(t, 3)
//	leader := c.WaitLeader(t, 20*time.Second, -1)
//	c.Nodes[leader].Kill()
//
// Every node keeps its API and cluster ports across Kill/Stop and
// StartAgain, so client address lists stay valid. Standbys forward requests
// to the active node; RootToken and UnsealKey are shared.
type Cluster struct {
	Nodes     []*Server
	RootToken string
	UnsealKey string
	// Started is how long StartCluster took until the cluster was ready
	// (all nodes voters, one leader).
	Started time.Duration
}

// ClusterReadyTimeout bounds StartCluster and the waits of this file's
// helpers when the caller gives none.
const ClusterReadyTimeout = 60 * time.Second

// StartCluster starts n raft nodes: the first one initialises the cluster,
// the others join it with the shared unseal key. It returns once all n are
// unsealed voters and one of them is active. Shutdown is registered with
// t.Cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("vaulttest: StartCluster(%d)", n)
	}
	bin := mustBinary(t)
	if !supportsRaft(bin) {
		msg := fmt.Sprintf("vaulttest: %s predates raft mode (no -raft flag): rebuild it with tools/vaultdev/build.sh", bin)
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "cluster.key")
	begin := time.Now()
	c := &Cluster{}
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	for i := 0; i < n; i++ {
		s := newServer(t, bin, filepath.Join(dir, fmt.Sprintf("node%d", i+1)))
		s.port = ports[2*i]
		s.raftArgs = []string{"-raft", "-cluster-port", strconv.Itoa(ports[2*i+1]),
			"-node-id", fmt.Sprintf("node%d", i+1), "-key-file", keyFile}
		c.Nodes = append(c.Nodes, s)
	}
	if err := c.Nodes[0].start(c.Nodes[0].port, false); err != nil {
		t.Fatalf("vaulttest: first node: %v", err)
	}
	c.RootToken, c.UnsealKey = c.Nodes[0].RootToken, c.Nodes[0].UnsealKey
	// Joins go to the first node; the others start in parallel.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 1; i < n; i++ {
		s := c.Nodes[i]
		s.raftArgs = append(s.raftArgs, "-join", c.Nodes[0].Addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.start(s.port, false)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("vaulttest: joining nodes: %v", err)
	}
	if err := c.waitReady(ClusterReadyTimeout); err != nil {
		t.Fatalf("vaulttest: cluster: %v", err)
	}
	c.Started = time.Since(begin)
	return c
}

// supportsRaft reports whether bin knows -raft (its -h lists it).
func supportsRaft(bin string) bool {
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	return strings.Contains(string(out), "-raft")
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Addrs returns the API addresses of all nodes.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, s := range c.Nodes {
		a = append(a, s.Addr)
	}
	return a
}

// LeaderStatus is a node's answer to GET sys/leader.
type LeaderStatus struct {
	HAEnabled     bool   `json:"ha_enabled"`
	IsSelf        bool   `json:"is_self"`
	LeaderAddress string `json:"leader_address"`
}

// NodeLeader asks node i for sys/leader.
func (c *Cluster) NodeLeader(i int) (LeaderStatus, error) {
	var st LeaderStatus
	code, b, err := c.Nodes[i].Do(http.MethodGet, "sys/leader", nil)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("sys/leader at %s: HTTP %d: %s", c.Nodes[i].Addr, code, b)
	}
	err = json.Unmarshal(b, &st)
	return st, err
}

// Leader returns the index of the active node: a running node that says
// is_self and that every other running node that knows a leader names. It
// fails if there is none or the nodes disagree.
func (c *Cluster) Leader() (int, error) {
	leader := -1
	var named []string
	for i, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		st, err := c.NodeLeader(i)
		if err != nil {
			continue // sealed or down: no opinion
		}
		if st.IsSelf {
			if leader >= 0 {
				return -1, fmt.Errorf("two nodes say they are active: %s and %s", c.Nodes[leader].Addr, s.Addr)
			}
			leader = i
		}
		if st.LeaderAddress != "" {
			named = append(named, st.LeaderAddress)
		}
	}
	if leader < 0 {
		return -1, errors.New("no active node")
	}
	for _, a := range named {
		if a != c.Nodes[leader].Addr {
			return -1, fmt.Errorf("nodes disagree on the leader: %s is active, another node names %s", c.Nodes[leader].Addr, a)
		}
	}
	return leader, nil
}

// WaitLeader waits until Leader answers with a node other than not (-1:
// any) and that node serves a KV request, and returns its index. It fails
// the test after timeout.
func (c *Cluster) WaitLeader(t testing.TB, timeout time.Duration, not int) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		var i int
		i, err = c.Leader()
		if err == nil && i != not {
			var code int
			code, _, err = c.Nodes[i].Do(http.MethodGet, "sys/storage/raft/configuration", nil)
			if err == nil && code == http.StatusOK {
				return i
			}
			if err == nil {
				err = fmt.Errorf("active node %s: raft configuration: HTTP %d", c.Nodes[i].Addr, code)
			}
		} else if err == nil {
			err = fmt.Errorf("%s is still the leader", c.Nodes[i].Addr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("vaulttest: no new leader within %v: %v", timeout, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// RaftServer is one entry of sys/storage/raft/configuration.
type RaftServer struct {
	NodeID  string `json:"node_id"`
	Address string `json:"address"`
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}

// RaftConfiguration reads sys/storage/raft/configuration through node i.
func (c *Cluster) RaftConfiguration(i int) ([]RaftServer, error) {
	code, b, err := c.Nodes[i].Do(http.MethodGet, "sys/storage/raft/configuration", nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("raft configuration at %s: HTTP %d: %s", c.Nodes[i].Addr, code, b)
	}
	var r struct {
		Data struct {
			Config struct {
				Servers []RaftServer `json:"servers"`
			} `json:"config"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return r.Data.Config.Servers, nil
}

// WaitReady waits until every node runs unsealed, all are raft voters, one
// is active and every other one names it as the leader.
func (c *Cluster) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := c.waitReady(timeout); err != nil {
		t.Fatalf("vaulttest: cluster not ready: %v", err)
	}
}

func (c *Cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) ready() error {
	for _, s := range c.Nodes {
		if !s.Running() {
			return fmt.Errorf("%s is not running", s.Addr)
		}
		if sealed, err := s.sealed(); err != nil || sealed {
			return fmt.Errorf("%s is sealed or down (%v)", s.Addr, err)
		}
	}
	leader, err := c.Leader()
	if err != nil {
		return err
	}
	// Every standby must know the active node, or it cannot forward
	// ("local node not active but active cluster node not found").
	for i, s := range c.Nodes {
		if st, err := c.NodeLeader(i); err != nil || st.LeaderAddress != c.Nodes[leader].Addr {
			return fmt.Errorf("%s does not know the active node yet (%+v, %v)", s.Addr, st, err)
		}
	}
	servers, err := c.RaftConfiguration(leader)
	if err != nil {
		return err
	}
	voters := 0
	var desc []string
	for _, rs := range servers {
		if rs.Voter {
			voters++
		}
		desc = append(desc, fmt.Sprintf("%s(voter=%v leader=%v)", rs.NodeID, rs.Voter, rs.Leader))
	}
	if voters != len(c.Nodes) {
		return fmt.Errorf("%d voters of %d: %s", voters, len(c.Nodes), strings.Join(desc, " "))
	}
	return nil
}

// sealed asks sys/seal-status.
func (s *Server) sealed() (bool, error) {
	resp, err := httpClient.Get(s.Addr + "/v1/sys/seal-status")
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var st struct {
		Sealed bool `json:"sealed"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return false, err
	}
	return st.Sealed, nil
}

// Sealed reports whether the node is sealed (false if it does not answer).
func (s *Server) Sealed() bool {
	sealed, err := s.sealed()
	return err == nil && sealed
}

// SealNode seals node i. OpenBao seals only the active node through the
// API ("cannot seal when in standby mode; please restart instead"); a
// standby is restarted sealed, as an operator would do.
func (c *Cluster) SealNode(t testing.TB, i int) {
	t.Helper()
	s := c.Nodes[i]
	code, body, err := s.Do(http.MethodPut, "sys/seal", nil)
	if err == nil && code == http.StatusNoContent {
		return
	}
	s.Stop()
	if err := s.StartAgain(true); err != nil {
		t.Fatalf("vaulttest: restart %s sealed (sys/seal said %d %s): %v", s.Addr, code, body, err)
	}
	if !s.Sealed() {
		t.Fatalf("vaulttest: %s is not sealed", s.Addr)
	}
}

// UnsealNode unseals node i and waits until it is unsealed.
func (c *Cluster) UnsealNode(t testing.TB, i int) {
	t.Helper()
	s := c.Nodes[i]
	code, body, err := s.Do(http.MethodPut, "sys/unseal", map[string]string{"key": c.UnsealKey})
	if err != nil || code != http.StatusOK {
		t.Fatalf("vaulttest: unseal %s: %d %s %v", s.Addr, code, body, err)
	}
	deadline := time.Now().Add(ClusterReadyTimeout)
	for s.Sealed() {
		if time.Now().After(deadline) {
			t.Fatalf("vaulttest: %s still sealed", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartNode starts a killed or stopped node again on its ports (unsealed)
// and fails the test if it cannot.
func (c *Cluster) StartNode(t testing.TB, i int) {
	t.Helper()
	if err := c.Nodes[i].StartAgain(false); err != nil {
		t.Fatalf("vaulttest: start node %d again: %v", i, err)
	}
}
