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
	"github.com/openbao/openbao/sdk/v2/helper/consts"
	"github.com/openbao/openbao/sdk/v2/logical"
	"github.com/openbao/openbao/sdk/v2/physical"
	"github.com/openbao/openbao/sdk/v2/physical/file"
	"github.com/openbao/openbao/sdk/v2/physical/inmem"
	"github.com/openbao/openbao/vault"
)

type readyLine struct {
	Addr      string `json:"addr"`
	RootToken string `json:"root_token"`
	UnsealKey string `json:"unseal_key"`
	Version   string `json:"version"`
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
	flag.Parse()

	logger := log.New(&log.LoggerOptions{
		Name:   "vaultdev",
		Level:  log.LevelFromString(*logLevel),
		Output: os.Stderr,
	})

	var (
		backend physical.Backend
		err     error
	)
	if *storageDir != "" {
		if err := os.MkdirAll(*storageDir, 0o700); err != nil {
			return err
		}
		backend, err = file.NewFileBackend(map[string]string{"path": filepath.Join(*storageDir, "data")}, logger.Named("storage"))
	} else {
		backend, err = inmem.NewInmem(nil, logger.Named("storage"))
	}
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}

	core, err := vault.NewCore(&vault.CoreConfig{
		Physical:           backend,
		StorageType:        map[bool]string{true: "file", false: "inmem"}[*storageDir != ""],
		Logger:             logger.Named("core"),
		LogicalBackends:    map[string]logical.Factory{"kv": logicalKv.Factory},
		CredentialBackends: map[string]logical.Factory{"approle": credAppRole.Factory},
		BuiltinRegistry:    registry{},
		DisableSSCTokens:   true,
		EnableRaw:          true,
	})
	if err != nil {
		return fmt.Errorf("new core: %w", err)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	addr := "http://" + ln.Addr().String()

	token, unsealKey, err := setup(core, *storageDir, *rootToken, *kvVersion, *sealed)
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

	line, _ := json.Marshal(readyLine{Addr: addr, RootToken: token, UnsealKey: base64.StdEncoding.EncodeToString(unsealKey), Version: openbaoVersion})
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

	init, err := core.Initialize(ctx, &vault.InitParams{
		BarrierConfig: &vault.SealConfig{SecretShares: 1, SecretThreshold: 1},
	})
	if err != nil {
		return "", nil, fmt.Errorf("initialize: %w", err)
	}
	key := append([]byte(nil), init.SecretShares[0]...)
	if err := unseal(core, key); err != nil {
		return "", nil, err
	}

	token := init.RootToken
	if rootToken != "" {
		resp, err := core.HandleRequest(ctx, &logical.Request{
			Operation:   logical.UpdateOperation,
			ClientToken: init.RootToken,
			Path:        "auth/token/create",
			Data: map[string]interface{}{
				"id":                rootToken,
				"policies":          []string{"root"},
				"no_parent":         true,
				"no_default_policy": true,
			},
		})
		if err := respErr(resp, err); err != nil {
			return "", nil, fmt.Errorf("create root token: %w", err)
		}
		if resp == nil || resp.Auth == nil {
			return "", nil, errors.New("create root token: no auth in response")
		}
		token = resp.Auth.ClientToken
		resp, err = core.HandleRequest(ctx, &logical.Request{
			Operation:   logical.UpdateOperation,
			ClientToken: init.RootToken,
			Path:        "auth/token/revoke-self",
		})
		if err := respErr(resp, err); err != nil {
			return "", nil, fmt.Errorf("revoke initial root token: %w", err)
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
			return "", nil, fmt.Errorf("mount secret/: %w", err)
		}
	}

	if keyFile != "" {
		b, _ := json.Marshal(stored{RootToken: token, UnsealKey: key})
		if err := os.WriteFile(keyFile, b, 0o600); err != nil {
			return "", nil, err
		}
	}
	return token, key, nil
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
