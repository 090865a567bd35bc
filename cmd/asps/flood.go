package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/asps-project/asps/server/flood"
)

func init() {
	register(command{name: "bench flood", summary: "bounded loopback flood of unauthenticated peers against a server; reports its memory, audit size and a legitimate fetch during it", run: benchFlood})
}

func benchFlood(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench flood", stderr)
	var cf clientFlags
	cf.register(fs)
	idle := fs.Int("idle", 2000, fmt.Sprintf("idle connections that never start TLS (at most %d)", flood.MaxIdle))
	sources := fs.Int("sources", 20, "loopback source addresses for the idle connections (127.0.0.2 …)")
	amplify := fs.Int("amplify", 60, fmt.Sprintf("HPACK amplification connections, half without a certificate (at most %d)", flood.MaxAmplify))
	noCert := fs.Int("no-cert", 1000, fmt.Sprintf("TLS handshakes without a client certificate (at most %d)", flood.MaxNoCert))
	badCert := fs.Int("bad-cert", 1000, fmt.Sprintf("requests of 64 names under a certificate that does not attest (at most %d)", flood.MaxBadCert))
	forged := fs.Int("forged", 0, fmt.Sprintf("requests, each under a new certificate, carrying --real-quote with a PCK leaf forged under Intel's real PCK CA (at most %d)", flood.MaxForged))
	padded := fs.Int("padded", 0, fmt.Sprintf("requests, each under a new certificate, carrying --real-quote with its PCK chain uniquely padded (at most %d)", flood.MaxPadded))
	realQuote := fs.String("real-quote", "", "a real Intel quote `FILE` with a PEM PCK chain, for --forged and --padded")
	hold := fs.Duration("hold", 3*time.Second, "hold the idle and amplification connections this long before measuring")
	pid := fs.Int("pid", 0, "the server's `PID`: report its resident memory before, during and after")
	auditPath := fs.String("audit", "", "the server's audit `FILE`: report its size before and after")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if cf.server == "" && cf.devDir != "" {
		b, err := os.ReadFile(filepath.Join(cf.devDir, "server.addr"))
		if err != nil {
			return &exitError{code: 2, msg: "--server is required (no server.addr in --dev-dir)"}
		}
		cf.server = strings.TrimSpace(string(b))
	}
	if cf.server == "" {
		return &exitError{code: 2, msg: "--server (a loopback address) or --dev-dir is required"}
	}
	c := flood.Config{Addr: cf.server, Idle: *idle, Sources: *sources, Amplify: *amplify, NoCert: *noCert, BadCert: *badCert,
		Forged: *forged, Padded: *padded, Hold: *hold, PID: *pid, AuditPath: *auditPath}
	if *realQuote != "" {
		b, err := os.ReadFile(*realQuote)
		if err != nil {
			return &exitError{code: 2, msg: "--real-quote: " + err.Error()}
		}
		c.RealQuote = b
	}
	if cf.devDir != "" {
		// The legitimate workload: the demo enclave of `asps dev`'s PKI.
		c.Legit = func(ctx context.Context) error {
			cl, err := cf.dial(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			_, err = cl.GetSecrets(ctx, "demo-key")
			return err
		}
	}
	r, err := flood.Run(context.Background(), c)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	fmt.Fprintf(stdout, "flood of %s in %.1fs\n", cf.server, r.Seconds)
	if *pid > 0 {
		fmt.Fprintf(stdout, "server RSS: before %d KiB, during %d KiB, after %d KiB\n", r.RSSBeforeKiB, r.RSSDuringKiB, r.RSSAfterKiB)
	}
	if *auditPath != "" {
		fmt.Fprintf(stdout, "audit file: %d bytes before, %d after (+%d)\n", r.AuditBytesBefore, r.AuditBytesAfter, r.AuditBytesAfter-r.AuditBytesBefore)
	}
	fmt.Fprintf(stdout, "idle: %d opened (%d dial errors), %d closed by the server within the hold\n", r.IdleOpened, r.IdleDialErrors, r.IdleClosedByServer)
	fmt.Fprintf(stdout, "amplification: %d bytes sent; %d refused at the handshake, %d streams reset, %d connections closed\n",
		r.AmplifyBytesSent, r.AmplifyRefusedAtHandshake, r.AmplifyStreamsReset, r.AmplifyConnsClosed)
	fmt.Fprintf(stdout, "no certificate: %d refused at the handshake, %d otherwise\n", r.NoCertRefused, r.NoCertOther)
	fmt.Fprintf(stdout, "bad certificate requests: %v\n", r.BadCertCodes)
	if c.Forged > 0 || c.Padded > 0 {
		fmt.Fprintf(stdout, "forged PCK leaf: %v; padded PCK chain: %v\n", r.ForgedCodes, r.PaddedCodes)
	}
	if c.Legit != nil {
		if r.LegitOK {
			fmt.Fprintf(stdout, "legitimate fetch during the flood: ok in %.1f ms\n", r.LegitMillis)
		} else {
			fmt.Fprintf(stdout, "legitimate fetch during the flood: FAILED: %s\n", r.LegitError)
			return &exitError{code: 1}
		}
	}
	return nil
}
