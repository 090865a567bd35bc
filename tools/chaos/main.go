// Command chaos drives asps replicas on loopback through faults (chaos
// mode) or through a long steady load (soak mode) and prints a JSON
// summary last. It is what scripts/chaos.sh and scripts/soak.sh run.
//
// It starts a 3-node OpenBao raft cluster (ASPS_VAULTDEV_BIN) behind
// Toxiproxy TCP proxies (TCP faults: latency, reset, partition), a collateral source
// (`asps collateral serve`) behind a fault proxy, and N `asps server`
// replicas sharing one policy, one store, one collateral source and one
// server key; clients provision with fresh evidence (a new key and quote
// per provision) through the Go client's failover over all replicas.
// Every value a client received is checked against what the policy gives
// that workload (wrong_secret) and matched to an allow record in the
// replicas' audit files on disk (released_without_audit), after all
// SIGKILLs.
package main

import (
	"context"
	crand "crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
)

type options struct {
	duration  time.Duration
	clients   int
	replicas  int
	asps      string
	vaultdev  string
	work      string
	soak      bool
	sample    time.Duration
	keep      bool
	noDiskFul bool
	extra     string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long to drive load")
	flag.IntVar(&o.clients, "clients", 16, "concurrent clients (each provision uses fresh evidence)")
	flag.IntVar(&o.replicas, "replicas", 3, "asps server replicas")
	flag.StringVar(&o.asps, "asps", "", "asps binary (required)")
	flag.StringVar(&o.vaultdev, "vaultdev", os.Getenv("ASPS_VAULTDEV_BIN"), "OpenBao dev binary [ASPS_VAULTDEV_BIN]")
	flag.StringVar(&o.work, "work", "", "work directory (default: a temporary one)")
	flag.BoolVar(&o.soak, "soak", false, "soak: no faults; sample RSS, goroutines and open files of every replica")
	flag.DurationVar(&o.sample, "sample", 5*time.Second, "soak: sampling interval")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.BoolVar(&o.noDiskFul, "no-disk-full", false, "skip the audit-disk-full fault (it mounts a small tmpfs: root only)")
	flag.StringVar(&o.extra, "server-args", "", "more `FLAGS` for every asps server, space-separated (e.g. --max-conns-per-ip=-1)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s chaos: %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a child process that can be killed and restarted on the same
// ports.
type proc struct {
	name string
	args []string
	env  []string
	log  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() error {
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

var httpc = &http.Client{Timeout: 3 * time.Second}

func waitHTTP(url string, want int, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < limit {
		if resp, err := httpc.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return time.Since(start), nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("%s: not %d after %v", url, want, limit)
}

// faultProxy sits in front of the collateral source: ok, slow, 5xx or
// garbage.
type faultProxy struct {
	mode atomic.Value // string
	rp   *httputil.ReverseProxy
}

func (f *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch f.mode.Load().(string) {
	case "slow":
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
			return
		}
	case "5xx":
		http.Error(w, "injected", http.StatusServiceUnavailable)
		return
	case "garbage":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("\x00\xffnot collateral{{{"))
		return
	}
	f.rp.ServeHTTP(w, r)
}

type replica struct {
	proc
	listen, metrics string
	auditDir        string
}

// receipt is one successful provision as the client saw it.
type receipt struct {
	locals     []string // replica|local address of each connection the client made
	app        string
	start, end time.Time
}

type stats struct {
	mu           sync.Mutex
	provisions   int
	succeeded    int
	failed       int
	wrong        int
	lastErrs     []string
	latDuringFlt []time.Duration
	latAll       []time.Duration
	receipts     []receipt
	faultActive  atomic.Int32
	faultsByKind map[string]int
	recovery     map[string][]float64
	election     map[string][]float64 // OpenBao: time to a new serving leader
	retries      atomic.Uint64
	unaudited    []string
}

func run(o options) error {
	if o.asps == "" {
		return errors.New("--asps BIN is required")
	}
	if o.vaultdev == "" {
		return errors.New("--vaultdev BIN or ASPS_VAULTDEV_BIN is required")
	}
	work := o.work
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "asps-chaos-"); err != nil {
			return err
		}
	}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		if !o.keep {
			os.RemoveAll(work)
		} else {
			logf("work directory kept: %s", work)
		}
	}()
	write := func(name string, b []byte) string {
		p := filepath.Join(work, name)
		os.WriteFile(p, b, 0o600)
		return p
	}

	// PKI, collateral, shared server key.
	pki, err := sim.NewPKI([]byte("chaos"))
	if err != nil {
		return err
	}
	root := write("root.pem", pki.RootPEM())
	sa, err := sim.NewAttester(sim.Options{PKI: pki, TEE: claims.SGX})
	if err != nil {
		return err
	}
	col, err := sa.Collateral(time.Now())
	if err != nil {
		return err
	}
	colJSON, _ := col.MarshalJSON()
	bundle := filepath.Join(work, "bundle")
	if out, err := exec.Command(o.asps, "collateral", "import", write("collateral.json", colJSON), "--trust-root", root, "--out", bundle).CombinedOutput(); err != nil {
		return fmt.Errorf("collateral import: %v: %s", err, out)
	}
	cert, pin, err := devmode.SelfSignedServerCert("asps chaos replicas")
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return err
	}
	certPEM := write("server.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}))
	keyPEM := write("server.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))

	// Secrets: fresh random values in OpenBao; the policy refers to them.
	values := map[string]string{}
	for _, n := range []string{"demo-key", "db-password", "other-app"} {
		values[n] = hex.EncodeToString(randBytes(16))
	}
	t0 := time.Now()
	v, err := startBao(o.vaultdev, work)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, v.kill)
	logf("OpenBao cluster of 3 raft nodes ready in %.1fs", time.Since(t0).Seconds())
	tf, err := newTCPFaults(v.addrs())
	if err != nil {
		return err
	}
	cleanups = append(cleanups, tf.stop)
	for _, path := range []string{"demo", "other"} {
		data := map[string]string{}
		for n, val := range values {
			if (path == "other") == (n == "other-app") {
				data[n] = val
			}
		}
		if err := v.write("chaos/"+path, data); err != nil {
			return err
		}
	}
	policyBase := devmode.DemoPolicy()
	policyBase = []byte(strings.NewReplacer(
		"demo-key: demo-key", "demo-key: kv2:secret/chaos/demo#demo-key",
		"db-password: db-password", "db-password: kv2:secret/chaos/demo#db-password",
		"other-app: other-app", "other-app: kv2:secret/chaos/other#other-app",
		"tdx-token: tdx-token", "tdx-token: kv2:secret/chaos/demo#demo-key").Replace(string(policyBase)))
	policyPath := write("policy.yaml", policyBase)

	// Collateral source behind the fault proxy.
	colPort := freePort()
	cs := &proc{name: "collateral", args: []string{o.asps, "collateral", "serve", "--dir", bundle, "--trust-root", root, "--listen", fmt.Sprintf("127.0.0.1:%d", colPort)}, log: filepath.Join(work, "collateral.log")}
	if err := cs.start(); err != nil {
		return err
	}
	cleanups = append(cleanups, func() { cs.signal(syscall.SIGKILL) })
	target, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", colPort))
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	fp := &faultProxy{rp: rp}
	fp.mode.Store("ok")
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(pl, fp)
	cleanups = append(cleanups, func() { pl.Close() })

	// Replicas; the last one's audit directory is a small tmpfs (the
	// audit-disk-full fault) when that is possible.
	diskFull := ""
	var reps []*replica
	for i := range o.replicas {
		r := &replica{listen: fmt.Sprintf("127.0.0.1:%d", freePort()), metrics: fmt.Sprintf("127.0.0.1:%d", freePort()),
			auditDir: filepath.Join(work, fmt.Sprintf("audit%d", i))}
		os.MkdirAll(r.auditDir, 0o700)
		if i == o.replicas-1 && !o.soak && !o.noDiskFul {
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", r.auditDir).CombinedOutput(); err == nil {
				diskFull = r.auditDir
				dir := r.auditDir
				cleanups = append(cleanups, func() { exec.Command("umount", "-l", dir).Run() })
			} else {
				logf("no tmpfs for the audit-disk-full fault (%v: %s); skipped", err, strings.TrimSpace(string(out)))
			}
		}
		cacheDir := filepath.Join(work, fmt.Sprintf("colcache%d", i))
		r.proc = proc{name: fmt.Sprintf("replica%d", i), log: filepath.Join(work, fmt.Sprintf("replica%d.log", i)),
			env: []string{"VAULT_TOKEN=" + v.token},
			args: []string{o.asps, "server", "--policy", policyPath, "--store", "vault", "--vault-addr", strings.Join(tf.addrs(), ","), "--vault-kv-version", "2",
				"--pccs", "http://" + pl.Addr().String(), "--collateral-cache", cacheDir,
				"--tls-cert", certPEM, "--tls-key", keyPEM, "--audit", filepath.Join(r.auditDir, "audit.jsonl"), "--audit-max-size", "1", "--audit-max-backups", "100000",
				"--metrics-listen", r.metrics, "--listen", r.listen, "--insecure-simulator-root", root}}
		r.args = append(r.args, strings.Fields(o.extra)...)
		if err := r.start(); err != nil {
			return err
		}
		rr := r
		cleanups = append(cleanups, func() { rr.signal(syscall.SIGKILL) })
		reps = append(reps, r)
	}
	for _, r := range reps {
		if _, err := waitHTTP("http://"+r.metrics+"/healthz", 200, 60*time.Second); err != nil {
			b, _ := os.ReadFile(r.log)
			return fmt.Errorf("%s: %v\n%s", r.name, err, tail(b))
		}
	}
	logf("%d replicas up, OpenBao at %s behind Toxiproxy at %s, collateral proxy at %s", len(reps), strings.Join(v.addrs(), ","), strings.Join(tf.addrs(), ","), pl.Addr())

	addrs := make([]string, len(reps))
	for i, r := range reps {
		addrs[i] = r.listen
	}
	st := &stats{faultsByKind: map[string]int{}, recovery: map[string][]float64{}, election: map[string][]float64{}}
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	var wg sync.WaitGroup
	for i := range o.clients {
		wg.Add(1)
		go func() { defer wg.Done(); clientLoop(ctx, i, pki, strings.Join(addrs, ","), pin, values, st) }()
	}
	var samples []sample
	var fwg sync.WaitGroup
	fwg.Add(1)
	if o.soak {
		go func() { defer fwg.Done(); samples = soakSampler(ctx, reps, o.sample) }()
	} else {
		go func() { defer fwg.Done(); faults(ctx, o, v, tf, reps, fp, diskFull, policyPath, policyBase, st) }()
	}
	wg.Wait()
	fwg.Wait()
	// Every replica stops (SIGTERM: drained) before the audit files are read.
	for _, r := range reps {
		r.signal(syscall.SIGTERM)
	}
	unaudited, nrec, err := checkAudit(reps, st)
	if err != nil {
		return err
	}
	return summary(o, st, unaudited, nrec, samples)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := crand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func tail(b []byte) []byte {
	if len(b) > 4096 {
		return b[len(b)-4096:]
	}
	return b
}
