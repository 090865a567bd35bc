package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/collateral"
	flag "github.com/spf13/pflag"
)

func init() {
	register(command{name: "collateral fetch", summary: "fetch and verify collateral from Intel PCS or a PCCS into a bundle directory", run: collateralFetch})
	register(command{name: "collateral import", summary: "turn dcap-qvl collateral JSON files into a bundle directory", run: collateralImport})
	register(command{name: "collateral serve", summary: "serve a bundle directory as a PCCS-compatible mirror", run: collateralServe})
}

// collateralList is a repeatable, comma-separated flag.
type collateralList []string

func (l *collateralList) String() string { return strings.Join(*l, ",") }

func (l *collateralList) Type() string { return "list" }

func (l *collateralList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// collateralClientFlags configure the PCS/PCCS client.
type collateralClientFlags struct {
	pccs, apiKey, caFile, rootCRL, update string
	insecure, allowHTTP                   bool
	redirectOrigins                       collateralList
	timeout                               time.Duration
	retries                               int
}

func (f *collateralClientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.pccs, "pccs", "", "PCS or PCCS base `URL` (https://api.trustedservices.intel.com, https://pccs:8081)")
	fs.StringVar(&f.apiKey, "pccs-api-key", "", "Intel PCS API key (default $ASPS_PCS_API_KEY; prefer the variable: flags show in ps)")
	alias(fs, "api-key", "pccs-api-key")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM `FILE` of the CAs of the PCCS's TLS certificate")
	fs.BoolVar(&f.insecure, "insecure-tls", false, "do not verify the PCCS's TLS certificate (the documents are still verified by signature)")
	fs.StringVar(&f.rootCRL, "root-crl-url", "", "`URL` of the root CA CRL (default: Intel's for Intel PCS, PCCS/sgx/certification/v4/rootcacrl otherwise)")
	fs.StringVar(&f.update, "update", "", "TCB update: standard or early")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "timeout of each request")
	fs.IntVar(&f.retries, "retries", 2, "retries after a timeout or 5xx answer")
	fs.BoolVar(&f.allowHTTP, "pccs-allow-http", false, "accept a plain-http --pccs or --root-crl-url off loopback (anyone on the path can replay older collateral and read the API key)")
	fs.Var(&f.redirectOrigins, "pccs-redirect-origin", "also follow redirects to this `ORIGIN` (https://host[:port]); repeatable. Default: redirects stay on the URL's own origin")
}

func (f *collateralClientFlags) client() (*collateral.Client, error) {
	if f.apiKey == "" {
		f.apiKey = os.Getenv("ASPS_PCS_API_KEY")
	}
	retries := f.retries
	if retries == 0 {
		retries = -1 // the option's zero means the default
	}
	return collateral.NewClient(collateral.ClientOptions{
		BaseURL: f.pccs, APIKey: f.apiKey, CAFile: f.caFile, InsecureSkipVerify: f.insecure,
		RootCACRLURL: f.rootCRL, Update: f.update, Timeout: f.timeout, Retries: retries,
		AllowHTTP: f.allowHTTP, RedirectOrigins: f.redirectOrigins,
	})
}

// collateralTrustRoots reads --trust-root (none: Intel's SGX Root CA).
func collateralTrustRoots(path string) ([]*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	b, err := collateral.ReadFile(path, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("--trust-root: %w", err)
	}
	roots, err := dcap.ParseChainPEM(b, "trust root")
	if err != nil {
		return nil, fmt.Errorf("--trust-root: %w", err)
	}
	return roots, nil
}

func collateralFetch(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("collateral fetch", stderr)
	var cf collateralClientFlags
	cf.register(fs)
	var fmspcs, tees, cas collateralList
	fs.Var(&fmspcs, "fmspc", "FMSPC (12 hex digits); repeat or separate with commas")
	fs.Var(&tees, "tee", "sgx, tdx or sgx,tdx (default sgx)")
	fs.Var(&cas, "ca", "PCK CAs whose CRL to fetch (default processor,platform)")
	out := fs.String("out", "", "bundle `DIR` to write (created; documents already there are kept unless the fetched ones are newer)")
	trustRoot := fs.String("trust-root", "", "trust anchor `PEM` replacing Intel's SGX Root CA (tests, the simulator)")
	atFlag := fs.String("at", "", "verify the documents' dates as of this RFC 3339 time (default now)")
	logFormat := logFormatFlag(fs, "text")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	logger, err := newLogger(*logFormat, stderr, &slog.HandlerOptions{Level: slog.LevelError})
	if err != nil {
		return err
	}
	usage := "usage: asps collateral fetch --pccs URL --fmspc F[,F...] [--tee sgx|tdx] [--ca processor,platform] --out DIR"
	if len(pos) != 0 || cf.pccs == "" || len(fmspcs) == 0 || *out == "" {
		return &exitError{code: 2, msg: usage}
	}
	if len(tees) == 0 {
		tees = collateralList{"sgx"}
	}
	if len(cas) == 0 {
		cas = collateralList{"processor", "platform"}
	}
	now := time.Now
	if *atFlag != "" {
		at, err := time.Parse(time.RFC3339, *atFlag)
		if err != nil {
			return &exitError{code: 2, msg: "--at: " + err.Error()}
		}
		now = func() time.Time { return at }
	}
	roots, err := collateralTrustRoots(*trustRoot)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	client, err := cf.client()
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	var keys []collateral.Key
	for _, tee := range tees {
		for _, f := range fmspcs {
			keys = append(keys, collateral.TCBInfoKey(tee, f))
		}
		keys = append(keys, collateral.QEIdentityKey(tee))
	}
	for _, ca := range cas {
		keys = append(keys, collateral.PCKCRLKey(ca))
	}
	keys = append(keys, collateral.RootCACRLKey())
	for i, k := range keys {
		if keys[i], err = k.Normalize(); err != nil {
			return &exitError{code: 2, msg: err.Error()}
		}
	}

	cache, err := collateral.NewCache(collateral.Options{
		Client: client, Dir: *out, TrustAnchors: roots, Now: now, RefreshInterval: -1, FailureTTL: -1,
		Logger: logger,
	})
	if err != nil {
		return err
	}
	defer cache.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := 0
	for _, k := range keys {
		d, err := cache.Fetch(ctx, k)
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "FAIL  %-28s %v\n", k, err)
			continue
		}
		fmt.Fprintf(stdout, "ok    %-28s issued %s  next update %s  %s\n", k,
			d.IssueDate.UTC().Format(time.RFC3339), d.NextUpdate.UTC().Format(time.RFC3339), filepath.Join(*out, filepath.FromSlash(k.Path())))
	}
	if failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d documents failed", failed, len(keys))}
	}
	return nil
}

func collateralImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("collateral import", stderr)
	out := fs.String("out", "", "bundle `DIR` to write (created; a document there is replaced only by a newer one)")
	trustRoot := fs.String("trust-root", "", "trust anchor `PEM` replacing Intel's SGX Root CA (tests, the simulator)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || *out == "" {
		return &exitError{code: 2, msg: "usage: asps collateral import FILE... --out DIR [--trust-root PEM]"}
	}
	roots, err := collateralTrustRoots(*trustRoot)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	check := collateral.NewChecker(roots...).Check
	failed := 0
	for _, p := range pos {
		b, err := collateral.ReadFile(p, collateral.MaxCollateralFileLen)
		if err == nil {
			var col *dcap.Collateral
			if col, err = dcap.ParseCollateralJSON(b); err == nil {
				var written []collateral.Key
				written, err = collateral.ImportCollateral(*out, col, check, time.Now())
				if err == nil {
					names := make([]string, len(written))
					for i, k := range written {
						names[i] = k.Path()
					}
					if len(names) == 0 {
						names = []string{"nothing new (the bundle holds these documents or newer ones)"}
					}
					fmt.Fprintf(stdout, "ok    %s: %s\n", p, strings.Join(names, ", "))
					continue
				}
			}
		}
		failed++
		fmt.Fprintf(stdout, "FAIL  %s: %v\n", p, err)
	}
	if failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d files failed", failed, len(pos))}
	}
	return nil
}

// collateralReloadable serves a bundle that SIGHUP reopens.
type collateralReloadable struct {
	b atomic.Pointer[collateral.Bundle]
}

func (r *collateralReloadable) Document(ctx context.Context, k collateral.Key) (*collateral.Document, error) {
	return r.b.Load().Document(ctx, k)
}

func collateralServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("collateral serve", stderr)
	dir := fs.String("dir", "", "bundle `DIR` to serve (with --pccs: the cache directory)")
	listen := fs.String("listen", "127.0.0.1:8081", "`ADDR` to listen on")
	trustRoot := fs.String("trust-root", "", "trust anchor `PEM` replacing Intel's SGX Root CA (tests, the simulator)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `PEM` (with --tls-key: serve HTTPS, as Intel's QPL expects)")
	tlsKey := fs.String("tls-key", "", "TLS private key `PEM`")
	var cf collateralClientFlags
	cf.register(fs)
	var co collateral.Options
	var ho collateral.HandlerOptions
	fs.IntVar(&co.MaxFetches, "max-fetches", 8, "with --pccs: upstream fetches in flight at most")
	fs.IntVar(&co.UnknownBurst, "unknown-fetch-burst", 32, "with --pccs: documents never fetched before that may be fetched at once (negative: no limit) …")
	fs.DurationVar(&co.UnknownEvery, "unknown-fetch-every", 10*time.Second, "… then one per `D`")
	fs.IntVar(&ho.ClientBurst, "client-fetch-burst", 8, "with --pccs: upstream fetches one client (IPv4 address, IPv6 /64) may start at once (negative: no limit) …")
	fs.DurationVar(&ho.ClientEvery, "client-fetch-every", 5*time.Second, "… then one per `D`")
	logFormat := logFormatFlag(fs, "text")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *dir == "" || (*tlsCert == "") != (*tlsKey == "") {
		return &exitError{code: 2, msg: "usage: asps collateral serve --dir DIR [--listen ADDR] [--tls-cert PEM --tls-key PEM] [--pccs URL]"}
	}
	roots, err := collateralTrustRoots(*trustRoot)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	var tlsConfig *tls.Config
	if *tlsCert != "" {
		// Read as regular files with a limit (tls.LoadX509KeyPair reads
		// whatever it is given, a FIFO or /dev/zero included).
		certPEM, err := collateral.ReadFile(*tlsCert, 1<<20)
		if err != nil {
			return fmt.Errorf("--tls-cert: %w", err)
		}
		keyPEM, err := collateral.ReadFile(*tlsKey, 1<<20)
		if err != nil {
			return fmt.Errorf("--tls-key: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	logger, err := newLogger(*logFormat, stderr, nil)
	if err != nil {
		return err
	}
	// Signals are taken over only once start-up is done: until then
	// SIGTERM and SIGINT end the process as they normally do, whatever
	// start-up is busy with.

	var src collateral.DocumentSource
	var what string
	var reopen func() (*collateral.Bundle, []error, error)
	var r *collateralReloadable
	if cf.pccs != "" {
		// A caching proxy: fetch from upstream, keep in DIR.
		client, err := cf.client()
		if err != nil {
			return &exitError{code: 2, msg: err.Error()}
		}
		co.Client, co.Dir, co.TrustAnchors, co.Logger = client, *dir, roots, logger
		cache, err := collateral.NewCache(co)
		if err != nil {
			return err
		}
		defer cache.Close()
		src = cache
		what = fmt.Sprintf("%d cached documents in %s, fetching from %s", len(cache.Documents()), *dir, cf.pccs)
	} else {
		b, err := collateral.OpenBundle(*dir, collateral.Options{TrustAnchors: roots, Logger: logger})
		if err != nil {
			return err
		}
		r = &collateralReloadable{}
		r.b.Store(b)
		src = r
		what = fmt.Sprintf("%d documents from %s (SIGHUP reloads)", len(b.Documents()), *dir)
		reopen = func() (*collateral.Bundle, []error, error) {
			return r.b.Load().Reopen(collateral.Options{TrustAnchors: roots, Logger: logger})
		}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ln = collateral.LimitConnections(ln)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if reopen != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					// Never back: an older document in the new bundle
					// leaves the one in force (Reopen logs each).
					nb, refused, err := reopen()
					if err != nil {
						logger.Error("collateral serve: reload failed; serving the previous bundle", "error", err)
						continue
					}
					r.b.Store(nb)
					logger.Info("collateral serve: bundle reloaded", "documents", len(nb.Documents()), "older_documents_refused", len(refused))
				}
			}
		}()
	}

	srv := collateral.NewMirrorServer(collateral.NewHandlerWithOptions(src, ho))
	srv.TLSConfig = tlsConfig
	srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "serving %s on %s://%s (Intel PCS v4 API: /sgx|tdx/certification/v4/...)\n", what, scheme, ln.Addr())
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
