package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/asps-project/asps/attest"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/internal/fileread"
	"github.com/asps-project/asps/policy"
	"github.com/asps-project/asps/ratls"
	flag "github.com/spf13/pflag"
)

func init() {
	register(command{name: "demo", summary: "end-to-end demo on embedded defaults: a dev server and simulated enclaves on loopback", run: demo})
	register(command{name: "dev", summary: "run a dev server trusting the simulator (no set-up; never for production)", run: dev})
	register(command{name: "fetch", summary: "fetch secrets from a server as an attested workload", run: fetch})
	register(command{name: "whoami", summary: "ask the server how it sees this workload", run: whoami})
}

// secretLine prints a secret as Intel's ASPS client does: "Secret
// received: 42-cd-4b-…".
func secretLine(v []byte) string {
	parts := make([]string, len(v))
	for i, b := range v {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return "Secret received: " + strings.Join(parts, "-")
}

func demo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, err := devmode.Start(ctx, devmode.Options{})
	if err != nil {
		return err
	}
	defer env.Stop()
	fmt.Fprintf(stdout, "asps demo: server on %s, trusting the SIMULATOR root (dev mode: simulated enclaves, never production)\n\n", env.Addr)
	fmt.Fprintf(stdout, "policy (%s):\n", env.PolicyPath)
	for _, l := range strings.Split(strings.TrimSpace(string(devmode.DemoPolicy())), "\n") {
		fmt.Fprintln(stdout, "  "+l)
	}
	fmt.Fprintln(stdout)

	try := func(label string, tee claims.TEE, id sim.Identity, names ...string) ([]client.Secret, error) {
		fmt.Fprintf(stdout, "-- %s asks for %s\n", label, strings.Join(names, ", "))
		c, err := env.Client(ctx, tee, id)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		s, err := c.GetSecrets(ctx, names...)
		if err != nil {
			fmt.Fprintf(stdout, "   refused: %v\n\n", err)
			return nil, err
		}
		return s, nil
	}
	dbg := devmode.DemoIdentity(claims.SGX)
	dbg.Debug = true
	try("the demo enclave built in DEBUG mode", claims.SGX, dbg, "demo-key")
	other := devmode.DemoIdentity(claims.SGX)
	other.MrEnclave[0] ^= 0xff
	try("an enclave with another MRENCLAVE", claims.SGX, other, "demo-key")
	try("the demo enclave", claims.SGX, devmode.DemoIdentity(claims.SGX), "other-app")

	s, err := try("the demo enclave", claims.SGX, devmode.DemoIdentity(claims.SGX), "demo-key")
	if err != nil {
		return fmt.Errorf("the demo enclave was refused: %w", err)
	}
	fmt.Fprintln(stdout, "   released over the attested channel; the audit log names it, never its value")
	fmt.Fprintln(stdout, secretLine(s[0].Value))
	return nil
}

func dev(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	listen := fs.String("listen", "127.0.0.1:7443", "listen `ADDR`")
	dir := fs.String("dev-dir", defaultDevDir(), "keep the simulator PKI, the policy and the server pin in `DIR`")
	alias(fs, "dir", "dev-dir")
	attested := fs.Bool("attested-server", false, "the server presents an RA-TLS certificate from a simulated enclave, so workloads attest it too (mutual attestation)")
	logFormat := logFormatFlag(fs, "text")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(*logFormat, stderr, nil)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := devmode.Start(ctx, devmode.Options{Listen: *listen, Dir: *dir, Logger: logger, AttestedServer: *attested})
	if err != nil {
		return err
	}
	defer env.Stop()
	go env.Policy.Watch(ctx, time.Second, logger)
	go reloadOnHUP(ctx, logger, reloader{"policy", func() error { return env.Policy.Reload() }})
	logger.Warn("DEV MODE: this server trusts the asps SIMULATOR root; simulated enclaves are accepted. Never use it for real secrets.")
	attestFlag := ""
	if *attested {
		attestFlag = fmt.Sprintf(" --server-mr-enclave %x", devmode.DemoServerMrEnclave)
	}
	self := invokedAs()
	fmt.Fprintf(stdout, `asps dev server on %s (simulator root; demo policy %s)
server key pin: %x

Next, in another shell:
  %s fetch --server %s --dev-dir %s%s --format hex demo-key db-password
  %s whoami --server %s --dev-dir %s%s
Edit %s and the server reloads it.
`, env.Addr, env.PolicyPath, env.ServerPin, self, env.Addr, shellQuote(*dir), attestFlag, self, env.Addr, shellQuote(*dir), attestFlag, env.PolicyPath)
	<-ctx.Done()
	logger.Info("shutting down")
	return nil
}

// invokedAs is the binary as the user ran it ("./asps", "asps",
// "/usr/local/bin/asps"), for commands printed to be pasted.
func invokedAs() string {
	if len(os.Args) == 0 || os.Args[0] == "" || strings.HasSuffix(os.Args[0], ".test") {
		return "asps"
	}
	return shellQuote(os.Args[0])
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+@%,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func defaultDevDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "asps", "dev")
	}
	return filepath.Join(os.TempDir(), "asps-dev")
}

// reloader is one file a SIGHUP reloads: "policy", "secrets file".
type reloader struct {
	what   string
	reload func() error
}

// reloadOnHUP reloads each file on SIGHUP; a file that fails keeps its
// old content in force, and the log says why.
func reloadOnHUP(ctx context.Context, logger *slog.Logger, rs ...reloader) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			for _, r := range rs {
				if err := r.reload(); err != nil {
					logger.Error(r.what+" reload on SIGHUP failed; the old "+r.what+" stays in force", "err", err)
				} else {
					logger.Info(r.what + " reloaded on SIGHUP")
				}
			}
		}
	}
}

// clientFlags are the flags of every command that talks to a server as a
// workload.
type clientFlags struct {
	server, pin, ca, serverName string
	// Attesting the server (it runs in a TEE): a server policy, or the
	// shorthands that build one; and where the collateral for its quote
	// comes from.
	serverPolicy                                string
	serverMrEnclave, serverMrSigner, serverMrTD string
	serverIsvProdID                             string
	serverMinIsvSvn                             uint
	serverRtmr                                  rtmrFlags
	serverCollateral                            collateralFlags
	tee, devDir, simTEE                         string
	simID                                       simIdentityFlags
	timeout                                     time.Duration
	// sessionEvidence sends a fresh quote over the connection's TLS
	// exporter after the handshake (apps with binding: tcg-nonce).
	sessionEvidence bool
}

// rtmrFlags is --server-rtmr I=HEX, repeatable, I in 0..2.
type rtmrFlags [3]string

func (r *rtmrFlags) String() string { return "" }

func (r *rtmrFlags) Type() string { return "I=HEX" }

func (r *rtmrFlags) Set(v string) error {
	i, h, ok := strings.Cut(v, "=")
	if !ok || len(i) != 1 || i[0] < '0' || i[0] > '2' || h == "" {
		return errors.New("want I=HEX with I 0, 1 or 2 (rtmr3 is extended at run time: use --server-policy to narrow by it)")
	}
	if r[i[0]-'0'] != "" {
		return fmt.Errorf("rtmr%s given twice", i)
	}
	r[i[0]-'0'] = h
	return nil
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "server `ADDR` (host:port)")
	fs.StringVar(&f.pin, "server-pin", "", "trust the server by the SHA-256 of its key (`HEX`, as asps dev prints)")
	fs.StringVar(&f.ca, "server-ca", "", "trust the server by a CA certificate `PEM`")
	fs.StringVar(&f.serverName, "server-name", "", "the name the server's certificate must carry (with --server-ca)")
	fs.StringVar(&f.serverPolicy, "server-policy", "", "attest the server (it runs in a TEE) and judge it by a policy `FILE` in the policy format: its apps describe the acceptable server (no secrets list needed); TCB status, advisories, debug, product id and SVN defaults as for workloads")
	fs.StringVar(&f.serverMrEnclave, "server-mr-enclave", "", "attest the server (it runs in an SGX enclave): its MRENCLAVE `HEX` (shorthand for a one-app --server-policy, with its defaults: UpToDate only, no advisories, no debug)")
	fs.StringVar(&f.serverMrSigner, "server-mr-signer", "", "attest the server: its MRSIGNER `HEX` (needs --server-isv-prod-id unless --server-mr-enclave is given)")
	fs.StringVar(&f.serverIsvProdID, "server-isv-prod-id", "", "attest the server: its ISVPRODID `N`")
	fs.UintVar(&f.serverMinIsvSvn, "server-min-isv-svn", 0, "attest the server: its minimum ISVSVN `N`")
	fs.StringVar(&f.serverMrTD, "server-mr-td", "", "attest the server (it runs in a TDX guest): its MRTD `HEX`; needs --server-rtmr 1=HEX and 2=HEX (MRTD alone measures only the firmware)")
	fs.Var(&f.serverRtmr, "server-rtmr", "attest the server (TDX): RTMR `I=HEX`, I 0..2 (repeatable)")
	fs.StringVar(&f.serverCollateral.pccs, "server-pccs", "", "PCS/PCCS `URL` for the collateral of the server's quote")
	fs.StringVar(&f.serverCollateral.dir, "server-collateral-dir", "", "collateral bundle `DIR` for the server's quote")
	fs.BoolVar(&f.sessionEvidence, "session-evidence", false, "after the handshake, send a second quote bound to this connection (its TLS exporter), so a recorded quote cannot be replayed; required by apps whose policy sets binding: tcg-nonce")
	fs.StringVar(&f.tee, "attester", "auto", "`NAME` of the evidence source: auto (detect), gramine, occlum, tsm (TDX configfs-tsm), or sim (dev mode only, with --dev-dir)")
	fs.StringVar(&f.devDir, "dev-dir", "", "dev mode: the `DIR` of `asps dev` (simulator PKI and server pin); implies --attester sim")
	f.simTEE = "sgx"
	fs.Var(teeValue{f}, "tee", "dev mode: simulate an `sgx` enclave or a tdx trust domain")
	alias(fs, "sim-tee", "tee")
	f.simID.register(fs)
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up after `D`")
}

// connect dials the server within the --timeout; done closes the
// connection and releases the deadline.
func (f *clientFlags) connect() (ctx context.Context, c *client.Client, done func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	if c, err = f.dial(ctx); err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, c, func() { c.Close(); cancel() }, nil
}

func (f *clientFlags) dial(ctx context.Context) (*client.Client, error) {
	if f.server == "" {
		if f.devDir == "" {
			return nil, &exitError{code: 2, msg: "--server is required"}
		}
		b, err := fileread.Read(filepath.Join(f.devDir, "server.addr"), maxPinFile)
		if err != nil {
			return nil, usageError("--server is required: %s has no server.addr (start `asps dev --dev-dir %s` first, or give --server ADDR)", f.devDir, shellQuote(f.devDir))
		}
		f.server = strings.TrimSpace(string(b))
	}
	auth, judge, err := f.serverAuth()
	if err != nil {
		return nil, err
	}
	a, err := f.attester()
	if err != nil {
		return nil, err
	}
	return client.Dial(ctx, client.Config{Server: f.server, Attester: a, ServerAuth: auth, ServerJudge: judge, SessionEvidence: f.sessionEvidence})
}

// attestsServer reports whether the server is to be attested (it runs in
// a TEE): a server policy or any of its shorthands is given.
func (f *clientFlags) attestsServer() bool {
	return f.serverPolicy != "" || f.serverMrEnclave != "" || f.serverMrSigner != "" || f.serverMrTD != "" ||
		f.serverIsvProdID != "" || f.serverMinIsvSvn != 0 || f.serverRtmr != rtmrFlags{}
}

// serverAuth says how to authenticate the server; judge is set when the
// server is attested and judged by a server policy.
func (f *clientFlags) serverAuth() (auth ratls.ServerAuth, judge *client.ServerJudge, err error) {
	if f.attestsServer() {
		if f.pin != "" || f.ca != "" {
			return ratls.ServerAuth{}, nil, &exitError{code: 2, msg: "attest the server (--server-policy, --server-mr-*) or trust it by --server-pin / --server-ca, not both"}
		}
		return f.serverByRATLS()
	}
	pin := f.pin
	if pin == "" && f.devDir != "" && f.ca == "" {
		// Regular file, bounded (a pin is 64 hex digits): a FIFO in the
		// dev dir cannot hang the client.
		b, err := fileread.Read(filepath.Join(f.devDir, "server.pin"), maxPinFile)
		if err != nil {
			return ratls.ServerAuth{}, nil, fmt.Errorf("--dev-dir: %w", err)
		}
		pin = strings.TrimSpace(string(b))
	}
	switch {
	case pin != "":
		b, err := hex.DecodeString(pin)
		if err != nil || len(b) != 32 {
			return ratls.ServerAuth{}, nil, &exitError{code: 2, msg: "--server-pin: want 64 hex digits"}
		}
		return ratls.ServerByPin([32]byte(b)), nil, nil
	case f.ca != "":
		pem, err := fileread.Read(f.ca, maxPEMFile)
		if err != nil {
			return ratls.ServerAuth{}, nil, fmt.Errorf("--server-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return ratls.ServerAuth{}, nil, &exitError{code: 2, msg: "--server-ca: no certificate in " + f.ca}
		}
		return ratls.ServerByCA(pool, f.serverName), nil, nil
	}
	return ratls.ServerAuth{}, nil, &exitError{code: 2, msg: "say how to trust the server: --server-pin HEX or --server-ca PEM"}
}

// serverPolicyOf returns the server policy: --server-policy FILE, or the
// one-app policy the shorthands describe. Either goes through the policy
// package's parser, so a shorthand cannot accept less than a policy file:
// --server-mr-td alone, or --server-mr-signer without a product id, is
// refused as it would be in a policy.
func (f *clientFlags) serverPolicyOf() (*policy.Policy, error) {
	dev := f.devDir != ""
	if f.serverPolicy != "" {
		if f.serverMrEnclave != "" || f.serverMrSigner != "" || f.serverMrTD != "" || f.serverIsvProdID != "" || f.serverMinIsvSvn != 0 || f.serverRtmr != (rtmrFlags{}) {
			return nil, &exitError{code: 2, msg: "--server-policy describes the server: give it alone, without --server-mr-* / --server-isv-prod-id / --server-min-isv-svn / --server-rtmr"}
		}
		p, err := client.LoadServerPolicy(f.serverPolicy, dev)
		if err != nil {
			return nil, &exitError{code: 2, msg: "--server-policy: " + err.Error()}
		}
		return p, nil
	}
	id := client.ServerIdentity{MrEnclave: f.serverMrEnclave, MrSigner: f.serverMrSigner, MrTd: f.serverMrTD, Rtmr: f.serverRtmr, AllowSimulated: dev}
	if f.serverIsvProdID != "" {
		n, err := strconv.ParseUint(f.serverIsvProdID, 10, 16)
		if err != nil {
			return nil, &exitError{code: 2, msg: "--server-isv-prod-id: want a whole number 0..65535"}
		}
		v := uint16(n)
		id.IsvProdID = &v
	}
	if f.serverMinIsvSvn > 0xffff {
		return nil, &exitError{code: 2, msg: "--server-min-isv-svn: want a whole number 0..65535"}
	}
	id.MinIsvSvn = uint16(f.serverMinIsvSvn)
	p, err := id.Policy()
	if err != nil {
		return nil, &exitError{code: 2, msg: "the --server-* flags do not pin the server (give --server-policy FILE for more): " + err.Error()}
	}
	return p, nil
}

// serverByRATLS attests the server: its RA-TLS certificate's quote must
// verify (Intel's root; the simulator's with --dev-dir) and its claims
// satisfy the server policy. The check runs in the TLS handshake, so a
// server the policy refuses is sent nothing: no client certificate, no
// request.
func (f *clientFlags) serverByRATLS() (ratls.ServerAuth, *client.ServerJudge, error) {
	p, err := f.serverPolicyOf()
	if err != nil {
		return ratls.ServerAuth{}, nil, err
	}
	judge, err := client.NewServerJudge(p)
	if err != nil {
		return ratls.ServerAuth{}, nil, err
	}
	opts := ratls.VerifyOptions{Check: judge.Check, AllowDebug: judge.AllowDebug()}
	var v *ratls.Verifier
	if f.devDir != "" {
		env := &devmode.Env{}
		pki, err := sim.LoadPKI(filepath.Join(f.devDir, "pki"))
		if err != nil {
			return ratls.ServerAuth{}, nil, fmt.Errorf("simulator PKI: %w", err)
		}
		env.PKI = pki
		if v, err = env.ServerVerifierWith(opts); err != nil {
			return ratls.ServerAuth{}, nil, err
		}
	} else {
		if !f.serverCollateral.set() {
			return ratls.ServerAuth{}, nil, &exitError{code: 2, msg: "to attest the server, give --server-pccs URL or --server-collateral-dir DIR"}
		}
		src, _, err := f.serverCollateral.source([]*x509.Certificate{dcap.IntelRootCA()}, nil)
		if err != nil {
			return ratls.ServerAuth{}, nil, err
		}
		qv := &ratls.DCAPVerifier{Verifier: dcap.NewVerifier(), Collateral: collateralFunc(src), Generation: collateralGeneration(src)}
		v = ratls.NewVerifier(qv, opts)
	}
	return ratls.ServerByRATLS(v), judge, nil
}

// teeValue is the client's --tee: sgx or tdx, the simulated TEE. For the
// scripts of the hand-rolled CLI, where --tee named the attester, an
// attester name (auto, gramine, occlum, tsm, sim) still sets --attester.
type teeValue struct{ f *clientFlags }

func (t teeValue) String() string {
	if t.f == nil {
		return "sgx"
	}
	return t.f.simTEE
}

func (t teeValue) Type() string { return "tee" }

func (t teeValue) Set(v string) error {
	switch v {
	case "sgx", "tdx":
		t.f.simTEE = v
	case "auto", "gramine", "occlum", "tsm", "sim":
		t.f.tee = v
	default:
		return fmt.Errorf("want sgx or tdx, got %s", quoteText(v))
	}
	return nil
}

func (f *clientFlags) attester() (attest.Attester, error) {
	tee := f.tee
	if f.devDir != "" {
		tee = "sim"
	}
	if err := f.simID.check(tee == "sim", claims.TEE(f.simTEE)); err != nil {
		return nil, err
	}
	switch tee {
	case "sim":
		if f.devDir == "" {
			return nil, &exitError{code: 2, msg: "--attester sim needs --dev-dir (the simulator PKI of `asps dev`)"}
		}
		pki, err := sim.LoadPKI(filepath.Join(f.devDir, "pki"))
		if err != nil {
			return nil, fmt.Errorf("simulator PKI: %w", err)
		}
		t := claims.TEE(f.simTEE)
		return f.simID.attester(pki, t)
	case "auto":
		return attest.Detect()
	default:
		return attest.ByName(tee)
	}
}

func fetch(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("fetch", stderr)
	var cf clientFlags
	cf.register(fs)
	out := fs.String("out", "", "write each secret to `DIR`/NAME (mode 0600) instead of stdout")
	format := fs.String("format", "raw", "stdout `FORMAT`: raw (one secret's bytes), hex, base64, intel (\"Secret received: 42-cd-…\") or json; with several secrets each line is labelled \"NAME: \"")
	names, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return usageError("no secret named; usage: asps fetch --server ADDR (--server-pin HEX | --server-ca PEM) SECRET...")
	}
	switch *format {
	case "raw", "hex", "base64", "intel", "json":
	default:
		return usageError("--format: raw, hex, base64, intel or json, not %s", quoteText(*format))
	}
	if *format == "raw" && *out == "" && len(names) > 1 {
		return usageError("--format raw prints one secret's bytes; for %d secrets use --format hex, base64 or json, or --out DIR", len(names))
	}
	ctx, c, done, err := cf.connect()
	if err != nil {
		return err
	}
	defer done()
	secrets, err := c.GetSecrets(ctx, names...)
	if err != nil {
		return err
	}
	if *out == "" {
		return printSecrets(stdout, stderr, secrets, *format)
	}
	for _, s := range secrets {
		if s.Name != filepath.Base(s.Name) || s.Name == "." || s.Name == ".." || strings.ContainsAny(s.Name, `/\`) {
			return &exitError{code: 2, msg: fmt.Sprintf("--out: secret name %q cannot be a file name in %s", s.Name, *out)}
		}
		if err := writeSecretFile(filepath.Join(*out, s.Name), s.Value); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", filepath.Join(*out, s.Name))
	}
	return nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// writeSecretFile writes a secret to path, mode 0600: to a new file in the
// same directory, synced, then renamed over path — never through a
// symlink at path, and never into a file another process has open.
func writeSecretFile(path string, v []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".asps-secret-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(v); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}

func whoami(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("whoami", stderr)
	var cf clientFlags
	cf.register(fs)
	format := fs.String("format", "text", "output `FORMAT`: text or json")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return usageError("--format: text or json, not %s", quoteText(*format))
	}
	ctx, c, done, err := cf.connect()
	if err != nil {
		return err
	}
	defer done()
	w, err := c.WhoAmI(ctx)
	if err != nil {
		return err
	}
	if *format == "json" {
		return writeJSON(stdout, whoamiFields(w, func(s string) string { return s }))
	}
	// Every text field is the server's: escaped, so it cannot drive the
	// terminal.
	printFields(stdout, whoamiFields(w, client.EscapeText), "")
	return nil
}

func init() {
	register(command{name: "bench provision", summary: "load test: concurrent simulated enclaves provisioning over RA-TLS", run: benchProvision})
}

func benchProvision(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench provision", stderr)
	var cf clientFlags
	cf.register(fs)
	clients := fs.Int("clients", 8, "concurrent simulated enclaves")
	dur := fs.Duration("duration", 5*time.Second, "how long to run")
	fresh := fs.Bool("fresh-evidence", false, "a new key pair and quote for every provision (default: one per client, as a workload process makes)")
	asJSON := fs.Bool("json", false, "print provisions_per_sec, p50_ms, p99_ms, errors, verdict_cache_answers, fresh_quotes_verified, client_cpu_s, server_cpu_s as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run (client and, when in-process, server; labelled "+devmode.BenchRoleLabel+"=client|server) to `FILE`")
	metricsURL := fs.String("metrics-url", "", "with --server: the server's Prometheus `URL` (http://HOST:PORT/metrics of asps server --metrics-listen), read before and after the run for verdict_cache_answers and fresh_quotes_verified")
	benchClient := fs.String("client", devmode.BenchClientGRPC, "`KIND` of load generator: grpc (grpc-go's client, a new ClientConn per provision, as a workload) or http2 (the same TLS handshake and gRPC call on a lean HTTP/2 connection: less of the shared CPU goes to the load generator)")
	serverPID := fs.Int("server-pid", 0, "with --server on this machine: the server's process `ID`, for server_cpu_s (/proc/PID/stat)")
	names, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *benchClient != devmode.BenchClientGRPC && *benchClient != devmode.BenchClientHTTP2 {
		return usageError("--client: %s or %s, not %s", devmode.BenchClientGRPC, devmode.BenchClientHTTP2, quoteText(*benchClient))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur+time.Minute)
	defer cancel()
	o := devmode.BenchOptions{Clients: *clients, Duration: *dur, FreshEvidence: *fresh, Names: names, Client: *benchClient}
	if cf.server == "" && cf.devDir == "" {
		if *metricsURL != "" || *serverPID != 0 {
			return usageError("--metrics-url and --server-pid are for a server given by --server (without it, bench provision runs its own server and reads its counters directly)")
		}
		// The server's goroutines carry a pprof label, so the run's CPU is
		// split between the load generator and the server.
		var env *devmode.Env
		var err error
		devmode.InProcessServerLabels(ctx, func(ctx context.Context) { env, err = devmode.Start(ctx, devmode.Options{}) })
		if err != nil {
			return err
		}
		defer env.Stop()
		o.Server = devmode.InProcessServer{Verifier: env.RATLS}
		o.Addr, o.ServerAuth = env.Addr, ratls.ServerByPin(env.ServerPin)
		if err := cf.simID.check(true, claims.TEE(cf.simTEE)); err != nil {
			return err
		}
		if o.Attester, err = cf.simID.attester(env.PKI, claims.TEE(cf.simTEE)); err != nil {
			return err
		}
	} else {
		if cf.devDir == "" {
			return &exitError{code: 2, msg: "with --server, give --dev-dir (the simulator PKI the server trusts)"}
		}
		if o.ServerAuth, _, err = cf.serverAuth(); err != nil {
			return err
		}
		if o.Attester, err = cf.attester(); err != nil {
			return err
		}
		if cf.server == "" {
			b, err := fileread.Read(filepath.Join(cf.devDir, "server.addr"), maxPinFile)
			if err != nil {
				return err
			}
			cf.server = strings.TrimSpace(string(b))
		}
		o.Addr = cf.server
		if *metricsURL != "" || *serverPID != 0 {
			o.Server = devmode.RemoteServer{MetricsURL: *metricsURL, PID: *serverPID}
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.CPUProfile = f
	}
	r, err := devmode.RunBench(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	mode := "reused certificates (one per client)"
	if r.FreshEvidence {
		mode = "fresh evidence (new key and quote per provision)"
	}
	fmt.Fprintf(stdout, "%d provisions in %.1fs with %d %s clients, %s: %.0f provisions/s, p50 %.2f ms, p99 %.2f ms, %d errors\n",
		r.Provisions, r.Seconds, r.Clients, r.Client, mode, r.ProvisionsPerSec, r.P50ms, r.P99ms, r.Errors)
	if r.VerdictCacheAnswers != nil {
		fmt.Fprintf(stdout, "server: %d answered from its verdict cache, %d quotes verified in full\n", *r.VerdictCacheAnswers, *r.FreshQuotesVerified)
	}
	fmt.Fprintf(stdout, "CPU: client %.2fs", r.ClientCPUSeconds)
	if r.ServerCPUSeconds > 0 {
		fmt.Fprintf(stdout, ", server %.2fs", r.ServerCPUSeconds)
	}
	if r.OtherCPUSeconds > 0 {
		fmt.Fprintf(stdout, ", Go runtime %.2fs", r.OtherCPUSeconds)
	}
	if r.ClientCPUShare > 0 {
		fmt.Fprintf(stdout, " (the load generator used %.0f%% of it)", 100*r.ClientCPUShare)
	}
	fmt.Fprintf(stdout, "; %s\n", r.CPUSplit)
	if r.ServerCPUPerProvisionMs > 0 {
		fmt.Fprintf(stdout, "CPU per provision: client %.2f ms, server %.2f ms\n", r.ClientCPUPerProvisionMs, r.ServerCPUPerProvisionMs)
	}
	if r.FirstError != "" {
		fmt.Fprintf(stdout, "first error: %s\n", r.FirstError)
	}
	return nil
}

// maxPinFile bounds the dev dir's server.pin (64 hex digits and a newline)
// and server.addr (a host:port), with room for blanks around them.
const maxPinFile = 4 << 10
