package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/internal/testdata"
	"github.com/asps-project/asps/server/flood"
)

// serverProcess is a running `asps server` in dev mode (simulator root)
// with a file store, a collateral bundle, an audit file and metrics.
type serverProcess struct {
	cmd                         *exec.Cmd
	addr, pin, dir, audit, http string
	stderrBytes                 atomic.Int64
	logs                        lockedBuffer // stderr
	stdout                      lockedBuffer
}

func startServerProcess(t *testing.T, extra ...string) *serverProcess {
	t.Helper()
	bin := buildBinary(t)
	dir, root, bundle, write := simServerDir(t, "flood-test")
	p := &serverProcess{dir: dir, audit: filepath.Join(dir, "audit.jsonl"), http: freePort(t)}
	args := append([]string{"server", "--policy", write("policy.yaml", devmode.DemoPolicy()),
		"--store", "file:" + write("secrets.yaml", []byte("demo-key: k\ndb-password: p\ntdx-token: t\nother-app: o\n")),
		"--collateral-dir", bundle, "--audit", p.audit, "--metrics-listen", p.http, "--listen", "127.0.0.1:0",
		"--insecure-simulator-root", root}, extra...)
	if b := os.Getenv("ASPS_FLOOD_SERVER_BIN"); b != "" {
		bin = b // e.g. an older build, for a before/after comparison
	}
	p.cmd = exec.Command(bin, args...)
	stdout, _ := p.cmd.StdoutPipe()
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	pinCh, addrCh := make(chan string, 1), make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.stdout.Write([]byte(sc.Text() + "\n"))
			if v, ok := strings.CutPrefix(sc.Text(), "server key pin (give clients --server-pin): "); ok {
				pinCh <- v
			}
		}
	}()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.stderrBytes.Add(int64(len(sc.Bytes()) + 1))
			p.logs.Write([]byte(sc.Text() + "\n"))
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "asps server listening" {
				addrCh <- l.Addr
			}
		}
	}()
	for p.pin == "" || p.addr == "" {
		select {
		case p.pin = <-pinCh:
		case p.addr = <-addrCh:
		case <-time.After(30 * time.Second):
			t.Fatal("server did not start")
		}
	}
	return p
}

// TestBenchFloodAgainstServerProcess runs `asps bench flood` against a
// real `asps server`: idle connections, HPACK amplification with and
// without a certificate, handshakes without a certificate and requests
// under a certificate that does not attest. A legitimate fetch succeeds
// during it, the server's memory stays bounded, and the audit file and
// the log grow by kilobytes. Small counts by default; ASPS_FLOOD_FULL=1
// runs the figures (2,000 idle, 60 amplification, 1,000 no-cert,
// 1,000 bad-cert) and logs the report; ASPS_FLOOD_SERVER_BIN runs the
// flood against another server binary (an older build, for comparison).
func TestBenchFloodAgainstServerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server process")
	}
	p := startServerProcess(t)
	counts := []string{"--idle", "200", "--amplify", "6", "--no-cert", "50", "--bad-cert", "50", "--forged", "30", "--padded", "30", "--hold", "1s"}
	if os.Getenv("ASPS_FLOOD_FULL") == "1" {
		counts = []string{"--idle", "2000", "--amplify", "60", "--no-cert", "1000", "--bad-cert", "1000", "--forged", "1000", "--padded", "1000", "--hold", "3s"}
	}
	// A real Intel quote whose PCK chain the forged and padded requests
	// tamper with (the corpus, without its publisher's trailer).
	counts = append(counts, "--real-quote", testdata.DCAPQuoteFile(t, "sgx-v3-config-sw-hardening"))
	if v := os.Getenv("ASPS_FLOOD_AMPLIFY"); v != "" {
		counts = append(counts, "--amplify", v)
	}
	bin := buildBinary(t)
	stderrBefore := p.stderrBytes.Load()
	args := append([]string{"bench", "flood", "--server", p.addr, "--server-pin", p.pin, "--dev-dir", p.dir,
		"--pid", fmt.Sprint(p.cmd.Process.Pid), "--audit", p.audit, "--json"}, counts...)
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("bench flood: %v\n%s", err, out)
	}
	var r flood.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	logBytes := p.stderrBytes.Load() - stderrBefore
	t.Logf("report: %s", out)
	t.Logf("server stderr grew %d bytes during the flood", logBytes)
	if !r.LegitOK {
		t.Fatalf("legitimate fetch during the flood: %s", r.LegitError)
	}
	if grew := r.RSSDuringKiB - r.RSSBeforeKiB; grew > 128<<10 {
		t.Fatalf("server RSS grew %d MiB during the flood", grew>>10)
	}
	if grew := r.AuditBytesAfter - r.AuditBytesBefore; grew > 64<<10 {
		t.Fatalf("audit file grew %d bytes during the flood", grew)
	}
	if logBytes > 256<<10 {
		t.Fatalf("server log grew %d bytes during the flood", logBytes)
	}
	// Every tampered request is refused: unauthenticated (the chain does
	// not verify, or is malformed) or, past the per-source limit of failed
	// attestations, resource exhausted; none is served.
	for kind, codes := range map[string]map[string]int{"forged leaf": r.ForgedCodes, "padded chain": r.PaddedCodes} {
		n := 0
		for code, k := range codes {
			if code != "Unauthenticated" && code != "ResourceExhausted" {
				t.Fatalf("%s requests answered %s (%d): %v", kind, code, k, codes)
			}
			n += k
		}
		if n == 0 {
			t.Fatalf("no %s request was sent", kind)
		}
	}
	if r.AmplifyRefusedAtHandshake == 0 || r.NoCertRefused == 0 {
		t.Fatalf("peers without a certificate were not refused at the handshake: %+v", r)
	}
	// Health without a certificate: the metrics listener.
	resp, err := http.Get("http://" + p.http + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the flood: %v %v", err, resp)
	}
	resp.Body.Close()
}
