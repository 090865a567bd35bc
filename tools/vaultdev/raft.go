package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	log "github.com/hashicorp/go-hclog"
	"github.com/openbao/openbao/helper/namespace"
	"github.com/openbao/openbao/physical/raft"
	"github.com/openbao/openbao/sdk/v2/logical"
	"github.com/openbao/openbao/vault"
)

// raftConf is the raft-mode configuration of one node.
type raftConf struct {
	clusterAddr *net.TCPAddr
	nodeID      string
	join        []string // API addresses to join (uninitialised node only)
	keyFile     string   // the shared root token and unseal key
}

// newRaftConf resolves the cluster port and node ID (remembered in dir for
// restarts) and checks the join addresses.
func newRaftConf(dir string, port int, nodeID, join, keyFile string) (*raftConf, error) {
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		return nil, err
	}
	portFile := filepath.Join(dir, "cluster.port")
	if port == 0 {
		if b, err := os.ReadFile(portFile); err == nil {
			port, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	if port == 0 {
		// A free port now; the core binds it at the first unseal.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cluster port: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("-cluster-port %d: out of range", port)
	}
	if err := os.WriteFile(portFile, []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
		return nil, err
	}
	idFile := filepath.Join(dir, "node.id")
	if nodeID == "" {
		if b, err := os.ReadFile(idFile); err == nil {
			nodeID = strings.TrimSpace(string(b))
		}
	}
	if nodeID == "" {
		nodeID = "node-" + strconv.Itoa(port)
	}
	if err := os.WriteFile(idFile, []byte(nodeID+"\n"), 0o600); err != nil {
		return nil, err
	}
	rc := &raftConf{
		clusterAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port},
		nodeID:      nodeID,
		keyFile:     keyFile,
	}
	if rc.keyFile == "" {
		rc.keyFile = filepath.Join(dir, "unseal.key")
	}
	for _, a := range strings.Split(join, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("-join %q: not an http(s) address", a)
		}
		rc.join = append(rc.join, strings.TrimSuffix(a, "/"))
	}
	return rc, nil
}

// setupRaft initialises and bootstraps the first node, joins a new node to
// the cluster, or unseals a restarted one (unless staySealed). It returns
// the root token and the unseal key.
func setupRaft(core *vault.Core, rc *raftConf, dir, rootToken, kvVersion string, staySealed bool, logger log.Logger) (string, []byte, error) {
	ctx := namespace.RootContext(context.Background())
	ownKeyFile := filepath.Join(dir, "unseal.key")

	inited, err := core.InitializedLocally(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("initialized: %w", err)
	}
	switch {
	case inited:
		// A restart: raft state on disk; unsealing starts raft, which
		// finds the cluster at the addresses of its configuration.
		st, err := readKeyFile(ownKeyFile)
		if err != nil {
			return "", nil, fmt.Errorf("storage dir already initialised but unseal key unreadable: %w", err)
		}
		if !staySealed {
			if err := unseal(core, st.UnsealKey); err != nil {
				return "", nil, err
			}
		}
		return st.RootToken, st.UnsealKey, nil

	case len(rc.join) > 0:
		st, err := readKeyFile(rc.keyFile)
		if err != nil {
			return "", nil, fmt.Errorf("joining needs the cluster's unseal key: %w", err)
		}
		var infos []*raft.LeaderJoinInfo
		for _, a := range rc.join {
			infos = append(infos, &raft.LeaderJoinInfo{LeaderAPIAddr: a})
		}
		// Without Retry, JoinRaftCluster fetches the leader's challenge
		// and leaves the answer to the unseal (Shamir), as
		// `bao operator raft join` followed by `bao operator unseal`.
		deadline := time.Now().Add(60 * time.Second)
		for {
			jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = core.JoinRaftCluster(jctx, infos, false)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return "", nil, fmt.Errorf("join %s: %w", strings.Join(rc.join, ","), err)
			}
			logger.Warn("raft join failed, retrying", "error", err)
			time.Sleep(500 * time.Millisecond)
		}
		// The unseal sends the answer; the node then unseals in the
		// background once the leader has streamed it the keyring.
		if _, err := core.Unseal(append([]byte(nil), st.UnsealKey...)); err != nil {
			return "", nil, fmt.Errorf("join %s: unseal: %w", strings.Join(rc.join, ","), err)
		}
		if err := waitUnsealed(core, 60*time.Second); err != nil {
			return "", nil, fmt.Errorf("join %s: %w", strings.Join(rc.join, ","), err)
		}
		if rc.keyFile != ownKeyFile {
			if err := writeKeyFile(ownKeyFile, st); err != nil {
				return "", nil, err
			}
		}
		return st.RootToken, st.UnsealKey, nil
	}

	// The first node: Initialize bootstraps raft with this node as the only
	// voter; it becomes active once unsealed.
	key, initRoot, err := initialise(ctx, core)
	if err != nil {
		return "", nil, err
	}
	if err := waitActive(core, 60*time.Second); err != nil {
		return "", nil, err
	}
	token, err := provision(ctx, core, initRoot, rootToken, kvVersion)
	if err != nil {
		return "", nil, err
	}
	// Autopilot promotes a joined node to voter once it has been healthy
	// this long (default 10 s).
	resp, err := core.HandleRequest(ctx, &logical.Request{
		Operation:   logical.UpdateOperation,
		ClientToken: token,
		Path:        "sys/storage/raft/autopilot/configuration",
		Data:        map[string]interface{}{"server_stabilization_time": "1s"},
	})
	if err := respErr(resp, err); err != nil {
		return "", nil, fmt.Errorf("autopilot configuration: %w", err)
	}
	st := stored{RootToken: token, UnsealKey: key}
	if err := writeKeyFile(ownKeyFile, st); err != nil {
		return "", nil, err
	}
	if rc.keyFile != ownKeyFile {
		if err := writeKeyFile(rc.keyFile, st); err != nil {
			return "", nil, err
		}
	}
	return token, key, nil
}

// waitUnsealed waits until core is unsealed.
func waitUnsealed(core *vault.Core, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for core.Sealed() {
		if time.Now().After(deadline) {
			return errors.New("the node is still sealed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// waitActive waits until core is the active node.
func waitActive(core *vault.Core, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if standby, _ := core.Standby(); !standby && !core.Sealed() {
			if leader, _, _, err := core.Leader(); err == nil && leader {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the node did not become active in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
