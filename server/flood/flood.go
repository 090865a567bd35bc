// Package flood is a bounded, loopback-only flood of unauthenticated
// peers against an asps server, for measuring that the server stays
// bounded and keeps serving legitimate workloads while it runs: idle
// connections that never start TLS, HPACK amplification of -bin metadata
// (with and without a client certificate), TLS handshakes without a
// certificate, well-formed requests under a certificate that does not
// attest, and requests carrying a real Intel quote with a forged PCK leaf
// or a padded PCK chain. It is what `asps bench flood` runs.
package flood

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/ratls"
)

// Caps on what one run may do.
const (
	MaxIdle    = 20000
	MaxAmplify = 1000
	MaxNoCert  = 100000
	MaxBadCert = 100000
	MaxForged  = 20000
	MaxPadded  = 20000
	MaxSources = 200
)

// Config says what to send. Counts above the caps are refused.
type Config struct {
	// Addr is the server (a loopback address).
	Addr string
	// Idle connections that never start TLS, spread over Sources loopback
	// source addresses (127.0.0.2 …; default 20), held for Hold.
	Idle    int
	Sources int
	// Amplify connections each open 4 streams of one 3.9 KB x-pad-bin
	// HPACK entry referenced 4,000 times, no DATA; half present no
	// certificate, half a certificate that passes the handshake's screen
	// but does not attest. Held for Hold.
	Amplify int
	// NoCert TLS handshakes without a client certificate, each followed
	// by a request.
	NoCert int
	// BadCert requests of 64 names of 256 bytes under a certificate that
	// does not attest (from source address 127.0.0.250).
	BadCert int
	// Forged and Padded requests each come under a new RA-TLS certificate
	// over a new connection (from 127.0.1.x, Sources addresses), carrying
	// RealQuote re-bound to the certificate's key with its PCK chain
	// tampered: a leaf forged under Intel's real PCK CA, or the real chain
	// with unique padding. RealQuote is a real Intel quote with a PEM PCK
	// chain (certification data type 5), e.g. one of the shared corpus.
	Forged, Padded int
	RealQuote      []byte
	// Hold is how long the idle and amplification connections are held
	// before the "during" measurement (default 2s).
	Hold time.Duration
	// Legit, when set, runs during the flood (a legitimate fetch).
	Legit func(context.Context) error
	// PID, when set, is the server's process: its resident memory is
	// read from /proc before, during and after.
	PID int
	// AuditPath, when set, is the server's audit file: its size is
	// reported before and after.
	AuditPath string
	// ServerAuth authenticates the server for the gRPC requests (default:
	// any server; the flood sends nothing secret).
	ServerAuth *ratls.ServerAuth
	// MaxDuration bounds the whole run (default 2 minutes).
	MaxDuration time.Duration
}

// Report is what a run measured.
type Report struct {
	RSSBeforeKiB, RSSDuringKiB, RSSAfterKiB int64
	AuditBytesBefore, AuditBytesAfter       int64
	IdleOpened, IdleDialErrors              int
	IdleClosedByServer                      int // by the end of Hold
	AmplifyRefusedAtHandshake               int
	AmplifyStreamsReset                     int
	AmplifyConnsClosed                      int
	AmplifyBytesSent                        int64
	NoCertRefused, NoCertOther              int
	BadCertCodes                            map[string]int
	ForgedCodes, PaddedCodes                map[string]int
	LegitOK                                 bool
	LegitError                              string
	LegitMillis                             float64
	Seconds                                 float64
}

func (c *Config) check() error {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("flood: server address %q: %w", c.Addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("flood: %s is not a loopback address; the flood runs on loopback only", c.Addr)
	}
	if c.Idle < 0 || c.Idle > MaxIdle || c.Amplify < 0 || c.Amplify > MaxAmplify || c.NoCert < 0 || c.NoCert > MaxNoCert || c.BadCert < 0 || c.BadCert > MaxBadCert {
		return fmt.Errorf("flood: counts are capped at %d idle, %d amplify, %d no-cert, %d bad-cert", MaxIdle, MaxAmplify, MaxNoCert, MaxBadCert)
	}
	if c.Forged < 0 || c.Forged > MaxForged || c.Padded < 0 || c.Padded > MaxPadded {
		return fmt.Errorf("flood: counts are capped at %d forged, %d padded", MaxForged, MaxPadded)
	}
	if (c.Forged > 0 || c.Padded > 0) && len(c.RealQuote) == 0 {
		return errors.New("flood: forged and padded requests need a real Intel quote (RealQuote)")
	}
	if c.Sources <= 0 {
		c.Sources = 20
	}
	if c.Sources > MaxSources {
		return fmt.Errorf("flood: at most %d source addresses", MaxSources)
	}
	if c.Hold <= 0 {
		c.Hold = 2 * time.Second
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 2 * time.Minute
	}
	return nil
}

// Run runs the flood and reports.
func Run(ctx context.Context, c Config) (*Report, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.MaxDuration)
	defer cancel()
	start := time.Now()
	r := &Report{BadCertCodes: map[string]int{}, ForgedCodes: map[string]int{}, PaddedCodes: map[string]int{}}
	r.RSSBeforeKiB = rssKiB(c.PID)
	r.AuditBytesBefore = fileSize(c.AuditPath)
	screened, err := ScreenedCertificate(ctx)
	if err != nil {
		return nil, err
	}

	// Idle connections, held.
	var held []net.Conn
	defer func() {
		for _, h := range held {
			h.Close()
		}
	}()
	for i := range c.Idle {
		if ctx.Err() != nil {
			break
		}
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%c.Sources))}}
		conn, err := d.DialContext(ctx, "tcp", c.Addr)
		if err != nil {
			r.IdleDialErrors++
			continue
		}
		r.IdleOpened++
		held = append(held, conn)
	}
	idle := append([]net.Conn(nil), held...)

	// HPACK amplification, held.
	for i := range c.Amplify {
		if ctx.Err() != nil {
			break
		}
		cert := tls.Certificate{}
		if i%2 == 1 {
			cert = screened
		}
		conn, sent, reset, closed, refused := amplify(c.Addr, cert)
		r.AmplifyBytesSent += sent
		r.AmplifyStreamsReset += reset
		switch {
		case refused:
			r.AmplifyRefusedAtHandshake++
		case closed:
			r.AmplifyConnsClosed++
		}
		if conn != nil {
			held = append(held, conn)
		}
	}

	// Handshakes without a certificate, and requests that do not attest,
	// concurrently with a legitimate fetch.
	var wg sync.WaitGroup
	var mu sync.Mutex
	if c.Forged > 0 || c.Padded > 0 {
		blocks, leaf, ca, err := chainOf(c.RealQuote)
		if err != nil {
			return nil, err
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			tampered(ctx, &c, &tamperedAttester{quote: c.RealQuote, chain: forgedChain(blocks, leaf, ca)}, c.Forged, r.ForgedCodes, &mu)
		}()
		go func() {
			defer wg.Done()
			tampered(ctx, &c, &tamperedAttester{quote: c.RealQuote, chain: paddedChain(blocks)}, c.Padded, r.PaddedCodes, &mu)
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range c.NoCert {
			if ctx.Err() != nil {
				return
			}
			refused := noCert(c.Addr)
			mu.Lock()
			if refused {
				r.NoCertRefused++
			} else {
				r.NoCertOther++
			}
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		if c.BadCert == 0 {
			return
		}
		auth := ratls.ServerByPin() // refuses every server: replaced below
		if c.ServerAuth != nil {
			auth = *c.ServerAuth
		}
		conf := ratls.ClientConfig(screened, auth)
		if c.ServerAuth == nil {
			conf.VerifyConnection = nil // the flood trusts any server: it sends nothing secret
		}
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 250)}}
		cc, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
		if err != nil {
			mu.Lock()
			r.BadCertCodes["dial: "+err.Error()]++
			mu.Unlock()
			return
		}
		defer cc.Close()
		sc := aspsv1.NewSecretsClient(cc)
		names := make([]string, 64)
		for i := range names {
			names[i] = fmt.Sprintf("%03d-%s", i, strings.Repeat("n", 252))
		}
		for range c.BadCert {
			if ctx.Err() != nil {
				return
			}
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := sc.GetSecrets(rctx, &aspsv1.GetSecretsRequest{Names: names})
			rcancel()
			mu.Lock()
			r.BadCertCodes[status.Code(err).String()]++
			mu.Unlock()
		}
	}()
	if c.Legit != nil {
		lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
		t0 := time.Now()
		err := c.Legit(lctx)
		lcancel()
		r.LegitMillis = float64(time.Since(t0).Microseconds()) / 1000
		r.LegitOK = err == nil
		if err != nil {
			r.LegitError = err.Error()
		}
	}
	wg.Wait()

	// Hold, then measure while the idle and amplification connections are
	// (as far as the server lets them be) open.
	select {
	case <-ctx.Done():
	case <-time.After(c.Hold):
	}
	r.RSSDuringKiB = rssKiB(c.PID)
	r.IdleClosedByServer = countClosed(idle)
	for _, h := range held {
		h.Close()
	}
	held = nil
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
	}
	r.RSSAfterKiB = rssKiB(c.PID)
	r.AuditBytesAfter = fileSize(c.AuditPath)
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// ScreenedCertificate is an RA-TLS certificate of a simulated enclave
// under an attacker's own simulator root: it passes a server's handshake
// screen and fails attestation.
func ScreenedCertificate(ctx context.Context) (tls.Certificate, error) {
	pki, err := sim.NewPKI([]byte("asps flood: an attacker's own simulator root"))
	if err != nil {
		return tls.Certificate{}, err
	}
	a, err := sim.NewAttester(sim.Options{PKI: pki, TEE: claims.SGX, Identity: sim.Identity{MrEnclave: [32]byte{0xf1}, MrSigner: [32]byte{0xf2}}})
	if err != nil {
		return tls.Certificate{}, err
	}
	return ratls.NewCertificate(ctx, a, ratls.CertOptions{})
}

// amplify opens one connection and sends the HPACK amplification; it
// returns the connection (to hold) unless the server ended it.
func amplify(addr string, cert tls.Certificate) (conn net.Conn, sent int64, reset int, closed, refused bool) {
	conf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS13}
	if len(cert.Certificate) > 0 {
		conf.Certificates = []tls.Certificate{cert}
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(&d, "tcp", addr, conf)
	if err != nil {
		return nil, 0, 0, false, true
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	fr := http2.NewFramer(c, c)
	io.WriteString(c, http2.ClientPreface)
	fr.WriteSettings()
	pad := hpack.HeaderField{Name: "x-pad-bin", Value: strings.Repeat("A", 3900)}
	for s := range 4 {
		for _, f := range []hpack.HeaderField{
			{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"}, {Name: ":path", Value: "/asps.v1.Secrets/GetSecrets"},
			{Name: ":authority", Value: "asps"}, {Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
		} {
			enc.WriteField(f)
		}
		for range 4000 {
			enc.WriteField(pad)
		}
		b := bytes.Clone(hbuf.Bytes())
		hbuf.Reset()
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*s + 1), BlockFragment: b, EndHeaders: true}); err != nil {
			break
		}
		sent += int64(len(b))
	}
	fr.WritePing(false, [8]byte{7})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			c.Close()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, sent, reset, true, false
			}
			if strings.Contains(err.Error(), "certificate required") || strings.Contains(err.Error(), "bad certificate") {
				return nil, sent, reset, false, true
			}
			return nil, sent, reset, true, false
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			reset++
		case *http2.GoAwayFrame:
			c.Close()
			return nil, sent, reset, true, false
		case *http2.PingFrame:
			if f.IsAck() {
				c.SetReadDeadline(time.Time{})
				return c, sent, reset, false, false
			}
		}
	}
}

// noCert completes a TLS handshake without a certificate and sends a
// request; it reports whether the server refused it.
func noCert(addr string) bool {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(&d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS13})
	if err != nil {
		return strings.Contains(err.Error(), "certificate required")
	}
	defer c.Close()
	io.WriteString(c, http2.ClientPreface)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err != nil && strings.Contains(err.Error(), "certificate required")
}

// countClosed counts the connections the server has closed.
func countClosed(conns []net.Conn) int {
	n := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			n++
		}
	}
	return n
}

func rssKiB(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func fileSize(path string) int64 {
	if path == "" {
		return 0
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
