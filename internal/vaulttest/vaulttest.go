// Package vaulttest starts a real Vault-API server (OpenBao, built from
// tools/vaultdev) for integration tests.
//
//	srv := vaulttest.Start(t)
//	// srv.Addr = "http://127.0.0.1:PORT", srv.RootToken = "root"
//
// The server runs in a child process with its storage in t.TempDir(), so
// Restart keeps mounts, secrets, policies and tokens. A "kv" v2 engine is
// mounted at secret/; the "kv" secrets engine (v1 and v2) and the "approle"
// auth method can be enabled as usual.
//
// Binary: $ASPS_VAULTDEV_BIN if set, else it is built once per test process
// with `go build` in tools/vaultdev (found by walking up from the working
// directory to the go.mod of github.com/asps-project/asps) into the user
// cache dir. The first build takes minutes (see tools/vaultdev/build.sh; CI
// should prebuild with it and set ASPS_VAULTDEV_BIN). If the binary can't be
// had, Start skips the test, or fails it when ASPS_REQUIRE_VAULT=1.
package vaulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	mainModule = "github.com/asps-project/asps"
	// EnvBin names a prebuilt vaultdev binary (tools/vaultdev/build.sh).
	EnvBin = "ASPS_VAULTDEV_BIN"
	// EnvRequire set to "1" turns "no vault binary" into a test failure.
	EnvRequire = "ASPS_REQUIRE_VAULT"
	// EnvLogLevel sets vaultdev's -log-level (its log is shown when a test
	// fails).
	EnvLogLevel = "ASPS_VAULTDEV_LOG_LEVEL"

	startTimeout = 60 * time.Second
)

// Server is a running vaultdev (OpenBao) process.
type Server struct {
	// Addr is the base URL, e.g. "http://127.0.0.1:8200".
	Addr string
	// RootToken is a root token ("root").
	RootToken string
	// UnsealKey is the single Shamir unseal key, base64.
	UnsealKey string

	// ClusterAddr and NodeID are set for a node of a Cluster.
	ClusterAddr string
	NodeID      string

	t          testing.TB
	bin        string
	storageDir string
	logPath    string
	port       int
	// raft mode (a Cluster node): extra vaultdev flags.
	raftArgs []string

	mu    sync.Mutex
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

// Start starts a fresh, unsealed server and registers its shutdown with
// t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s := newServer(t, mustBinary(t), t.TempDir())
	if err := s.start(0, false); err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	return s
}

// mustBinary returns the vaultdev binary or skips (fails with
// ASPS_REQUIRE_VAULT=1) the test.
func mustBinary(t testing.TB) string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("vaulttest: no vaultdev binary (%s=1): %v", EnvRequire, err)
		}
		t.Skipf("vaulttest: skipping, no vaultdev binary (set %s to a binary built by tools/vaultdev/build.sh, or %s=1 to fail): %v", EnvBin, EnvRequire, err)
	}
	return bin
}

// newServer prepares a server in dir and registers its shutdown (and, if
// the test failed, the dump of its log) with t.Cleanup.
func newServer(t testing.TB, bin, dir string) *Server {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	s := &Server{
		t:          t,
		bin:        bin,
		storageDir: filepath.Join(dir, "storage"),
		logPath:    filepath.Join(dir, "vaultdev.log"),
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(s.logPath); err == nil && len(b) > 0 {
				t.Logf("vaultdev log (%s):\n%s", s.logPath, tail(b, 8<<10))
			}
		}
	})
	return s
}

// Stop terminates the server (SIGTERM, then SIGKILL after 5 s). It is safe
// to call more than once.
func (s *Server) Stop() {
	s.end(func(cmd *exec.Cmd, done <-chan struct{}) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

// Kill kills the server with SIGKILL (no shutdown at all, as a crash) and
// waits for it to exit. It is a no-op on a stopped server.
func (s *Server) Kill() {
	s.end(func(cmd *exec.Cmd, done <-chan struct{}) {
		_ = cmd.Process.Kill()
		<-done
	})
}

// end takes the running process (none: a no-op), ends it with stop, which
// returns once it has exited, and closes its stdin.
func (s *Server) end(stop func(cmd *exec.Cmd, done <-chan struct{})) {
	s.mu.Lock()
	cmd, stdin, done := s.cmd, s.stdin, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	stop(cmd, done)
	_ = stdin.Close()
}

// Running reports whether the server process is running (started and not
// stopped or killed by this package).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// StartAgain starts a stopped or killed server with its storage on its
// port (unsealed unless sealed). Unlike Restart it never moves to another
// port: a cluster node's address must stay the same.
func (s *Server) StartAgain(sealed bool) error {
	if s.Running() {
		return errors.New("vaulttest: already running")
	}
	return s.start(s.port, sealed)
}

// Restart stops the server and starts it again on the same port if that is
// still free (else on a new one: Addr is updated). Storage is kept and the
// server comes back unsealed.
func (s *Server) Restart() {
	s.t.Helper()
	s.restart(false)
}

// RestartSealed is Restart, but the server comes back sealed, as a real Vault
// does after a restart. Call Unseal to unseal it.
func (s *Server) RestartSealed() {
	s.t.Helper()
	s.restart(true)
}

func (s *Server) restart(sealed bool) {
	s.t.Helper()
	s.Stop()
	err := s.start(s.port, sealed)
	if err != nil && isAddrInUse(err) {
		err = s.start(0, sealed)
	}
	if err != nil {
		s.t.Fatalf("vaulttest: restart: %v", err)
	}
}

// Seal seals the server (PUT sys/seal with the root token).
func (s *Server) Seal() {
	s.t.Helper()
	if code, body, err := s.Do(http.MethodPut, "sys/seal", nil); err != nil || code != http.StatusNoContent {
		s.t.Fatalf("vaulttest: seal: %d %s %v", code, body, err)
	}
}

// Unseal unseals the server with its unseal key (PUT sys/unseal).
func (s *Server) Unseal() {
	s.t.Helper()
	code, body, err := s.Do(http.MethodPut, "sys/unseal", map[string]string{"key": s.UnsealKey})
	if err != nil || code != http.StatusOK {
		s.t.Fatalf("vaulttest: unseal: %d %s %v", code, body, err)
	}
	var st struct {
		Sealed bool `json:"sealed"`
	}
	if err := json.Unmarshal(body, &st); err != nil || st.Sealed {
		s.t.Fatalf("vaulttest: unseal: still sealed: %s", body)
	}
}

// Do sends one request to /v1/<path> with the root token and a JSON body (nil
// for none) and returns the status code and the response body.
func (s *Server) Do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.Addr+"/v1/"+strings.TrimPrefix(path, "/"), rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Vault-Token", s.RootToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

type readyLine struct {
	Addr        string `json:"addr"`
	RootToken   string `json:"root_token"`
	UnsealKey   string `json:"unseal_key"`
	ClusterAddr string `json:"cluster_addr"`
	NodeID      string `json:"node_id"`
}

func (s *Server) start(port int, sealed bool) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor
	logStart, _ := logf.Seek(0, io.SeekEnd)

	args := []string{"-port", strconv.Itoa(port), "-storage-dir", s.storageDir, "-exit-on-stdin-eof"}
	args = append(args, s.raftArgs...)
	if lvl := os.Getenv(EnvLogLevel); lvl != "" {
		args = append(args, "-log-level", lvl)
	}
	if sealed {
		args = append(args, "-sealed")
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	// The child exits when this pipe closes, i.e. also when the test binary
	// dies without running its cleanups.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()

	lineCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lineCh <- sc.Text()
		}
		close(lineCh)
		_, _ = io.Copy(io.Discard, stdout)
	}()

	fail := func(err error) error {
		_ = cmd.Process.Kill()
		<-done
		_ = stdin.Close()
		b, _ := os.ReadFile(s.logPath)
		return fmt.Errorf("%w\n--- vaultdev log ---\n%s", err, tail(b, 4<<10))
	}

	var line string
	select {
	case l, ok := <-lineCh:
		if !ok {
			<-done
			_ = stdin.Close()
			b, _ := os.ReadFile(s.logPath)
			if int64(len(b)) >= logStart {
				b = b[logStart:]
			}
			err := fmt.Errorf("vaultdev exited before it was ready: %v\n--- vaultdev log ---\n%s", cmd.ProcessState, tail(b, 4<<10))
			if bytes.Contains(b, []byte("address already in use")) {
				err = errAddrInUse{err}
			}
			return err
		}
		line = l
	case <-time.After(startTimeout):
		return fail(errors.New("vaultdev printed no ready line in time"))
	}
	var rl readyLine
	if err := json.Unmarshal([]byte(line), &rl); err != nil || rl.Addr == "" {
		return fail(fmt.Errorf("bad ready line %q: %v", line, err))
	}

	s.mu.Lock()
	s.Addr, s.RootToken, s.UnsealKey = rl.Addr, rl.RootToken, rl.UnsealKey
	s.ClusterAddr, s.NodeID = rl.ClusterAddr, rl.NodeID
	s.cmd, s.stdin, s.done = cmd, stdin, done
	s.mu.Unlock()
	if _, p, err := net.SplitHostPort(strings.TrimPrefix(rl.Addr, "http://")); err == nil {
		s.port, _ = strconv.Atoi(p)
	}

	// The ready line comes after the listener is up; still check that the
	// API answers (200 unsealed; sealedcode=200 when started sealed).
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := httpClient.Get(s.Addr + "/v1/sys/health?sealedcode=200&standbyok=true")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("vaultdev at %s not healthy: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type errAddrInUse struct{ error }

func (e errAddrInUse) Unwrap() error { return e.error }

func isAddrInUse(err error) bool {
	var e errAddrInUse
	return errors.As(err, &e)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary returns the vaultdev binary, building it once per process.
func binary() (string, error) {
	binOnce.Do(func() { binPath, binErr = findOrBuild() })
	return binPath, binErr
}

func findOrBuild() (string, error) {
	if p := os.Getenv(EnvBin); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBin, p, err)
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "tools", "vaultdev")
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	outDir := filepath.Join(cache, "asps-vaultdev")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(outDir, "vaultdev")
	// Test processes of several packages start at once: one builds, the
	// others wait on the lock and then find the build cache warm.
	if lf, err := os.OpenFile(filepath.Join(outDir, "build.lock"), os.O_CREATE|os.O_RDWR, 0o600); err == nil {
		defer lf.Close()
		_ = syscall.Flock(int(lf.Fd()), syscall.LOCK_EX)
		defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	}
	// Build to a private name, then rename: a running binary must not be
	// rewritten.
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, append([]string{"build"}, buildArgs(tmp)...)...)
	cmd.Dir = src
	// Our own module, not whatever workspace the caller has.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("go build in %s: %v\n%s", src, err, tail(b, 4<<10))
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// buildArgs are the flags of tools/vaultdev/build.sh (same flags, same build
// cache entries).
func buildArgs(out string) []string {
	return []string{
		"-buildvcs=false", "-trimpath",
		"-ldflags", "-s -w -X github.com/openbao/openbao/version.fullVersion=2.4.0",
		"-o", out, ".",
	}
}

// repoRoot walks up from the working directory to the go.mod of the main
// module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == mainModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory", mainModule)
		}
		dir = parent
	}
}

func modulePath(gomod []byte) string {
	for _, l := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}
