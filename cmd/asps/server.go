package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/asps-project/asps/internal/fileread"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	flag "github.com/spf13/pflag"

	"github.com/asps-project/asps/attest"
	"github.com/asps-project/asps/audit"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/policy"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/server"
	"github.com/asps-project/asps/store"
)

func init() {
	register(command{name: "server", summary: "run the provisioning server (production mode)", run: serverCmd})
}

// envDefault returns the environment variable's value, or def.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func serverCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("server", stderr)
	policyPath := fs.String("policy", envDefault("ASPS_POLICY", ""), "policy `FILE` (JSON or YAML; Intel ASPS and Occlum formats are imported) [ASPS_POLICY]")
	listen := fs.String("listen", envDefault("ASPS_LISTEN", ":7443"), "gRPC listen `ADDR` [ASPS_LISTEN]")
	storeSpec := fs.String("store", envDefault("ASPS_STORE", ""), "secret store: file:PATH, or vault (with the --vault-* flags) [ASPS_STORE]")
	vaultAddr := fs.String("vault-addr", envDefault("VAULT_ADDR", ""), "Vault/OpenBao `URL`, or the comma-separated URLs of a cluster's nodes (failover) [VAULT_ADDR]")
	vaultCA := fs.String("vault-ca", envDefault("VAULT_CACERT", ""), "CA `PEM` for Vault's TLS [VAULT_CACERT]")
	vaultNS := fs.String("vault-namespace", envDefault("VAULT_NAMESPACE", ""), "Vault namespace [VAULT_NAMESPACE]")
	vaultKV := fs.Int("vault-kv-version", 1, "KV version of references without a kv1:/kv2: prefix")
	roleID := fs.String("vault-role-id", envDefault("VAULT_ROLE_ID", ""), "AppRole role ID [VAULT_ROLE_ID] (the secret ID comes from VAULT_SECRET_ID)")
	var cf collateralFlags
	cf.register(fs, true)
	tlsCert := fs.String("tls-cert", envDefault("ASPS_TLS_CERT", ""), "server certificate `PEM` (default: a fresh self-signed one; its pin is printed)")
	tlsKey := fs.String("tls-key", envDefault("ASPS_TLS_KEY", ""), "server key `PEM`")
	serverTEE := fs.String("attester", envDefault("ASPS_ATTESTER", envDefault("ASPS_TEE", "")), "the server runs in a TEE and gets its evidence from `ATTESTER` (gramine, occlum, tsm): present an RA-TLS certificate so workloads can attest it [ASPS_ATTESTER]")
	alias(fs, "tee", "attester")
	auditPath := fs.String("audit", envDefault("ASPS_AUDIT", ""), "append audit records (JSON lines) to `FILE` [ASPS_AUDIT]")
	metricsAddr := fs.String("metrics-listen", envDefault("ASPS_METRICS_LISTEN", ""), "serve Prometheus /metrics and /healthz on `ADDR`")
	simRoot := fs.String("insecure-simulator-root", "", "INSECURE, dev only: trust this simulator root `PEM` instead of Intel's")
	maxConns := fs.Int("max-conns", 4096, "cap on open connections; at the cap the oldest connection not yet attested is closed for a new one (negative: no cap)")
	maxConnsPerIP := fs.Int("max-conns-per-ip", 256, "cap on open connections from one source address (an IPv6 /64; an IPv6 /48 gets 8 times it) (negative: no cap)")
	handshakeTimeout := fs.Duration("handshake-timeout", 5*time.Second, "bound on the TLS handshake")
	unauthLife := fs.Duration("unattested-conn-lifetime", 30*time.Second, "close a connection on which no request has been attested within this time")
	failRate := fs.Float64("failed-attestation-rate", 2, "failed attestations per second allowed per source address; over it (after --failed-attestation-burst) its requests are refused with RESOURCE_EXHAUSTED")
	failBurst := fs.Int("failed-attestation-burst", 20, "failed attestations a source address may make at once")
	sh := shedFlags(fs)
	auditMaxSize := fs.Int("audit-max-size", audit.DefaultRotation.MaxSizeMB, "rotate the audit file at this many `MB`")
	auditMaxBackups := fs.Int("audit-max-backups", audit.DefaultRotation.MaxBackups, "rotated audit files to keep")
	auditMaxAge := fs.Int("audit-max-age", 0, "remove rotated audit files older than this many `days` (0: by count only)")
	stateDir := fs.String("state-dir", defaultStateDir(), "without --tls-cert, keep the generated server key in `DIR`, so its pin survives restarts [ASPS_STATE_DIR, STATE_DIRECTORY, XDG_STATE_HOME/asps]")
	verdictCacheBytes := fs.Int64("verdict-cache-bytes", ratls.DefaultCacheBytes, "bound the RA-TLS verdict cache (verified claims by certificate hash; about 1.2 KB per SGX verdict, 1.7 KB per TDX) to `N` bytes (0: no cache, every connection verifies its quote)")
	negCacheBytes := fs.Int64("negative-cache-bytes", ratls.DefaultNegativeCacheBytes, "bound the cache of recently refused certificates (about 0.55 KB each) to `N` bytes (0: none)")
	logFormat := logFormatFlag(fs, "json")
	configPath := fs.String("config", envDefault("ASPS_CONFIG", ""), "read settings from a YAML/JSON `FILE` of flag name → value; flags given on the command line win [ASPS_CONFIG]")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if *configPath != "" {
		if err := applyConfigFile(fs, *configPath); err != nil {
			return &exitError{code: 2, msg: err.Error()}
		}
	}
	logger, err := newLogger(*logFormat, stderr, nil)
	if err != nil {
		return err
	}
	if *verdictCacheBytes < 0 || *negCacheBytes < 0 {
		return usageError("--verdict-cache-bytes and --negative-cache-bytes: want 0 (no cache) or a number of bytes")
	}
	if *policyPath == "" {
		return &exitError{code: 2, msg: "--policy is required"}
	}
	if err := sh.validate(); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	dev := *simRoot != ""

	// Trust anchor.
	var dopts []dcap.Option
	anchors := []*x509.Certificate{dcap.IntelRootCA()}
	if dev {
		b, err := fileread.Read(*simRoot, maxPEMFile)
		if err != nil {
			return fmt.Errorf("--insecure-simulator-root: %w", err)
		}
		roots, err := dcap.ParseChainPEM(b, "simulator root")
		if err != nil {
			return err
		}
		dopts = append(dopts, dcap.WithTrustAnchors(roots...))
		anchors = roots
		logger.Warn("INSECURE DEV MODE: trusting a SIMULATOR root instead of Intel's SGX Root CA; simulated enclaves will be accepted", "root", roots[0].Subject.CommonName)
	}
	dv := dcap.NewVerifier(dopts...)

	// Policy: ours, or imported from Intel ASPS / Occlum.
	holder, inline, vaultFromPolicy, err := loadServerPolicy(*policyPath, dev, logger)
	if err != nil {
		return err
	}

	// Store.
	st, err := openStore(*storeSpec, store.VaultConfig{
		Address: firstNonEmpty(*vaultAddr, vaultFromPolicy), Token: os.Getenv("VAULT_TOKEN"), Namespace: *vaultNS,
		CACert: *vaultCA, KVVersion: *vaultKV,
	}, *roleID)
	if err != nil {
		return err
	}

	// Collateral: a file, an offline bundle, or a PCCS with a cache.
	src, closeSrc, err := cf.source(anchors, nil)
	if err != nil {
		return err
	}
	defer closeSrc()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(collateralCollector(src))
	metrics := server.NewMetrics(reg, dv)
	qv := &ratls.DCAPVerifier{Verifier: dv, Collateral: collateralFunc(src), Observe: metrics.ObserveVerify,
		Generation: collateralGeneration(src)}
	// Debug enclaves pass the RA-TLS layer so that the policy refuses them
	// (unless an app sets allow_debug) with a reason and an audit record.
	cacheBytes := func(n int64) int64 {
		if n == 0 {
			return -1 // off
		}
		return n
	}
	rv := ratls.NewVerifier(qv, ratls.VerifyOptions{AllowDebug: true,
		CacheBytes: cacheBytes(*verdictCacheBytes), NegativeCacheBytes: cacheBytes(*negCacheBytes)})
	metrics.ObserveVerdictCache(rv)

	cert, err := serverCertificate(*tlsCert, *tlsKey, *serverTEE, *stateDir, stdout, logger)
	if err != nil {
		return err
	}
	var al *audit.Logger
	if *auditPath != "" {
		rot := audit.Rotation{MaxSizeMB: *auditMaxSize, MaxBackups: *auditMaxBackups, MaxAgeDays: *auditMaxAge}
		if al, err = audit.OpenRotating(*auditPath, rot, logger); err != nil {
			return err
		}
		defer al.Close()
	} else {
		al = audit.New(nil, logger)
	}
	srv, err := server.New(server.Options{Certificate: cert, Verifier: rv, Policy: holder, Store: st, Inline: inline, Audit: al, Logger: logger, Metrics: metrics,
		Dev: dev, Limits: server.Limits{MaxConns: *maxConns, MaxConnsPerIP: *maxConnsPerIP, HandshakeTimeout: *handshakeTimeout, UnauthenticatedLifetime: *unauthLife,
			FailedAttestationRate: *failRate, FailedAttestationBurst: *failBurst, DrainDelay: 2 * time.Second,
			MaxInFlight: sh.maxInFlight, MaxQueue: sh.maxWaiting, QueueWait: sh.maxWait, ShedRetryAfter: sh.retryAfter,
			MaxVerifications: sh.maxVerify}})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go holder.Watch(ctx, 2*time.Second, logger)
	reloaders := []reloader{{"policy", holder.Reload}}
	if sf, ok := st.(*store.File); ok && sf.Path() != "" {
		// The secrets file reloads like the policy: on change and SIGHUP.
		go sf.Watch(ctx, 2*time.Second, logger)
		reloaders = append(reloaders, reloader{"secrets file", sf.Reload})
	}
	go reloadOnHUP(ctx, logger, reloaders...)
	if *metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", server.MetricsHandler(reg))
		// The health probe without a client certificate (the gRPC port
		// refuses those at the handshake) reports the store checker's last
		// result and the audit log's health: no store call per probe, no
		// store error text to anonymous callers.
		mux.Handle("/healthz", srv.HealthHandler())
		hs := server.NewHTTPServer(mux)
		ml, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		go func() {
			if err := server.ServeHTTP(hs, ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics listener", "err", err)
			}
		}()
		defer hs.Close()
	}
	// gRPC health follows the store: NOT_SERVING while it is unreachable,
	// so a load balancer sends workloads to an instance that can answer.
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		healthy := true
		for {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := st.Check(cctx)
			cancel()
			if ok := err == nil; ok != healthy {
				healthy = ok
				srv.SetServing(ok)
				if ok {
					logger.Info("store reachable again; serving")
				} else {
					logger.Error("store unreachable; health is NOT_SERVING", "err", err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	logger.Info("asps server listening", "addr", l.Addr().String(), "policy", *policyPath, "store", st.Kind(), "dev", dev)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		logger.Info("shutting down: finishing in-flight requests")
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			srv.Stop()
		}
		return nil
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// loadServerPolicy loads our policy format, or imports Intel ASPS's or
// Occlum's. A policy that admits simulated evidence is refused outside dev
// mode, on load and on every reload.
func loadServerPolicy(path string, dev bool, logger *slog.Logger) (*policy.Holder, store.Store, string, error) {
	check := func(p *policy.Policy) error {
		if p.AllowSimulated && !dev {
			return errors.New("the policy sets allow_simulated, which a production server refuses (run with --insecure-simulator-root for dev)")
		}
		return nil
	}
	h, ownErr := policy.NewHolder(path, check)
	if ownErr == nil {
		return h, nil, "", nil
	} else if !errors.Is(ownErr, policy.ErrUnknownField) && !errors.Is(ownErr, policy.ErrSyntax) {
		return nil, nil, "", policyFileError(path, ownErr)
	}
	// Intel ASPS's or Occlum's format, imported again on every reload.
	// Values written inline in it travel inside the imported policy
	// (policy.SecretRef.InlineValue): a request reads those of the policy
	// that matched it, whatever reloads happen meanwhile.
	var vaultAddr string
	parse := func(data []byte) (*policy.Policy, error) {
		imp, err := policy.Import(data)
		if err != nil {
			return nil, err
		}
		for _, w := range imp.Warnings {
			logger.Warn("policy import", "file", path, "warning", w)
		}
		p := imp.Policy
		if imp.Format == "occlum" {
			// Occlum's secret file holds base64 text; the store holds
			// the bytes, and the Occlum service encodes them again.
			vals := make(map[string][]byte, len(imp.Inline))
			for ref, v := range imp.Inline {
				b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(v)))
				if err != nil {
					return nil, fmt.Errorf("secret %s is not base64 as Occlum's secret file requires", ref)
				}
				vals[ref] = b
			}
			if p, err = p.WithInline(vals); err != nil {
				return nil, err
			}
		}
		// The imported formats cannot say allow_simulated; dev mode
		// (--insecure-simulator-root) stands for it.
		p.AllowSimulated = dev
		vaultAddr = imp.VaultAddr
		return p, nil
	}
	h, err := policy.NewHolderWith(path, parse, check)
	if errors.Is(err, policy.ErrUnknownFormat) {
		// Not a foreign format either: the error in ours says more.
		return nil, nil, "", policyFileError(path, ownErr)
	}
	if err != nil {
		return nil, nil, "", policyFileError(path, err)
	}
	return h, nil, vaultAddr, nil
}

// policyFileError names the policy file once: the policy package's errors
// usually start with the path already.
func policyFileError(path string, err error) error {
	if strings.HasPrefix(err.Error(), path+":") {
		return fmt.Errorf("policy file %w", err)
	}
	return fmt.Errorf("policy file %s: %w", path, err)
}

func openStore(spec string, vc store.VaultConfig, roleID string) (store.Store, error) {
	switch {
	case strings.HasPrefix(spec, "file:"):
		return store.OpenFile(strings.TrimPrefix(spec, "file:"))
	case spec == "vault":
		if roleID != "" {
			vc.Token = ""
			vc.AppRole = &store.AppRole{RoleID: roleID, SecretID: os.Getenv("VAULT_SECRET_ID")}
		}
		return store.NewVault(vc)
	case spec == "" && vc.Address != "":
		return store.NewVault(vc)
	}
	return nil, &exitError{code: 2, msg: "--store: file:PATH or vault"}
}

// serverCertificate is the server's TLS certificate: an RA-TLS one from its
// TEE (--attester), the operator's (--tls-cert), or a self-signed one for
// the key kept in the state directory. The pin is printed on stdout (for
// scripts) and logged as a record (for log collectors), never mixed into
// the log stream as plain text.
func serverCertificate(certPath, keyPath, tee, stateDir string, stdout io.Writer, logger *slog.Logger) (tls.Certificate, error) {
	if tee != "" {
		a, err := attest.ByName(tee)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("--attester: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// The quote inside does not age; clients verify it against
		// current collateral on every connection.
		c, err := ratls.NewCertificate(ctx, a, ratls.CertOptions{SubjectCN: "asps server", Validity: 365 * 24 * time.Hour})
		if err != nil {
			return c, fmt.Errorf("--attester: RA-TLS certificate: %w", err)
		}
		pin := ratls.SPKIHash(c.Leaf)
		fmt.Fprintf(stdout, "server RA-TLS certificate from %s; key pin %x\n", a.Name(), pin)
		logger.Info("server key pin", "pin", hex.EncodeToString(pin[:]), "certificate", "ra-tls", "attester", a.Name())
		return c, nil
	}
	if certPath != "" {
		// Regular files of bounded size (tls.LoadX509KeyPair reads
		// whatever the paths name, whole).
		certPEM, err := fileread.Read(certPath, maxPEMFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("--tls-cert: %w", err)
		}
		keyPEM, err := fileread.Read(keyPath, maxPEMFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("--tls-key: %w", err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return c, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		if c.Leaf == nil {
			c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
		}
		return c, nil
	}
	c, pin, created, err := stateServerCert(stateDir)
	if err != nil {
		return c, err
	}
	fmt.Fprintf(stdout, "server key pin (give clients --server-pin): %x\n", pin)
	logger.Info("server key pin", "pin", hex.EncodeToString(pin[:]), "certificate", "self-signed", "key", filepath.Join(stateDir, serverKeyFile), "generated", created)
	return c, nil
}

// maxPEMFile bounds the PEM files the server reads (its TLS key pair, a
// simulator root, its state key): a certificate chain is a few kilobytes.
const maxPEMFile = 1 << 20

// shedding holds the load-shedding flags of `asps server`.
type shedding struct {
	maxInFlight, maxWaiting, maxVerify int
	maxWait, retryAfter                time.Duration
}

func shedFlags(fs *flag.FlagSet) *shedding {
	s := &shedding{}
	fs.IntVar(&s.maxInFlight, "max-in-flight", 64, "provisioning requests served at once; more wait (--max-waiting) or are shed with RESOURCE_EXHAUSTED and a retry hint")
	fs.IntVar(&s.maxWaiting, "max-waiting", 256, "requests that may wait for a slot when --max-in-flight are in progress; beyond, they are shed at once")
	fs.DurationVar(&s.maxWait, "max-wait", time.Second, "how long a waiting request may wait for a slot before it is shed")
	fs.DurationVar(&s.retryAfter, "shed-retry-after", 250*time.Millisecond, "the retry hint sent with a shed request (clients wait at least this long, with jitter)")
	fs.IntVar(&s.maxVerify, "max-verifications", 0, "RA-TLS verifications of certificates not yet verified that run at once (0: half the CPUs); four times as many wait briefly, more are refused with RESOURCE_EXHAUSTED. Verified certificates skip it")
	return s
}

// validate refuses limits that would shed everything or mean nothing.
func (s *shedding) validate() error {
	for _, c := range []struct {
		name string
		ok   bool
		val  string
	}{
		{"max-in-flight", s.maxInFlight > 0, strconv.Itoa(s.maxInFlight)},
		{"max-waiting", s.maxWaiting > 0, strconv.Itoa(s.maxWaiting)},
		{"max-wait", s.maxWait > 0, s.maxWait.String()},
		{"shed-retry-after", s.retryAfter > 0 && s.retryAfter <= time.Minute, s.retryAfter.String()},
		{"max-verifications", s.maxVerify >= 0, strconv.Itoa(s.maxVerify)},
	} {
		if !c.ok {
			want := "a positive value"
			switch c.name {
			case "shed-retry-after":
				want = "a duration above 0 and at most 1m"
			case "max-verifications":
				want = "0 (half the CPUs) or more"
			}
			return fmt.Errorf("--%s %s: want %s", c.name, c.val, want)
		}
	}
	return nil
}
