package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/asps-project/asps/audit"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
)

// lockedBuffer collects the dev server's audit records.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	serverEnclave = [32]byte{0x5e, 0x7e, 0x1}
	serverSigner  = [32]byte{0x5e, 0x7e, 0x2}
	serverTD      = [48]byte{0x5e, 0x7e, 0x3}
	serverRtmr1   = [48]byte{0x5e, 0x7e, 0x4}
	serverRtmr2   = [48]byte{0x5e, 0x7e, 0x5}
)

// startServerInTEE starts a dev server (the demo policy and secrets: it
// would release demo-key to the demo enclave) that presents an RA-TLS
// certificate from a simulated enclave or TD with the given identity and
// platform TCB status. It returns the --dev-dir and the audit records.
func startServerInTEE(t *testing.T, tee claims.TEE, id sim.Identity, tcbStatus string) (string, *lockedBuffer) {
	t.Helper()
	dir := t.TempDir()
	pki, err := sim.NewPKI([]byte("server-in-tee-test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Save(filepath.Join(dir, "pki")); err != nil {
		t.Fatal(err)
	}
	att, err := sim.NewAttester(sim.Options{PKI: pki, TEE: tee, Identity: id, TCBStatus: tcbStatus})
	if err != nil {
		t.Fatal(err)
	}
	records := &lockedBuffer{}
	env, err := devmode.Start(context.Background(), devmode.Options{Dir: dir, ServerAttester: att, Audit: audit.New(records, slogDiscard())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	return dir, records
}

func sgxServer(mut func(*sim.Identity)) sim.Identity {
	id := sim.Identity{MrEnclave: serverEnclave, MrSigner: serverSigner, IsvProdID: 1, IsvSVN: 3}
	if mut != nil {
		mut(&id)
	}
	return id
}

func tdxServer() sim.Identity {
	id := sim.Identity{MrTD: serverTD}
	id.Rtmr[1], id.Rtmr[2] = serverRtmr1, serverRtmr2
	return id
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAttack_ServerInTEEJudgedOnlyByMeasurement: a workload attesting a
// server in a TEE checked only the measurement and the debug bit, so a
// server on an OutOfDate or ConfigurationNeeded platform, with another
// isv_prod_id, or a TD pinned by mr_td alone was accepted and the key it
// sent was written. The server is now judged by a server policy with the
// policy engine's defaults; a refused server is sent nothing (its audit
// log stays empty) and no file is written.
func TestAttack_ServerInTEEJudgedOnlyByMeasurement(t *testing.T) {
	enc, signer := hex.EncodeToString(serverEnclave[:]), hex.EncodeToString(serverSigner[:])
	td, rtmr1, rtmr2 := hex.EncodeToString(serverTD[:]), hex.EncodeToString(serverRtmr1[:]), hex.EncodeToString(serverRtmr2[:])
	for _, tc := range []struct {
		name      string
		tee       claims.TEE
		id        sim.Identity
		tcbStatus string
		flags     []string
		code      int    // 0: accepted
		want      string // in stderr when refused
	}{
		{"server on an OutOfDate platform", claims.SGX, sgxServer(nil), "OutOfDate",
			[]string{"--server-mr-enclave", enc}, 1, "tcb status not allowed: tcb status \"OutOfDate\""},
		{"server on a ConfigurationNeeded platform", claims.SGX, sgxServer(nil), "ConfigurationNeeded",
			[]string{"--server-mr-enclave", enc}, 1, "tcb status not allowed"},
		{"server with another isv_prod_id (mr_signer)", claims.SGX, sgxServer(func(id *sim.Identity) { id.IsvProdID = 7 }), "",
			[]string{"--server-mr-signer", signer, "--server-isv-prod-id", "1"}, 1, "no matching app: isv_prod_id 7 not allowed"},
		{"server with another isv_prod_id (mr_enclave)", claims.SGX, sgxServer(func(id *sim.Identity) { id.IsvProdID = 7 }), "",
			[]string{"--server-mr-enclave", enc, "--server-isv-prod-id", "1"}, 1, "isv_prod_id 7 not allowed"},
		{"server below the minimum isv_svn", claims.SGX, sgxServer(nil), "",
			[]string{"--server-mr-enclave", enc, "--server-min-isv-svn", "4"}, 1, "isv_svn 3 not allowed"},
		{"debug server", claims.SGX, sgxServer(func(id *sim.Identity) { id.Debug = true }), "",
			[]string{"--server-mr-enclave", enc}, 1, "debug"},
		{"mr_signer without a product id", claims.SGX, sgxServer(nil), "",
			[]string{"--server-mr-signer", signer}, 2, "isv_prod_id: missing field"},
		{"TD pinned by mr_td alone", claims.TDX, tdxServer(), "",
			[]string{"--server-mr-td", td}, 2, "a tdx app must pin the TD's code"},
		{"TD and enclave mixed", claims.TDX, tdxServer(), "",
			[]string{"--server-mr-td", td, "--server-mr-enclave", enc}, 2, "either in an SGX enclave"},
		{"TD pinned by mr_td alone, policy file", claims.TDX, tdxServer(), "",
			[]string{"--server-policy", writeFile(t, "p.yaml", "allow_simulated: true\napps:\n  - id: server\n    tee: tdx\n    mr_td: "+td+"\n")}, 2, "it names only mr_td"},
		{"TD pinned by mr_td and the host-chosen mr_owner, policy file", claims.TDX, tdxServer(), "",
			[]string{"--server-policy", writeFile(t, "p.yaml", "allow_simulated: true\napps:\n  - id: server\n    tee: tdx\n    mr_td: "+td+"\n    mr_owner: "+td+"\n")}, 2, "chosen by the host"},
		{"another isv_prod_id, policy file", claims.SGX, sgxServer(func(id *sim.Identity) { id.IsvProdID = 7 }), "",
			[]string{"--server-policy", writeFile(t, "p.yaml", "allow_simulated: true\napps:\n  - id: server\n    tee: sgx\n    mr_signer: "+signer+"\n    isv_prod_id: 1\n")}, 1, "isv_prod_id 7 not allowed"},
		{"OutOfDate, policy file", claims.SGX, sgxServer(nil), "OutOfDate",
			[]string{"--server-policy", writeFile(t, "p.json", `{"allow_simulated": true, "apps": [{"id": "server", "tee": "sgx", "mr_enclave": "`+enc+`"}]}`)}, 1, "tcb status not allowed"},

		{"expected server", claims.SGX, sgxServer(nil), "", []string{"--server-mr-enclave", enc}, 0, ""},
		{"expected server by signer and product", claims.SGX, sgxServer(nil), "", []string{"--server-mr-signer", signer, "--server-isv-prod-id", "1", "--server-min-isv-svn", "3"}, 0, ""},
		{"TD pinned by mr_td and its kernel alone", claims.TDX, tdxServer(), "",
			[]string{"--server-mr-td", td, "--server-rtmr", "1=" + rtmr1}, 2, "missing rtmr2"},
		{"expected TD", claims.TDX, tdxServer(), "", []string{"--server-mr-td", td, "--server-rtmr", "1=" + rtmr1, "--server-rtmr", "2=" + rtmr2}, 0, ""},
		{"OutOfDate admitted by the policy file", claims.SGX, sgxServer(nil), "OutOfDate",
			[]string{"--server-policy", writeFile(t, "p.yaml", "allow_simulated: true\napps:\n  - id: server\n    tee: sgx\n    mr_enclave: "+enc+"\n    tcb_statuses: [UpToDate, OutOfDate]\n    advisory_ids: ['*']\n")}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, records := startServerInTEE(t, tc.tee, tc.id, tc.tcbStatus)
			out := filepath.Join(t.TempDir(), "out")
			code, _, stderr := run(t, append(append([]string{"fetch", "--dev-dir", dir, "--out", out}, tc.flags...), "demo-key")...)
			_, statErr := os.Stat(filepath.Join(out, "demo-key"))
			if tc.code == 0 {
				if code != 0 || statErr != nil || !strings.Contains(records.String(), "demo-key") {
					t.Fatalf("the expected server was refused: exit %d %v\n%s", code, statErr, stderr)
				}
				return
			}
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, stderr)
			}
			if statErr == nil {
				t.Fatal("the refused server's key was written")
			}
			if r := records.String(); r != "" {
				t.Fatalf("the refused server received a request: %s", r)
			}
		})
	}
}

// TestAttack_ServerInTEEOutOfDateRunWritesNoKey: the same attack against
// `asps run --file` (a real process: it execs): the program never runs and
// no key file is written.
func TestAttack_ServerInTEEOutOfDateRunWritesNoKey(t *testing.T) {
	dir, records := startServerInTEE(t, claims.SGX, sgxServer(nil), "OutOfDate")
	bin := buildBinary(t)
	keyFile := filepath.Join(t.TempDir(), "disk.key")
	marker := filepath.Join(t.TempDir(), "ran")
	out, err := exec.Command(bin, "run", "--dev-dir", dir, "--server-mr-enclave", hex.EncodeToString(serverEnclave[:]),
		"--file", "demo-key="+keyFile, "--", "touch", marker).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "tcb status not allowed") || !strings.Contains(string(out), "nothing was sent") {
		t.Fatalf("asps run with an OutOfDate server: %v\n%s", err, out)
	}
	for _, p := range []string{keyFile, marker} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists", p)
		}
	}
	if r := records.String(); r != "" {
		t.Fatalf("the refused server received a request: %s", r)
	}
}

// TestServerPolicyFlagsExclusive: a server policy and shorthands, or
// attestation and a pin, are not combined.
func TestServerPolicyFlagsExclusive(t *testing.T) {
	enc := strings.Repeat("ab", 32)
	for _, args := range [][]string{
		{"--server-policy", "p.yaml", "--server-mr-enclave", enc},
		{"--server-mr-enclave", enc, "--server-pin", strings.Repeat("11", 32)},
		{"--server-rtmr", "3=" + strings.Repeat("ab", 48)},
		{"--server-isv-prod-id", "70000", "--server-mr-enclave", enc},
	} {
		code, _, stderr := run(t, append(append([]string{"fetch", "--server", "127.0.0.1:1"}, args...), "demo-key")...)
		if code == 0 || !strings.Contains(stderr, "server-") {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
	}
}
