// Command vaultdev runs an in-process OpenBao (Vault API compatible) server
// for integration tests of asps. It is a test tool only: never use it to hold
// real secrets.
//
// It builds an OpenBao core with a minimal set of engines (KV v1/v2 as
// secrets engine "kv", AppRole as auth method "approle"; token auth, policies,
// cubbyhole, identity and sys are part of the core), initialises it with a
// single Shamir unseal key, unseals it, creates a root token with a known ID
// and serves the Vault HTTP API on 127.0.0.1.
//
// Once the server is ready it prints exactly one JSON line on stdout:
//
//	{"addr":"http://127.0.0.1:PORT","root_token":"...","unseal_key":"<base64>"}
//
// and serves until SIGTERM or SIGINT. Logs go to stderr.
//
// Storage is in memory unless -storage-dir is given; with a storage dir the
// unseal key is kept in DIR/unseal.key so that a restarted server (same dir)
// unseals itself and keeps its data, mounts, policies and tokens.
//
// sys/seal works as in any Vault; unseal again with PUT /v1/sys/unseal and
// the printed unseal key. With -sealed a restarted server stays sealed, as a
// real Vault does after a restart.
//
// # Raft (integrated storage) mode
//
// With -raft (and -storage-dir) the node keeps its data in OpenBao's
// integrated storage (physical/raft, which is also the HA backend) and runs
// a cluster listener (TLS, OpenBao's own certificates) on 127.0.0.1:
// -cluster-port (0: a free port, remembered in DIR/cluster.port for
// restarts). Request forwarding from standbys to the active node and raft
// replication go over it. Raft runs with performance_multiplier=1 (the
// fastest timing OpenBao allows: ~1 s heartbeat/election timeouts).
//
//   - The first node (no -join) initialises (Shamir 1/1), bootstraps raft,
//     becomes active, creates the root token and the secret/ mount, and
//     writes the root token and the unseal key to -key-file (default
//     DIR/unseal.key).
//   - A node started with -join http://LEADER:PORT[,http://OTHER:PORT]
//     reads the unseal key from -key-file (the first node's), joins the
//     cluster through the given API addresses and unseals with the shared
//     key; it then keeps its own copy in DIR/unseal.key.
//   - A restart with the same DIR (and the same -cluster-port) rejoins the
//     cluster from its raft state and unseals itself (unless -sealed).
//
// The ready line then also carries "cluster_addr", "node_id" and
// "raft":true.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	log "github.com/hashicorp/go-hclog"
	credAppRole "github.com/openbao/openbao/builtin/credential/approle"
	logicalKv "github.com/openbao/openbao/builtin/logical/kv"
	"github.com/openbao/openbao/helper/namespace"
	vaulthttp "github.com/openbao/openbao/http"
	"github.com/openbao/openbao/internalshared/configutil"
	"github.com/openbao/openbao/physical/raft"
	"github.com/openbao/openbao/sdk/v2/helper/consts"
	"github.com/openbao/openbao/sdk/v2/logical"
	"github.com/openbao/openbao/sdk/v2/physical"
	"github.com/openbao/openbao/sdk/v2/physical/file"
	"github.com/openbao/openbao/sdk/v2/physical/inmem"
	"github.com/openbao/openbao/vault"
)

type readyLine struct {
	Addr        string `json:"addr"`
	RootToken   string `json:"root_token"`
	UnsealKey   string `json:"unseal_key"`
	Version     string `json:"version"`
	Raft        bool   `json:"raft,omitempty"`
	ClusterAddr string `json:"cluster_addr,omitempty"`
	NodeID      string `json:"node_id,omitempty"`
}

const openbaoVersion = "openbao v2.4.0 (f9407a27fbee)"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vaultdev:", err)
		os.Exit(1)
	}
}

func run() error {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0 = random free port)")
	rootToken := flag.String("root-token", "root", "ID of the root token to create")
	storageDir := flag.String("storage-dir", "", "persist storage in this directory (default: in memory)")
	kvVersion := flag.String("default-kv", "2", `mount a "kv" engine of this version at secret/ ("1", "2" or "" for none)`)
	logLevel := flag.String("log-level", "warn", "log level on stderr (trace, debug, info, warn, error)")
	sealed := flag.Bool("sealed", false, "with -storage-dir of an initialised server: stay sealed (like a real Vault restart)")
	stdinEOF := flag.Bool("exit-on-stdin-eof", false, "shut down when stdin reaches EOF (the parent died or closed the pipe)")
	raftMode := flag.Bool("raft", false, "integrated storage (raft) in -storage-dir, with a cluster listener: see the package documentation")
	clusterPort := flag.Int("cluster-port", 0, "raft: cluster listener port on 127.0.0.1 (0 = the one of the last run in this dir, else a free port)")
	nodeID := flag.String("node-id", "", "raft: node ID (default: the one of the last run in this dir, else node-<cluster port>)")
	join := flag.String("join", "", "raft: comma-separated API addresses of cluster members to join (uninitialised node only)")
	keyFile := flag.String("key-file", "", "raft: JSON file with the root token and unseal key (default DIR/unseal.key); written by the first node, read by joining ones")
	flag.Parse()
	if !*raftMode && (*clusterPort != 0 || *nodeID != "" || *join != "" || *keyFile != "") {
		return errors.New("-cluster-port, -node-id, -join and -key-file need -raft")
	}
	if *raftMode && *storageDir == "" {
		return errors.New("-raft needs -storage-dir")
	}

	logger := log.New(&log.LoggerOptions{
		Name:   "vaultdev",
		Level:  log.LevelFromString(*logLevel),
		Output: os.Stderr,
	})

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	addr := "http://" + ln.Addr().String()

	var (
		backend physical.Backend
		rc      *raftConf
	)
	switch {
	case *raftMode:
		rc, err = newRaftConf(*storageDir, *clusterPort, *nodeID, *join, *keyFile)
		if err != nil {
			ln.Close()
			return err
		}
		backend, err = raft.NewRaftBackend(map[string]string{
			"path":                   filepath.Join(*storageDir, "raft"),
			"node_id":                rc.nodeID,
			"performance_multiplier": "1",
			// Promote joined nodes to voters within seconds, not ~30 s.
			"autopilot_reconcile_interval": "1s",
			"autopilot_update_interval":    "500ms",
		}, logger.Named("storage"))
	case *storageDir != "":
		if err := os.MkdirAll(*storageDir, 0o700); err != nil {
			return err
		}
		backend, err = file.NewFileBackend(map[string]string{"path": filepath.Join(*storageDir, "data")}, logger.Named("storage"))
	default:
		backend, err = inmem.NewInmem(nil, logger.Named("storage"))
	}
	if err != nil {
		ln.Close()
		return fmt.Errorf("storage: %w", err)
	}

	cc := &vault.CoreConfig{
		Physical:           backend,
		StorageType:        "inmem",
		Logger:             logger.Named("core"),
		LogicalBackends:    map[string]logical.Factory{"kv": logicalKv.Factory},
		CredentialBackends: map[string]logical.Factory{"approle": credAppRole.Factory},
		BuiltinRegistry:    registry{},
		DisableSSCTokens:   true,
		EnableRaw:          true,
	}
	switch {
	case rc != nil:
		cc.StorageType = "raft"
		cc.HAPhysical = backend.(physical.HABackend)
		cc.RedirectAddr = addr
		cc.ClusterAddr = "https://" + rc.clusterAddr.String()
	case *storageDir != "":
		cc.StorageType = "file"
	}
	core, err := vault.NewCore(cc)
	if err != nil {
		ln.Close()
		return fmt.Errorf("new core: %w", err)
	}
	if rc != nil {
		// As command/server.go: before the first unseal, which starts the
		// cluster listener (raft traffic and request forwarding).
		core.SetClusterListenerAddrs([]*net.TCPAddr{rc.clusterAddr})
		core.SetClusterHandler(vaulthttp.Handler.Handler(&vault.HandlerProperties{Core: core}))
	}

	var token string
	var unsealKey []byte
	if rc != nil {
		token, unsealKey, err = setupRaft(core, rc, *storageDir, *rootToken, *kvVersion, *sealed, logger)
	} else {
		token, unsealKey, err = setup(core, *storageDir, *rootToken, *kvVersion, *sealed)
	}
	if err != nil {
		ln.Close()
		_ = core.Shutdown()
		return err
	}

	srv := &http.Server{
		Handler: vaulthttp.Handler.Handler(&vault.HandlerProperties{
			Core:           core,
			ListenerConfig: &configutil.Listener{Type: "tcp", Address: ln.Addr().String(), TLSDisable: true},
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger.StandardLogger(nil),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	ready := readyLine{Addr: addr, RootToken: token, UnsealKey: base64.StdEncoding.EncodeToString(unsealKey), Version: openbaoVersion}
	if rc != nil {
		ready.Raft, ready.ClusterAddr, ready.NodeID = true, cc.ClusterAddr, rc.nodeID
	}
	line, _ := json.Marshal(ready)
	if _, err := fmt.Fprintf(os.Stdout, "%s\n", line); err != nil {
		return err
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	eof := make(chan struct{})
	if *stdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(eof)
		}()
	}
	select {
	case s := <-sig:
		logger.Info("shutting down", "signal", s.String())
	case <-eof:
		logger.Info("shutting down: stdin closed")
	case err := <-serveErr:
		logger.Error("http server stopped", "error", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	return core.Shutdown()
}

// setup initialises (first start) or unseals (restart with -storage-dir) the
// core. It returns the root token and the unseal key.
func setup(core *vault.Core, storageDir, rootToken, kvVersion string, staySealed bool) (string, []byte, error) {
	ctx := namespace.RootContext(context.Background())
	keyFile := ""
	if storageDir != "" {
		keyFile = filepath.Join(storageDir, "unseal.key")
	}

	inited, err := core.Initialized(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("initialized: %w", err)
	}
	if inited {
		if keyFile == "" {
			return "", nil, errors.New("core unexpectedly initialised")
		}
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return "", nil, fmt.Errorf("storage dir already initialised but unseal key unreadable: %w", err)
		}
		var st stored
		if err := json.Unmarshal(b, &st); err != nil {
			return "", nil, fmt.Errorf("%s: %w", keyFile, err)
		}
		if !staySealed {
			if err := unseal(core, st.UnsealKey); err != nil {
				return "", nil, err
			}
		}
		return st.RootToken, st.UnsealKey, nil
	}

	key, initRoot, err := initialise(ctx, core)
	if err != nil {
		return "", nil, err
	}
	token, err := provision(ctx, core, initRoot, rootToken, kvVersion)
	if err != nil {
		return "", nil, err
	}
	if keyFile != "" {
		if err := writeKeyFile(keyFile, stored{RootToken: token, UnsealKey: key}); err != nil {
			return "", nil, err
		}
	}
	return token, key, nil
}

// initialise initialises core with one Shamir key share and unseals it; it
// returns the unseal key and the initial root token. On a raft node this
// bootstraps the cluster with the node as its only voter.
func initialise(ctx context.Context, core *vault.Core) (key []byte, initRoot string, err error) {
	init, err := core.Initialize(ctx, &vault.InitParams{
		BarrierConfig: &vault.SealConfig{SecretShares: 1, SecretThreshold: 1},
	})
	if err != nil {
		return nil, "", fmt.Errorf("initialize: %w", err)
	}
	key = append([]byte(nil), init.SecretShares[0]...)
	if err := unseal(core, key); err != nil {
		return nil, "", err
	}
	return key, init.RootToken, nil
}

// provision replaces the initial root token by one with the ID rootToken
// (unless empty) and mounts the kv engine at secret/. It returns the root
// token.
func provision(ctx context.Context, core *vault.Core, initRoot, rootToken, kvVersion string) (string, error) {
	token := initRoot
	if rootToken != "" {
		resp, err := core.HandleRequest(ctx, &logical.Request{
			Operation:   logical.UpdateOperation,
			ClientToken: initRoot,
			Path:        "auth/token/create",
			Data: map[string]interface{}{
				"id":                rootToken,
				"policies":          []string{"root"},
				"no_parent":         true,
				"no_default_policy": true,
			},
		})
		if err := respErr(resp, err); err != nil {
			return "", fmt.Errorf("create root token: %w", err)
		}
		if resp == nil || resp.Auth == nil {
			return "", errors.New("create root token: no auth in response")
		}
		token = resp.Auth.ClientToken
		resp, err = core.HandleRequest(ctx, &logical.Request{
			Operation:   logical.UpdateOperation,
			ClientToken: initRoot,
			Path:        "auth/token/revoke-self",
		})
		if err := respErr(resp, err); err != nil {
			return "", fmt.Errorf("revoke initial root token: %w", err)
		}
	}

	if kvVersion != "" {
		resp, err := core.HandleRequest(ctx, &logical.Request{
			Operation:   logical.UpdateOperation,
			ClientToken: token,
			Path:        "sys/mounts/secret",
			Data: map[string]interface{}{
				"type":    "kv",
				"options": map[string]string{"version": kvVersion},
			},
		})
		if err := respErr(resp, err); err != nil {
			return "", fmt.Errorf("mount secret/: %w", err)
		}
	}
	return token, nil
}

// writeKeyFile writes st atomically (a joining node may read it at any
// moment).
func writeKeyFile(path string, st stored) error {
	b, _ := json.Marshal(st)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readKeyFile(path string) (stored, error) {
	var st stored
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil || len(st.UnsealKey) == 0 {
		return st, fmt.Errorf("%s: not a key file: %v", path, err)
	}
	return st, nil
}

type stored struct {
	RootToken string `json:"root_token"`
	UnsealKey []byte `json:"unseal_key"`
}

func unseal(core *vault.Core, key []byte) error {
	ok, err := core.Unseal(append([]byte(nil), key...))
	if err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	if !ok || core.Sealed() {
		return errors.New("unseal: core still sealed")
	}
	return nil
}

func respErr(resp *logical.Response, err error) error {
	if err != nil {
		return err
	}
	if resp != nil && resp.IsError() {
		return resp.Error()
	}
	return nil
}

// registry is the vault.BuiltinRegistry of this tool: exactly the engines it
// compiles in, so that sys/plugins/catalog and mounts agree with the factories
// given in CoreConfig.
type registry struct{}

var builtins = map[consts.PluginType]map[string]logical.Factory{
	consts.PluginTypeCredential: {"approle": credAppRole.Factory},
	consts.PluginTypeSecrets:    {"kv": logicalKv.Factory},
}

func (registry) Contains(name string, t consts.PluginType) bool {
	_, ok := builtins[t][name]
	return ok
}

func (registry) Get(name string, t consts.PluginType) (func() (interface{}, error), bool) {
	f, ok := builtins[t][name]
	if !ok {
		return nil, false
	}
	return func() (interface{}, error) { return f, nil }, true
}

func (registry) Keys(t consts.PluginType) []string {
	keys := make([]string, 0, len(builtins[t]))
	for k := range builtins[t] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (registry) DeprecationStatus(name string, t consts.PluginType) (consts.DeprecationStatus, bool) {
	if _, ok := builtins[t][name]; ok {
		return consts.Supported, true
	}
	return consts.Unknown, false
}

var _ vault.BuiltinRegistry = registry{}
