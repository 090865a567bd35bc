package server_test

// Attacks on the server's network edge by peers that hold no attested
// certificate: header amplification, CONTINUATION floods, streams that
// never send their request, connection floods, audit floods, a broken
// audit file, repeated forged certificates and strangers asking about the
// policy. Every test is named after its attack.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/audit"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/server"
)

// hardened is a production-mode server (Options.Dev false) on loopback,
// trusting the dev simulator PKI.
type hardened struct {
	env   *devmode.Env // its PKI, policy and store
	srv   *server.Server
	addr  string
	pin   [32]byte
	audit *syncBuffer
}

func startHardened(t *testing.T, mod func(*server.Options)) *hardened {
	t.Helper()
	env, err := devmode.Start(context.Background(), devmode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	rv, err := env.ServerVerifier(nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, pin, err := devmode.SelfSignedServerCert("asps test server")
	if err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	o := server.Options{Certificate: cert, Verifier: rv, Policy: env.Policy, Store: env.Store,
		Audit: audit.New(buf, nil), Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&o)
	}
	if o.Audit == nil {
		o.Audit = audit.New(buf, nil)
	}
	srv, err := server.New(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return &hardened{env: env, srv: srv, addr: l.Addr().String(), pin: pin, audit: buf}
}

// client dials as the demo enclave (or another identity).
func (h *hardened) client(t *testing.T, o simOpts) *client.Client {
	t.Helper()
	a, err := devmode.Attester(h.env.PKI, o.TEE, o.Identity)
	if err != nil {
		t.Fatal(err)
	}
	// One attempt per call: these tests judge the server's answer to one
	// request (the client's retries are tested in client/).
	c, err := client.Dial(context.Background(), client.Config{Server: h.addr, Attester: a, ServerAuth: ratls.ServerByPin(h.pin), Retry: client.Retry{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type simOpts struct {
	TEE      claims.TEE
	Identity sim.Identity
}

func (h *hardened) legitFetch(t *testing.T) error {
	t.Helper()
	a, err := devmode.Attester(h.env.PKI, claims.SGX, devmode.DemoIdentity(claims.SGX))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Server: h.addr, Attester: a, ServerAuth: ratls.ServerByPin(h.pin)})
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.GetSecrets(ctx, "demo-key")
	if err != nil {
		return err
	}
	if !bytes.Equal(s[0].Value, devmode.DemoSecrets()["demo-key"]) {
		return errors.New("wrong value")
	}
	return nil
}

// rawH2 is an HTTP/2 client that writes frames by hand.
type rawH2 struct {
	conn *tls.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
}

// dialRawH2 completes TLS presenting cert (none if empty) and writes the
// HTTP/2 preface and SETTINGS. The server's verdict on the certificate
// shows on the first read (TLS 1.3 client authentication).
func dialRawH2(t *testing.T, addr string, cert tls.Certificate) *rawH2 {
	t.Helper()
	conf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS13}
	if len(cert.Certificate) > 0 {
		conf.Certificates = []tls.Certificate{cert}
	}
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawH2{conn: c}
	r.fr = http2.NewFramer(c, c)
	r.fr.ReadMetaHeaders = nil
	r.enc = hpack.NewEncoder(&r.hbuf)
	// A server that refused the certificate may have closed already:
	// write errors show on the reads that follow.
	if _, err := io.WriteString(c, http2.ClientPreface); err == nil {
		r.fr.WriteSettings()
	}
	return r
}

func (r *rawH2) grpcHeaders(path string) {
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"}, {Name: ":path", Value: path},
		{Name: ":authority", Value: "asps"}, {Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
	} {
		r.enc.WriteField(f)
	}
}

// block takes the encoded header block written so far.
func (r *rawH2) block() []byte {
	b := bytes.Clone(r.hbuf.Bytes())
	r.hbuf.Reset()
	return b
}

// outcome reads frames until the connection fails, the server acknowledges
// our PING (everything before it was processed), or the deadline passes.
// It returns the streams the server reset or answered, and whether the
// connection ended.
type outcome struct {
	ended    bool
	endErr   error
	answered map[uint32]bool
	pinged   bool
}

func (r *rawH2) readUntilPingAck(t *testing.T, d time.Duration) outcome {
	t.Helper()
	o := outcome{answered: map[uint32]bool{}}
	r.conn.SetReadDeadline(time.Now().Add(d))
	defer r.conn.SetReadDeadline(time.Time{})
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return o
			}
			o.ended, o.endErr = true, err
			return o
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				r.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if f.IsAck() {
				o.pinged = true
				return o
			}
		case *http2.RSTStreamFrame:
			o.answered[f.StreamID] = true
		case *http2.HeadersFrame:
			if f.StreamEnded() {
				o.answered[f.StreamID] = true
			}
		case *http2.GoAwayFrame:
			o.ended, o.endErr = true, errors.New("GOAWAY "+f.ErrCode.String())
			return o
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

const heapBound = 64 << 20

// TestAttack_HPACKAmplificationOfBinMetadata: one 3.9 KB x-pad-bin entry
// in the HPACK dynamic table, referenced 4,000 times per stream at one
// byte each, no DATA: every reference used to be base64-decoded into its
// own copy and held while the stream waited for its body (issue 16.1).
// Without a certificate the peer is refused at the handshake; with a
// certificate that passes the handshake's screen, the header list limit
// resets each stream. Either way the server's heap stays bounded.
func TestAttack_HPACKAmplificationOfBinMetadata(t *testing.T) {
	h := startHardened(t, nil)
	for _, tc := range []struct {
		name string
		cert tls.Certificate
	}{{"anonymous", tls.Certificate{}}, {"screened certificate", untrustedCert(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			const conns, streams, refs = 2, 4, 4000
			before := heapInUse()
			pad := hpack.HeaderField{Name: "x-pad-bin", Value: strings.Repeat("A", 3900)}
			var outs []outcome
			for range conns {
				r := dialRawH2(t, h.addr, tc.cert)
				var ids []uint32
				sent := 0
				for s := range streams {
					id := uint32(2*s + 1)
					r.grpcHeaders("/asps.v1.Secrets/GetSecrets")
					for range refs {
						r.enc.WriteField(pad) // first: literal, indexed; then one byte each
					}
					b := r.block()
					sent += len(b)
					if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b, EndHeaders: true}); err != nil {
						break // refused already
					}
					ids = append(ids, id)
				}
				r.fr.WritePing(false, [8]byte{1})
				o := r.readUntilPingAck(t, 10*time.Second)
				outs = append(outs, o)
				t.Logf("%d bytes sent on one connection for %d streams", sent, len(ids))
			}
			grew := int64(heapInUse()) - int64(before)
			t.Logf("heap grew %d KiB while the attack's connections are open", grew>>10)
			if grew > heapBound {
				t.Fatalf("heap grew %d MiB: header amplification is held by the server", grew>>20)
			}
			for i, o := range outs {
				switch tc.name {
				case "anonymous":
					if !o.ended || o.pinged {
						t.Fatalf("connection %d without a certificate reached HTTP/2: %+v", i, o)
					}
				default:
					if len(o.answered) != streams && !o.ended {
						t.Fatalf("connection %d: %d of %d oversized header lists refused: %+v", i, len(o.answered), streams, o)
					}
				}
			}
		})
	}
}

// TestAttack_ContinuationFlood15MiB: one HEADERS frame followed by 15 MiB
// of CONTINUATION frames of header fields (issue 11.15): gRPC's default
// 16 MiB header-list limit held all of it per connection. Refused at the
// handshake without a certificate; with one, the connection is closed
// once the header list is over the limit.
func TestAttack_ContinuationFlood15MiB(t *testing.T) {
	h := startHardened(t, nil)
	for _, tc := range []struct {
		name string
		cert tls.Certificate
	}{{"anonymous", tls.Certificate{}}, {"screened certificate", untrustedCert(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			const conns = 6
			before := heapInUse()
			var outs []outcome
			for range conns {
				r := dialRawH2(t, h.addr, tc.cert)
				r.grpcHeaders("/asps.v1.Secrets/GetSecrets")
				first := r.block()
				// Literal fields (never indexed), 16 whole fields a frame.
				field := hpack.HeaderField{Name: "x-junk", Value: strings.Repeat("j", 1000), Sensitive: true}
				for range 16 {
					r.enc.WriteField(field)
				}
				chunk := r.block()
				err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first})
				// 15 MiB of header fields, decoded (HPACK's accounting:
				// name + value + 32 per field).
				for fields := 0; err == nil && fields*(len(field.Name)+len(field.Value)+32) < 15<<20; fields += 16 {
					err = r.fr.WriteContinuation(1, false, chunk)
				}
				if err == nil {
					err = r.fr.WriteContinuation(1, true, nil)
				}
				r.fr.WritePing(false, [8]byte{2})
				o := r.readUntilPingAck(t, 10*time.Second)
				if err != nil && !o.ended {
					o.ended, o.endErr = true, err
				}
				outs = append(outs, o)
			}
			grew := int64(heapInUse()) - int64(before)
			t.Logf("heap grew %d KiB while the attack's connections are open", grew>>10)
			if grew > heapBound {
				t.Fatalf("heap grew %d MiB: CONTINUATION flood held by the server", grew>>20)
			}
			for i, o := range outs {
				if !o.ended && len(o.answered) == 0 {
					t.Fatalf("connection %d: 15 MiB header block neither refused nor reset: %+v", i, o)
				}
			}
		})
	}
}

// TestAttack_StreamWaitsForeverForItsRequest: headers without DATA kept a
// stream — and its connection, which was then never idle — open forever.
// The stream is cancelled after Limits.RequestWait.
func TestAttack_StreamWaitsForeverForItsRequest(t *testing.T) {
	h := startHardened(t, func(o *server.Options) { o.Limits.RequestWait = 200 * time.Millisecond })
	r := dialRawH2(t, h.addr, untrustedCert(t))
	r.grpcHeaders("/asps.v1.Secrets/GetSecrets")
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.block(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	// Generous: the wait is 200ms; failing means "never".
	r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			break
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return
			}
		case *http2.HeadersFrame:
			if f.StreamID == 1 && f.StreamEnded() {
				return
			}
		case *http2.GoAwayFrame:
			t.Fatalf("connection ended instead: %v", f.ErrCode)
		}
	}
	t.Fatal("a stream without its request message is still open")
}

// TestAttack_OpenStreamKeepsConnectionAlive: the idle timer does not run
// while a stream is open, so one stream that never completes kept its
// connection forever (issue 16.1). Every connection is drained (GOAWAY)
// after Limits.MaxConnectionAge, open streams or not.
func TestAttack_OpenStreamKeepsConnectionAlive(t *testing.T) {
	h := startHardened(t, func(o *server.Options) {
		o.Limits.RequestWait = time.Minute
		o.Limits.MaxConnectionAge = 300 * time.Millisecond
	})
	r := dialRawH2(t, h.addr, untrustedCert(t))
	r.grpcHeaders("/asps.v1.Secrets/GetSecrets")
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.block(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	// Generous: the age is 300ms; failing means "never".
	if o := r.readUntilPingAck(t, 10*time.Second); !o.ended {
		t.Fatal("a connection with an open stream was not drained after MaxConnectionAge")
	}
}

// TestAttack_IdleConnectionFlood: thousands of connections that never
// present a certificate (never even start TLS) used to be held for
// minutes with no cap, and legitimate fetches timed out (issue 11.7).
// With per-address and total caps, eviction of the oldest unattested
// connection, and a lifetime for unattested connections, the legitimate
// client is served during the flood.
func TestAttack_IdleConnectionFlood(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := startHardened(t, func(o *server.Options) {
		o.Limits.MaxConns = 500
		o.Limits.MaxConnsPerIP = 100
		o.Limits.UnauthenticatedLifetime = 2 * time.Second
		o.Metrics = server.NewMetrics(reg, nil)
	})
	// A workload attested before the flood keeps its connection through
	// it: attested connections are never evicted nor timed out.
	var dials atomic.Int32
	a, err := devmode.Attester(h.env.PKI, claims.SGX, devmode.DemoIdentity(claims.SGX))
	if err != nil {
		t.Fatal(err)
	}
	early, err := client.Dial(context.Background(), client.Config{Server: h.addr, Attester: a, ServerAuth: ratls.ServerByPin(h.pin),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		})}})
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	if _, err := early.GetSecrets(context.Background(), "demo-key"); err != nil {
		t.Fatal(err)
	}

	const flood = 2000
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// From 20 loopback addresses (127.0.0.2 …), 100 each: the per-address
	// cap lets 100 each through, the total cap 500 in all; past it, each
	// new connection evicts the oldest unattested one.
	for i := range flood {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%20))}
		d := net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", h.addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// The server accepts from the kernel's backlog at its own pace: wait
	// (bounded) until it has seen the whole flood.
	evicted := func() float64 {
		return metricValue(t, reg, "asps_connections_limited_total", "closed_evicted_for_new_connection")
	}
	for deadline := time.Now().Add(15 * time.Second); evicted() < flood-500 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	open, unattested := h.srv.ConnCounts()
	t.Logf("after %d idle connections: %d open, %d unattested (caps 500 total, 100 per address), %v evicted", flood, open, unattested, evicted())
	if open > 500 {
		t.Fatalf("%d connections held; the cap is 500", open)
	}
	if v := evicted(); v < flood-500 {
		t.Fatalf("%v unattested connections evicted, want at least %d", v, flood-500)
	}
	// A new legitimate client (127.0.0.1) is served during the flood, and
	// the early one on its own connection.
	if err := h.legitFetch(t); err != nil {
		t.Fatalf("legitimate fetch during the flood: %v", err)
	}
	if _, err := early.GetSecrets(context.Background(), "demo-key"); err != nil {
		t.Fatalf("attested workload during the flood: %v", err)
	}
	// Unattested connections do not outlive their lifetime; the attested
	// one stays.
	open, unattested = waitConns(h.srv, func(_, u int) bool { return u == 0 })
	t.Logf("after the unattested lifetime: %d open, %d unattested", open, unattested)
	if unattested != 0 || open != 1 {
		t.Fatalf("%d open, %d unattested after the unattested lifetime; want only the attested connection", open, unattested)
	}
	if _, err := early.GetSecrets(context.Background(), "demo-key"); err != nil || dials.Load() != 1 {
		t.Fatalf("the attested workload lost its connection (%d dials): %v", dials.Load(), err)
	}
}

// TestAttack_UnattestedConnectionsHeldForMinutes: connections that
// complete TLS with a certificate that passes the screen, then never make
// a request that attests, were held until the 5-minute idle timeout. They
// are closed after Limits.UnauthenticatedLifetime.
func TestAttack_UnattestedConnectionsHeldForMinutes(t *testing.T) {
	h := startHardened(t, func(o *server.Options) { o.Limits.UnauthenticatedLifetime = 500 * time.Millisecond })
	cert := untrustedCert(t)
	var rs []*rawH2
	for range 20 {
		rs = append(rs, dialRawH2(t, h.addr, cert))
	}
	for i, r := range rs {
		// Generous: the lifetime is 500ms; failing means "held".
		o := r.readUntilPingAck(t, 10*time.Second)
		if !o.ended {
			t.Fatalf("connection %d still open after the unattested lifetime", i)
		}
	}
	if open, unattested := waitConns(h.srv, func(o, _ int) bool { return o == 0 }); open != 0 {
		t.Fatalf("%d open, %d unattested", open, unattested)
	}
	// A genuine TEE that the policy does not know (its quote verifies)
	// is not protected either: any TEE has a quote.
	stranger := devmode.DemoIdentity(claims.SGX)
	stranger.MrEnclave[0] ^= 0xff
	c := h.client(t, simOpts{TEE: claims.SGX, Identity: stranger})
	if _, err := c.GetSecrets(context.Background(), "demo-key"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stranger: %v", err)
	}
	if open, unattested := waitConns(h.srv, func(o, _ int) bool { return o == 0 }); open != 0 {
		t.Fatalf("a stranger's connection held: %d open, %d unattested", open, unattested)
	}
}

func waitConns(s *server.Server, ok func(open, unattested int) bool) (int, int) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		o, u := s.ConnCounts()
		if ok(o, u) || time.Now().After(deadline) {
			return o, u
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAttack_ConnectionCapPerAddress: one address cannot hold more than
// MaxConnsPerIP connections; the next is closed at accept.
func TestAttack_ConnectionCapPerAddress(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := startHardened(t, func(o *server.Options) {
		o.Limits.MaxConnsPerIP = 10
		o.Metrics = server.NewMetrics(reg, nil)
	})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9)}}
	for range 11 {
		c, err := d.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	open, _ := waitConns(h.srv, func(o, _ int) bool { return o == 10 })
	if open != 10 {
		t.Fatalf("%d connections open from one address, cap 10", open)
	}
	// The 11th was closed by the server.
	conns[10].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[10].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection over the per-address cap not closed: %v", err)
	}
	if v := metricValue(t, reg, "asps_connections_limited_total", "refused_per_ip_limit"); v != 1 {
		t.Fatalf("asps_connections_limited_total{reason=refused_per_ip_limit} = %v, want 1", v)
	}
	if v := metricValue(t, reg, "asps_connections_open", ""); v != 10 {
		t.Fatalf("asps_connections_open = %v, want 10", v)
	}
}

// metricValue reads one counter or gauge from reg: the first series with
// a label of the value label (any series when label is empty).
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetValue() == label
			}
			if !match {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestAttack_UnauthenticatedAuditFlood: a peer without a certificate (or
// with one that does not attest) sending well-formed requests of 64 names
// of 256 bytes used to write every name to the audit file and the log —
// 518 MB in 10 s (issue 11.6). Now such refusals are sampled per reason
// and carry only a count of names: the audit file stays small.
func TestAttack_UnauthenticatedAuditFlood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	al, err := audit.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	h := startHardened(t, func(o *server.Options) {
		o.Audit = al
		o.Limits.FailedAttestationBurst = 1 << 20 // every request verified (from the negative cache)
	})
	names := make([]string, server.MaxNames)
	for i := range names {
		names[i] = strings.Repeat(string(rune('a'+i%26)), server.MaxNameLength-3) + string(rune('A'+i/26)) + "00"
	}
	const n = 500
	// Without a certificate: each attempt is a TLS handshake of its own
	// (a gRPC client would back off after the first refusal).
	req := []byte("GetSecrets with 64 names")
	for range n {
		c, err := tls.Dial("tcp", h.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS13})
		if err != nil {
			t.Fatal(err)
		}
		c.Write(req)
		if _, err := c.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("a peer without a certificate was not refused: %v", err)
		}
		c.Close()
	}
	// With a certificate that does not attest: well-formed requests.
	c := aspsv1.NewSecretsClient(dialGRPC(t, h.addr, h.pin, untrustedCert(t)))
	for range n {
		_, err := c.GetSecrets(context.Background(), &aspsv1.GetSecretsRequest{Names: names})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("unattested request: %v", err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	t.Logf("audit file after %d unattested requests of %d names of %d bytes: %d bytes, %d records", 2*n, len(names), server.MaxNameLength, st.Size(), bytes.Count(b, []byte("\n")))
	if st.Size() > 16<<10 {
		t.Fatalf("audit file is %d bytes after an unattested flood", st.Size())
	}
	if bytes.Contains(b, []byte(names[0])) {
		t.Fatal("an unattested peer's names reached the audit file")
	}
	if !bytes.Contains(b, []byte(`"requested_count":64`)) {
		t.Fatalf("the sampled refusals do not say how many names were asked for:\n%s", b)
	}
	// An attested workload's refusal is still recorded in full.
	_, err = h.client(t, simOpts{TEE: claims.SGX, Identity: devmode.DemoIdentity(claims.SGX)}).GetSecrets(context.Background(), "other-app")
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("attested request for another app's secret: %v", err)
	}
	b, _ = os.ReadFile(path)
	if !bytes.Contains(b, []byte(`"requested":["other-app"]`)) {
		t.Fatal("an attested refusal lost its names")
	}
}

// dialGRPC dials from the loopback address 127.0.0.3 (an attacker's own
// address, apart from the legitimate clients on 127.0.0.1).
func dialGRPC(t *testing.T, addr string, pin [32]byte, cert tls.Certificate) *grpc.ClientConn {
	t.Helper()
	creds := credentials.NewTLS(ratls.ClientConfig(cert, ratls.ServerByPin(pin)))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// failingWriter fails while broken is set (a full disk).
type failingWriter struct {
	broken atomic.Bool
	mu     sync.Mutex
	buf    bytes.Buffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.broken.Load() {
		return 0, errors.New("no space left on device")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestAttack_AuditUnwritableStopsReleasesSilently: once the audit file
// could not be written, releases stopped with no signal (issue 11.6). A
// release without its record still does not happen, but the refusal names
// the reason, health is NOT_SERVING, Ready says why, and releases resume
// when the file can be written again.
func TestAttack_AuditUnwritableStopsReleasesSilently(t *testing.T) {
	w := &failingWriter{}
	reg := prometheus.NewRegistry()
	h := startHardened(t, func(o *server.Options) {
		o.Metrics = server.NewMetrics(reg, nil)
		o.Audit = audit.New(w, nil)
		o.Limits.AuditProbeInterval = 50 * time.Millisecond
	})
	c := h.client(t, simOpts{TEE: claims.SGX, Identity: devmode.DemoIdentity(claims.SGX)})
	ctx := context.Background()
	if _, err := c.GetSecrets(ctx, "demo-key"); err != nil {
		t.Fatal(err)
	}
	w.broken.Store(true)
	_, err := c.GetSecrets(ctx, "demo-key")
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "audit log unavailable") {
		t.Fatalf("release without its audit record: %v", err)
	}
	if err := h.srv.Ready(); err == nil || !strings.Contains(err.Error(), "audit") {
		t.Fatalf("Ready while the audit log fails: %v", err)
	}
	if v := metricValue(t, reg, "asps_audit_write_failures_total", ""); v < 1 {
		t.Fatalf("asps_audit_write_failures_total = %v", v)
	}
	if v := metricValue(t, reg, "asps_decisions_total", server.ReasonAuditUnavailable); v != 1 {
		t.Fatalf("asps_decisions_total{reason=%q} = %v, want 1", server.ReasonAuditUnavailable, v)
	}
	hc := healthpb.NewHealthClient(c.Conn())
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health while the audit log fails: %v %v", r, err)
	}
	w.broken.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for h.srv.Ready() != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := h.srv.Ready(); err != nil {
		t.Fatalf("the audit log works again but the server is not ready: %v", err)
	}
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after recovery: %v %v", r, err)
	}
	if _, err := c.GetSecrets(ctx, "demo-key"); err != nil {
		t.Fatalf("release after the audit log recovered: %v", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !strings.Contains(w.buf.String(), "records were lost") {
		t.Fatal("the outage left no notice in the audit log")
	}
}

// TestAttack_FailedAttestationFloodFromOneSource: every failed
// attestation used to cost a full verification (issue 11.9). An address
// over its budget of failures is refused with ResourceExhausted before
// any verification; an already attested workload from another address is
// still served.
func TestAttack_FailedAttestationFloodFromOneSource(t *testing.T) {
	h := startHardened(t, func(o *server.Options) {
		o.Limits.FailedAttestationRate = 0.001
		o.Limits.FailedAttestationBurst = 5
	})
	conn := dialGRPC(t, h.addr, h.pin, untrustedCert(t))
	c := aspsv1.NewSecretsClient(conn)
	var codesSeen []codes.Code
	for range 8 {
		_, err := c.GetSecrets(context.Background(), &aspsv1.GetSecretsRequest{Names: []string{"demo-key"}})
		codesSeen = append(codesSeen, status.Code(err))
	}
	for i, code := range codesSeen {
		want := codes.Unauthenticated
		if i >= 5 {
			want = codes.ResourceExhausted
		}
		if code != want {
			t.Fatalf("request %d: %v, want %v (all: %v)", i, code, want, codesSeen)
		}
	}
	_, err := c.GetSecrets(context.Background(), &aspsv1.GetSecretsRequest{Names: []string{"demo-key"}})
	if !strings.Contains(err.Error(), "too many failed attestations") {
		t.Fatalf("message: %v", err)
	}
	recs := h.audit.records(t)
	found := false
	for _, r := range recs {
		found = found || r.ReasonCode == server.ReasonRateLimited
	}
	if !found {
		t.Fatalf("no audit record names the rate limit: %+v", recs)
	}
	if err := h.legitFetch(t); err != nil {
		t.Fatalf("legitimate fetch: %v", err)
	}
}

// TestAttack_StrangerLearnsOtherAppsFromRefusals: an attested workload
// that matches no app used to be told the closest app's id and its
// expected measurements, in refusals and in WhoAmI (issue 11.11). Outside
// dev mode it learns only about itself; the audit record keeps the detail.
func TestAttack_StrangerLearnsOtherAppsFromRefusals(t *testing.T) {
	for _, dev := range []bool{false, true} {
		h := startHardened(t, func(o *server.Options) { o.Dev = dev })
		stranger := devmode.DemoIdentity(claims.SGX)
		stranger.MrEnclave[0] ^= 0xff
		c := h.client(t, simOpts{TEE: claims.SGX, Identity: stranger})
		_, err := c.GetSecrets(context.Background(), "demo-key")
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("stranger: %v", err)
		}
		w, werr := c.WhoAmI(context.Background())
		if werr != nil {
			t.Fatal(werr)
		}
		own := devmode.DemoIdentity(claims.SGX).MrEnclave
		ownHex := hex.EncodeToString(own[:4])
		for what, msg := range map[string]string{"refusal": err.Error(), "whoami": w.MatchError} {
			leaks := strings.Contains(msg, "demo-enclave") || strings.Contains(msg, ownHex)
			if leaks != dev {
				t.Errorf("dev=%v: %s %q: names the other app: %v", dev, what, msg, leaks)
			}
			if !strings.Contains(msg, "no matching app") {
				t.Errorf("dev=%v: %s %q does not say why", dev, what, msg)
			}
			if !strings.Contains(msg, hex.EncodeToString(stranger.MrEnclave[:4])) {
				t.Errorf("dev=%v: %s %q does not show the workload its own mr_enclave", dev, what, msg)
			}
		}
		recs := h.audit.records(t)
		if r := recs[len(recs)-1]; !strings.Contains(r.Reason, "demo-enclave") {
			t.Errorf("dev=%v: the audit record lost the policy's detail: %q", dev, r.Reason)
		}
	}
}
