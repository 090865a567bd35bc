// Package server is the asps gRPC service: it takes the verified claims of
// an attested peer, asks the policy which app they are and which secrets it
// may read, fetches those from the store, audits the decision and replies
// on the same attested channel.
//
// Besides its own API (asps.v1.Secrets) it answers the services of the
// systems it replaces — Occlum's ratls.GrSecret and Intel ASPS's
// secretmanager.SecretManger — over the same attested channel and under
// the same policy.
package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	intelaspspb "github.com/asps-project/asps/api/intelasps"
	occlumpb "github.com/asps-project/asps/api/occlum"
	"github.com/asps-project/asps/audit"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/collateral"
	"github.com/asps-project/asps/policy"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/store"
)

// Options configure a Server.
type Options struct {
	// Certificate is the server's own TLS certificate (an RA-TLS one when
	// the server itself runs in a TEE, or an ordinary one).
	Certificate tls.Certificate
	// Verifier verifies the clients' RA-TLS certificates.
	Verifier *ratls.Verifier
	// Policy decides which app a workload is and what it may read.
	Policy *policy.Holder
	// Store holds the secrets; Inline, if set, serves references that
	// start with policy.InlinePrefix whose value the matched policy does
	// not carry itself (see policy.SecretRef.InlineValue).
	Store  store.Store
	Inline store.Store
	// Audit records every decision (nil: none).
	Audit *audit.Logger
	// Logger for operations (default slog.Default()).
	Logger *slog.Logger
	// Metrics, when set, counts requests and decisions.
	Metrics *Metrics
	// StoreTimeout bounds one secret fetch (default 10s).
	StoreTimeout time.Duration
	// Dev makes refusals and WhoAmI explain a policy mismatch with the
	// policy's own detail (the closest app's id and expected values).
	// Outside dev mode a workload learns only about itself; the detail
	// goes to the audit record and the log.
	Dev bool
	// Limits bound what peers, attested or not, can hold (zero values:
	// defaults).
	Limits Limits
}

// Limits bound the resources a peer can hold. Zero values take the
// defaults; a negative count disables that cap.
type Limits struct {
	// MaxConns caps open connections in all (default 4096) and
	// MaxConnsPerIP per source address (default 256). At the total cap
	// the oldest connection not yet attested is closed for the new one.
	MaxConns      int
	MaxConnsPerIP int
	// HandshakeTimeout bounds the TLS handshake and HTTP/2 preface
	// (default 5s).
	HandshakeTimeout time.Duration
	// UnauthenticatedLifetime bounds how long a connection stays open
	// before a request on it has been attested and matched an app of the
	// policy (default 30s).
	UnauthenticatedLifetime time.Duration
	// RequestWait bounds how long a stream may wait for its request
	// message after its headers (default 10s).
	RequestWait time.Duration
	// MaxConnectionAge bounds any connection's life (default 1h; it is
	// then drained with a 30s grace).
	MaxConnectionAge time.Duration
	// MaxHeaderListSize bounds a request's header list, decoded (default
	// 16 KiB: gRPC metadata of a workload is a few hundred bytes).
	MaxHeaderListSize uint32
	// FailedAttestationRate and FailedAttestationBurst rate-limit failed
	// attestations per source address (default 2/s, burst 20): over it,
	// requests from that address are refused with ResourceExhausted
	// before any verification, unless their certificate is already known
	// good.
	FailedAttestationRate  float64
	FailedAttestationBurst int
	// MaxVerifications bounds the verifications of certificates not yet
	// verified that run at once (default DefaultMaxVerifications); four
	// times as many may wait up to VerificationWait (default 500ms) for a
	// turn, and a request beyond is refused with RESOURCE_EXHAUSTED
	// (ReasonVerificationBusy). Certificates already verified skip it.
	MaxVerifications int
	VerificationWait time.Duration
	// AuditSampleInterval: refusals of peers that were not attested are
	// recorded at most once per interval and reason, with a count of
	// those suppressed (default 1s).
	AuditSampleInterval time.Duration
	// AuditProbeInterval: while the audit log cannot be written, how
	// often it is retried (default 5s).
	AuditProbeInterval time.Duration
	// MaxInFlight bounds the provisioning requests in progress (default
	// 64; negative: no bound); MaxQueue more may wait up to QueueWait
	// for a slot (defaults 256 and 1s). Requests beyond are shed with
	// RESOURCE_EXHAUSTED and a retry hint of ShedRetryAfter (default
	// 250ms) in the trailers RetryAfterKey and RetryPushbackKey.
	MaxInFlight    int
	MaxQueue       int
	QueueWait      time.Duration
	ShedRetryAfter time.Duration
	// DrainDelay: on GracefulStop, how long the server keeps answering
	// with health NOT_SERVING before it stops accepting, so that load
	// balancers and clients watching health move away first (default 0).
	DrainDelay time.Duration
}

func (l *Limits) defaults() {
	if l.MaxConns == 0 {
		l.MaxConns = 4096
	}
	if l.MaxConnsPerIP == 0 {
		l.MaxConnsPerIP = 256
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = 5 * time.Second
	}
	if l.UnauthenticatedLifetime <= 0 {
		l.UnauthenticatedLifetime = 30 * time.Second
	}
	if l.RequestWait <= 0 {
		l.RequestWait = 10 * time.Second
	}
	if l.MaxConnectionAge <= 0 {
		l.MaxConnectionAge = time.Hour
	}
	if l.MaxHeaderListSize == 0 {
		l.MaxHeaderListSize = 16 << 10
	}
	if l.FailedAttestationRate <= 0 {
		l.FailedAttestationRate = 2
	}
	if l.FailedAttestationBurst <= 0 {
		l.FailedAttestationBurst = 20
	}
	if l.MaxVerifications <= 0 {
		l.MaxVerifications = DefaultMaxVerifications()
	}
	if l.VerificationWait <= 0 {
		l.VerificationWait = 500 * time.Millisecond
	}
	if l.AuditSampleInterval <= 0 {
		l.AuditSampleInterval = time.Second
	}
	if l.AuditProbeInterval <= 0 {
		l.AuditProbeInterval = 5 * time.Second
	}
	if l.MaxInFlight == 0 {
		l.MaxInFlight = 64
	}
	if l.MaxQueue == 0 {
		l.MaxQueue = 256
	}
	if l.QueueWait <= 0 {
		l.QueueWait = time.Second
	}
	if l.ShedRetryAfter <= 0 {
		l.ShedRetryAfter = 250 * time.Millisecond
	}
}

// Server is the gRPC server with every service registered.
type Server struct {
	opts    Options
	grpc    *grpc.Server
	health  *health.Server
	fails   *sourceLimiter
	verify  *verifyGate
	sampler *refusalSampler
	// appRefusals limits the records of recognised workloads' refusals.
	appRefusals *appRefusalLimiter
	waiting     *waitCounter
	shed        *shedder

	mu       sync.Mutex
	limiters []*connLimiter
	storeOK  bool
	auditOK  bool
	draining bool
	stop     chan struct{}
	stopOnce sync.Once
}

// New builds the server; Serve starts it.
func New(opts Options) (*Server, error) {
	if opts.Verifier == nil || opts.Policy == nil || opts.Store == nil {
		return nil, errors.New("server: Verifier, Policy and Store are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = 10 * time.Second
	}
	opts.Limits.defaults()
	lim := opts.Limits
	// The handshake requires a client certificate, proves the client
	// holds its key and screens the certificate's structure (a supported
	// key, an evidence extension within the size cap): a peer without an
	// RA-TLS certificate is refused there, having cost a handshake, and
	// never reaches HTTP/2. The RA-TLS verification itself (binding,
	// quote) runs in each handler through Verifier.PeerClaims — cached by
	// certificate, failures too — so that its refusal reaches the client
	// as a gRPC status naming the failed check and is audited. No secret
	// is served before it succeeds. Health probes without a certificate
	// use the metrics listener's /healthz.
	tlsConf := opts.Verifier.ServerConfig(opts.Certificate)
	tlsConf.ClientAuth = tls.RequireAnyClientCert
	tlsConf.VerifyConnection = func(cs tls.ConnectionState) error { return opts.Verifier.Screen(cs.PeerCertificates) }
	s := &Server{opts: opts, health: health.NewServer(), storeOK: true, auditOK: true, stop: make(chan struct{}),
		fails:   newSourceLimiter(rate.Limit(lim.FailedAttestationRate), lim.FailedAttestationBurst, 16384),
		verify:  newVerifyGate(lim.MaxVerifications, lim.VerificationWait, opts.Metrics),
		sampler: newRefusalSampler(lim.AuditSampleInterval), appRefusals: newAppRefusalLimiter(lim.AuditSampleInterval), waiting: newWaitCounter(maxWaitingPerConn, maxWaitingUnattested, maxWaitingAttested),
		shed: newShedder(lim.MaxInFlight, lim.MaxQueue, lim.QueueWait, lim.ShedRetryAfter)}
	sopts := []grpc.ServerOption{
		grpc.Creds(&screenedCreds{TransportCredentials: credentials.NewTLS(tlsConf), s: s}),
		grpc.InTapHandle(s.tapRequestWait),
		grpc.ChainStreamInterceptor(s.streamArrived),
		grpc.ChainUnaryInterceptor(s.requestArrived),
	}
	if opts.Metrics != nil {
		sopts = append(sopts, grpc.ChainUnaryInterceptor(opts.Metrics.unaryInterceptor))
	}
	sopts = append(sopts, grpc.ChainUnaryInterceptor(s.admit))
	sopts = append(sopts,
		grpc.MaxRecvMsgSize(64<<10),
		grpc.MaxConcurrentStreams(128),
		// Most connections carry one small call: an 8 KiB read buffer
		// (gRPC's default 32 KiB) makes a fresh provision cheaper to
		// collect.
		grpc.ReadBufferSize(8<<10),
		// Decoded header lists are bounded: HPACK lets a few bytes on
		// the wire stand for kilobytes decoded (gRPC's default is 16 MiB).
		grpc.MaxHeaderListSize(lim.MaxHeaderListSize),
		grpc.ConnectionTimeout(lim.HandshakeTimeout),
		// Idle workloads' connections are closed; every connection is
		// drained after MaxConnectionAge, open streams or not; clients
		// may not ping more than every 10 s.
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: 5 * time.Minute, MaxConnectionAge: lim.MaxConnectionAge, MaxConnectionAgeGrace: 30 * time.Second,
			Time: 2 * time.Minute, Timeout: 20 * time.Second,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	s.grpc = grpc.NewServer(sopts...)
	aspsv1.RegisterSecretsServer(s.grpc, &secretsService{s: s})
	occlumpb.RegisterGrSecretServer(s.grpc, &occlumService{s: s})
	intelaspspb.RegisterSecretMangerServer(s.grpc, &intelService{s: s})
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// Serve accepts connections on l until Stop or GracefulStop, within the
// connection limits.
func (s *Server) Serve(l net.Listener) error {
	lim := s.opts.Limits
	cl := newConnLimiter(l, lim.MaxConns, lim.MaxConnsPerIP, lim.UnauthenticatedLifetime, s.opts.Metrics)
	s.mu.Lock()
	s.limiters = append(s.limiters, cl)
	first := len(s.limiters) == 1
	s.mu.Unlock()
	if first {
		go s.probeAudit()
	}
	return s.grpc.Serve(cl)
}

// GracefulStop drains: health (gRPC and Ready) goes NOT_SERVING first;
// the server keeps answering for Limits.DrainDelay so that clients
// watching health move to another replica; then it stops accepting, lets
// in-flight requests finish (each audited before its reply), and stops.
func (s *Server) GracefulStop() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.health.Shutdown()
	if d := s.opts.Limits.DrainDelay; d > 0 {
		time.Sleep(d)
	}
	s.grpc.GracefulStop()
	s.stopOnce.Do(func() { close(s.stop) })
}

// Stop stops at once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.grpc.Stop()
}

// SetServing reports the store (un)healthy. The server is SERVING when
// the store is reachable and the audit log can be written.
func (s *Server) SetServing(ok bool) {
	s.mu.Lock()
	s.storeOK = ok
	s.mu.Unlock()
	s.updateHealth()
}

// Ready says why the server cannot release secrets now (nil: it can): the
// store is unreachable or the audit log cannot be written. It is what a
// health probe without a client certificate asks (the metrics listener's
// /healthz).
func (s *Server) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.draining:
		return errors.New("shutting down")
	case !s.auditOK:
		return errors.New("audit log cannot be written: releases are refused until it can")
	case !s.storeOK:
		return errors.New("store unreachable")
	}
	return nil
}

func (s *Server) setAuditOK(ok bool) {
	s.mu.Lock()
	changed := s.auditOK != ok
	s.auditOK = ok
	s.mu.Unlock()
	if !changed {
		return
	}
	if ok {
		s.opts.Logger.Info("audit log writable again; releases resume")
	} else {
		s.opts.Logger.Error("audit log cannot be written; releases are refused and health is NOT_SERVING")
	}
	s.updateHealth()
}

func (s *Server) updateHealth() {
	st := healthpb.HealthCheckResponse_SERVING
	if s.Ready() != nil {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	s.health.SetServingStatus("", st)
}

// auditRecord writes one audit record and follows the log's health.
func (s *Server) auditRecord(r audit.Record) error {
	err := s.opts.Audit.Record(r)
	if err != nil {
		s.opts.Metrics.auditFailure()
	}
	s.setAuditOK(err == nil)
	return err
}

// probeAudit retries an audit log that failed until it works again (a
// load balancer sends no traffic to a NOT_SERVING instance, so no
// request would find out).
func (s *Server) probeAudit() {
	t := time.NewTicker(s.opts.Limits.AuditProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		ok := s.auditOK
		s.mu.Unlock()
		if ok {
			continue
		}
		if err := s.opts.Audit.Probe(); err != nil {
			s.opts.Metrics.auditFailure()
			continue
		}
		s.setAuditOK(true)
	}
}

// attested marks the connection of the peer at addr as that of a
// workload the policy recognises: such connections are neither evicted
// nor timed out as unattested. A quote that verifies is not enough (any
// genuine TEE has one).
func (s *Server) attested(addr string) {
	s.mu.Lock()
	ls := s.limiters
	s.mu.Unlock()
	for _, l := range ls {
		l.attested(addr)
	}
}

// isAttested reports whether the connection of the peer at addr (its
// remote address) has been attested and matched an app.
func (s *Server) isAttested(addr string) bool {
	s.mu.Lock()
	ls := s.limiters
	s.mu.Unlock()
	for _, l := range ls {
		if l.isAttested(addr) {
			return true
		}
	}
	return false
}

// ConnCounts returns the open connections and, of those, the ones not yet
// attested (for tests and tools).
func (s *Server) ConnCounts() (open, unattested int) {
	s.mu.Lock()
	ls := s.limiters
	s.mu.Unlock()
	for _, l := range ls {
		o, u := l.counts()
		open += o
		unattested += u
	}
	return open, unattested
}

type requestWaitKey struct{}

// errRequestWait cancels a stream whose request message did not come in
// time.
var errRequestWait = errors.New("the request message did not arrive in time")

// tapRequestWait runs when a stream's headers arrive, before any handler:
// the stream is cancelled unless its request message arrives within
// Limits.RequestWait (a stream waiting for a body that never comes holds
// its headers and keeps the connection from being idle). On any
// connection at most maxWaitingPerConn streams may wait at once, and at
// most maxWaitingUnattested in all on connections not attested and
// recognised (maxWaitingAttested on recognised ones): a stream over it is
// refused at once (REFUSED_STREAM semantics: gRPC clients retry it), so
// that decoded headers — up to the header-list limit each — cannot pile
// up 128 streams deep on every connection an anonymous crowd, or a
// recognised workload, holds.
func (s *Server) tapRequestWait(ctx context.Context, _ *tap.Info) (context.Context, error) {
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	release, ok := s.waiting.enter(addr, s.isAttested(addr))
	if !ok {
		s.opts.Metrics.connRefused("stream_waiting")
		return nil, status.Error(codes.Unavailable, "too many requests waiting for their message; retry")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	t := time.AfterFunc(s.opts.Limits.RequestWait, func() { cancel(errRequestWait) })
	w := &requestWait{t: t, release: release}
	context.AfterFunc(ctx, func() { t.Stop(); cancel(nil); w.done() })
	return context.WithValue(ctx, requestWaitKey{}, w), nil
}

type requestWait struct {
	t       *time.Timer
	release func()
	once    sync.Once
}

func (w *requestWait) done() { w.once.Do(w.release) }

func stopRequestWait(ctx context.Context) {
	if w, ok := ctx.Value(requestWaitKey{}).(*requestWait); ok {
		w.t.Stop()
		w.done()
	}
}

// requestArrived: a unary handler runs once its request message is in.
func (s *Server) requestArrived(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	stopRequestWait(ctx)
	return h(ctx, req)
}

// streamArrived: streaming methods (health Watch, reflection) read their
// messages themselves and stay open as long as the client likes. They are
// served only on a connection where a request has been attested and
// matched an app: otherwise a peer with any certificate that passes the
// handshake's screen could hold 128 of them on each of its connections
// (kilobytes each, heap and goroutine) for the connection's whole life.
// Probes use Health/Check (unary) or the health listener's /healthz.
//
// Health Watch is what a client balancing over replicas runs first on each
// new connection (gRPC's client-side health checking): it recognises the
// connection itself — the peer's certificate, and its session evidence if
// the call carries some, verified and matched to an app, as WhoAmI does (the verdict cache makes a repeat cheap; failures
// count against the source's limit) — and is served if that holds.
func (s *Server) streamArrived(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	stopRequestWait(ss.Context())
	p, ok := peer.FromContext(ss.Context())
	if ok && !s.isAttested(p.Addr.String()) && info.FullMethod == healthpb.Health_Watch_FullMethodName {
		d := &decision{}
		if err := s.peerClaims(ss.Context(), d); err != nil {
			return err
		}
		// Session evidence (a client with SessionEvidence sends it on
		// every call, Watch included) is verified as for a request, so an
		// app with binding: tcg-nonce is recognised here too.
		if err := s.sessionClaims(ss.Context(), d); err != nil {
			return err
		}
		if _, err := s.opts.Policy.Match(d.claims); err == nil {
			s.attested(d.rec.Peer)
		}
	}
	if !ok || !s.isAttested(p.Addr.String()) {
		return status.Error(codes.Unauthenticated, "streaming methods are served on a connection whose workload has been attested and recognised; "+
			"use Health/Check or /healthz for probes")
	}
	return h(srv, ss)
}

// screenedCreds counts and samples the handshakes the screen refuses.
type screenedCreds struct {
	credentials.TransportCredentials
	s *Server
}

func (c *screenedCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, ai, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		c.s.handshakeRefused(raw.RemoteAddr(), err)
	}
	return conn, ai, err
}

func (c *screenedCreds) Clone() credentials.TransportCredentials {
	return &screenedCreds{TransportCredentials: c.TransportCredentials.Clone(), s: c.s}
}

// Reason codes of the server's own refusals.
const (
	ReasonNoClientCertificate = "ratls: no client certificate"
	ReasonHandshakeFailed     = "tls: handshake failed"
	ReasonRateLimited         = "server: too many failed attestations from this address"
	ReasonAuditUnavailable    = "audit: write failed"
	// The compatibility services' own checks (a provision pre or
	// release hook).
	ReasonCtxMalformed     = "intel: ctx is not a PEM certificate"
	ReasonCtxNotConnection = "intel: ctx is not the connection's client certificate"
	ReasonBinaryValue      = "server: binary value for a text-only reply"
	ReasonServiceCheck     = "server: refused by the service's own check"
)

// handshakeRefused counts a failed handshake; those refused for their
// certificate are also recorded, sampled.
func (s *Server) handshakeRefused(addr net.Addr, err error) {
	code := ReasonHandshakeFailed
	var re *ratls.Error
	switch {
	case errors.As(err, &re):
		code = reasonCode(err)
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		code = ReasonNoClientCertificate
	}
	s.opts.Metrics.handshakeRefused(code)
	if code == ReasonHandshakeFailed {
		return // a scanner or a dropped connection: counted only
	}
	ok, suppressed := s.sampler.admit(code, time.Now())
	if !ok {
		return
	}
	reason := "no client certificate: present an RA-TLS certificate whose quote binds its key"
	if re != nil {
		reason = truncate(re.Error(), 256)
	}
	if aerr := s.auditRecord(audit.Record{Service: "tls handshake", Peer: addr.String(), Decision: audit.Deny,
		Code: codes.Unauthenticated.String(), ReasonCode: code, Reason: reason, Suppressed: suppressed}); aerr != nil {
		s.opts.Logger.Error("audit write failed", "err", aerr)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// decision is one request's way through the checks, for the audit record.
type decision struct {
	rec    audit.Record
	claims *claims.Claims
	app    *policy.App
	names  []string // asked for; recorded only once the peer is attested
	// store and inline read one version of a file store for the whole
	// request (store.Snapshotter), as app is one version of the policy.
	store, inline store.Store
}

// reasonCode names why a request was refused, from a small fixed set (the
// sentinel errors of dcap, ratls, policy and store), for metrics labels
// and audit queries. The most specific reason wins: a ratls reason, unless
// it is only "quote rejected" wrapping the quote verifier's own (dcap)
// reason.
func reasonCode(err error) string {
	var re *ratls.Error
	if errors.As(err, &re) && re.Reason != ratls.ErrQuoteRejected {
		return "ratls: " + re.Reason.Error()
	}
	if r := dcap.ReasonOf(err); r != nil {
		return "quote: " + r.Error()
	}
	if re != nil {
		return "ratls: " + re.Reason.Error()
	}
	var den *policy.Denial
	if errors.As(err, &den) {
		return "policy: " + den.Reason.Error()
	}
	for _, k := range []error{store.ErrNotFound, store.ErrPermissionDenied, store.ErrUnavailable} {
		if errors.Is(err, k) {
			return "store: " + k.Error()
		}
	}
	return ""
}

// peerClaims returns the verified claims of the caller.
func (s *Server) peerClaims(ctx context.Context, d *decision) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer")
	}
	d.rec.Peer = p.Addr.String()
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return status.Error(codes.Unauthenticated, "not a TLS connection")
	}
	if len(info.State.PeerCertificates) == 0 {
		d.rec.ReasonCode = ReasonNoClientCertificate
		return status.Error(codes.Unauthenticated, "attestation: no client certificate: present an RA-TLS certificate whose quote binds its key")
	}
	// A certificate not yet verified costs a verification: refused
	// before any when its source (or the source's /48) keeps failing, and
	// verified within the bound on concurrent verifications (guard.go).
	now := time.Now()
	if !s.opts.Verifier.Known(info.State.PeerCertificates[0]) {
		release, err := s.admitVerification(ctx, p.Addr, now, d)
		if err != nil {
			return err
		}
		defer release()
	}
	c, err := s.opts.Verifier.PeerClaims(ctx, info.State)
	if err != nil {
		s.fails.failed(p.Addr, now)
		return s.attestationFailed(d, "attestation", err)
	}
	d.claims = c
	d.rec.FromClaims(c)
	d.rec.CollateralGrace = c.CollateralGrace
	d.rec.Requested = d.names
	return nil
}

// attestationFailed is the refusal of evidence that did not verify. A
// collateral document the server could not obtain is the server's
// problem: outside dev mode the peer learns which document and why, never
// the collateral service's URL, address or text (the audit record keeps
// them).
func (s *Server) attestationFailed(d *decision, what string, err error) error {
	d.rec.ReasonCode = reasonCode(err)
	var ce *collateral.Error
	if !s.opts.Dev && errors.As(err, &ce) && ce.Reason != nil {
		d.rec.Reason = err.Error()
		code, later := codes.Unauthenticated, ""
		for _, r := range []error{collateral.ErrUnavailable, collateral.ErrExpired, collateral.ErrBusy, collateral.ErrRateLimited} {
			if errors.Is(ce.Reason, r) {
				code, later = codes.Unavailable, "; try again later"
			}
		}
		return status.Errorf(code, "%s: the server could not obtain the collateral for this quote (%s: %v)%s", what, ce.Key, ce.Reason, later)
	}
	return status.Errorf(codes.Unauthenticated, "%s: %v", what, err)
}

// denialMessage is what a workload is told of a policy refusal. Outside
// dev mode, when no app matched, it names only the workload's own values,
// never another app's id or measurements (the audit record and the log
// keep the policy's detail).
func (s *Server) denialMessage(err error) string {
	var den *policy.Denial
	if s.opts.Dev || !errors.As(err, &den) {
		return err.Error()
	}
	switch den.Reason {
	case policy.ErrNoMatchingApp, policy.ErrTEEMismatch:
		msg := "policy: " + den.Reason.Error() + ": no app in the policy accepts this workload's identity"
		if len(den.Mismatches) > 0 {
			own := make([]string, len(den.Mismatches))
			for i, m := range den.Mismatches {
				own[i] = m.Field + " " + m.Seen
			}
			msg += " (its " + strings.Join(own, ", ") + ")"
		}
		return msg
	}
	return err.Error()
}

// match finds the caller's app.
func (s *Server) match(ctx context.Context, d *decision) error {
	if err := s.peerClaims(ctx, d); err != nil {
		return err
	}
	if err := s.sessionClaims(ctx, d); err != nil {
		return err
	}
	// One policy snapshot judges the request, and the record names it.
	pol := s.opts.Policy.Policy()
	d.rec.PolicySHA256 = pol.Digest
	app, err := pol.Match(d.claims)
	if err != nil {
		d.rec.ReasonCode = reasonCode(err)
		d.rec.Reason = err.Error()
		return status.Error(codes.PermissionDenied, s.denialMessage(err))
	}
	d.app = app
	d.rec.App = app.ID
	s.attested(d.rec.Peer)
	return nil
}

// Request limits: a workload asks for a handful of secrets by name.
const (
	MaxNames      = 64
	MaxNameLength = 256
)

// checkNames refuses empty, oversized, repeated or too many names before
// anything is recorded, so an unattested peer cannot fill the audit log.
func checkNames(names []string) error {
	if len(names) == 0 {
		return status.Error(codes.InvalidArgument, "no secret names")
	}
	if len(names) > MaxNames {
		return status.Errorf(codes.InvalidArgument, "%d secret names; at most %d per request", len(names), MaxNames)
	}
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		switch {
		case n == "":
			return status.Errorf(codes.InvalidArgument, "secret name %d is empty", i)
		case len(n) > MaxNameLength:
			return status.Errorf(codes.InvalidArgument, "secret name %d is %d bytes; at most %d", i, len(n), MaxNameLength)
		case seen[n]:
			return status.Errorf(codes.InvalidArgument, "secret %q asked for twice", n)
		}
		seen[n] = true
	}
	return nil
}

// provision is the whole decision for a set of names: all or nothing.
// pre, when set, runs after the workload is attested and matched (a
// compatibility service's own check); release, when set, vets the values
// before they are released. Every outcome is audited.
func (s *Server) provision(ctx context.Context, service string, names []string, pre func(context.Context) error, release func([][]byte) error) (vals [][]byte, err error) {
	if err := checkNames(names); err != nil {
		return nil, err
	}
	d := &decision{rec: audit.Record{Service: service}, names: names}
	defer func() { s.finish(d, err) }()
	if err := s.match(ctx, d); err != nil {
		return nil, err
	}
	if pre != nil {
		if err := pre(ctx); err != nil {
			d.rec.ReasonCode = hookReason(err)
			return nil, err
		}
	}
	refs, err := d.app.Authorize(names)
	if err != nil {
		d.rec.ReasonCode = reasonCode(err)
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	d.store, d.inline = snapshot(s.opts.Store), snapshot(s.opts.Inline)
	vals = make([][]byte, len(refs))
	for i, r := range refs {
		v, err := s.fetch(ctx, d, r)
		if err != nil {
			clear(vals)
			return nil, err
		}
		vals[i] = v
	}
	if release != nil {
		if err := release(vals); err != nil {
			clear(vals)
			d.rec.ReasonCode = hookReason(err)
			return nil, err
		}
	}
	d.rec.Released = names
	// A release that cannot be audited does not happen.
	if err := s.auditRecord(s.record(d, nil)); err != nil {
		d.rec.Released = nil
		d.rec.ReasonCode = ReasonAuditUnavailable
		clear(vals)
		s.opts.Logger.Error("audit write failed; refusing the release", "app", d.rec.App, "err", err)
		return nil, status.Error(codes.Unavailable, "audit log unavailable: nothing was released; try again later")
	}
	return vals, nil
}

// fetch reads one secret. The workload is told which secret failed and
// how (NotFound, PermissionDenied, Unavailable); the store's own message —
// addresses, paths, its error text — goes only to the audit record and
// the log.
func (s *Server) fetch(ctx context.Context, d *decision, r policy.SecretRef) ([]byte, error) {
	// A value imported inline comes with the matched app's policy
	// snapshot: a reload since the match cannot change it.
	if v, ok := r.InlineValue(); ok {
		return v, nil
	}
	st := d.store
	if strings.HasPrefix(r.Ref, policy.InlinePrefix) {
		if d.inline == nil {
			d.rec.Reason = fmt.Sprintf("secret %q: no inline store configured", r.Name)
			return nil, status.Errorf(codes.NotFound, "secret %q not found", r.Name)
		}
		st = d.inline
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
	defer cancel()
	start := time.Now()
	v, err := st.Get(ctx, store.Request{Name: r.Name, Ref: r.Ref, Token: r.Token.Reveal()})
	if s.opts.Metrics != nil {
		s.opts.Metrics.observeStore(st.Kind(), time.Since(start), err)
	}
	if err == nil {
		return v, nil
	}
	d.rec.Reason = err.Error()
	d.rec.ReasonCode = reasonCode(err)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, status.Errorf(codes.NotFound, "secret %q not found in the store", r.Name)
	case errors.Is(err, store.ErrPermissionDenied):
		return nil, status.Errorf(codes.PermissionDenied, "secret %q: the store refused this app's credential", r.Name)
	default:
		return nil, status.Errorf(codes.Unavailable, "secret %q: the store is unavailable; nothing was released, try again later", r.Name)
	}
}

// snapshot pins a store that can be pinned (a secrets file) for one
// request; other stores (Vault) are read as they are.
func snapshot(st store.Store) store.Store {
	if sn, ok := st.(store.Snapshotter); ok {
		return sn.Snapshot()
	}
	return st
}

func (s *Server) record(d *decision, err error) audit.Record {
	r := d.rec
	if err == nil {
		r.Decision = audit.Allow
		return r
	}
	r.Decision = audit.Deny
	r.Released = nil
	st, _ := status.FromError(err)
	r.Code = st.Code().String()
	if r.Reason == "" {
		r.Reason = st.Message()
	}
	return r
}

// finish audits a refusal (an allow was audited before the release). A
// refusal of a peer that no app of the policy recognises — not attested,
// or attested with an identity no app names (anyone who rents a TEE can
// attest) — is recorded without the names it asked for, and sampled per
// reason (see Limits.AuditSampleInterval); the stranger's identity and
// the policy's reason stay in the sampled record. A refusal of a
// recognised workload (it asked for names its app may not read, or the
// store refused) is recorded with at most maxRecordedNames of its names
// (and their count), and rate-limited per app (a burst of
// appRefusalBurst, then one per AuditSampleInterval, with the count of
// those left out): the workload's own code could
// otherwise write records as fast as it can ask and rotate the records of
// past releases out of the audit file; the records of releases are what
// the audit must keep. Dev mode records every refusal of an attested
// workload in full (a developer iterating on an enclave wants each one).
func (s *Server) finish(d *decision, err error) {
	if s.opts.Metrics != nil {
		s.opts.Metrics.decision(d, err)
	}
	if err == nil || d.rec.ReasonCode == ReasonAuditUnavailable {
		return
	}
	r := s.record(d, err)
	switch {
	case d.app == nil && (d.claims == nil || !s.opts.Dev):
		ok, suppressed := s.sampler.admit(r.ReasonCode, time.Now())
		if !ok {
			return
		}
		r.Requested, r.RequestedCount, r.Suppressed = nil, len(d.names), suppressed
		limit := 256
		if d.claims != nil {
			limit = 1024 // the policy's account of what differed
		}
		r.Reason = truncate(r.Reason, limit)
	case d.app != nil && !s.opts.Dev:
		ok, suppressed := s.appRefusals.admit(d.app.ID)
		if !ok {
			return
		}
		r.Suppressed = suppressed
		if len(r.Requested) > maxRecordedNames {
			r.Requested, r.RequestedCount = r.Requested[:maxRecordedNames], len(d.names)
		}
		r.Reason = truncate(r.Reason, 1024)
	}
	if aerr := s.auditRecord(r); aerr != nil {
		s.opts.Logger.Error("audit write failed", "err", aerr)
	}
}

// maxRecordedNames is how many of the names a recognised workload asked
// for the record of its refusal keeps (RequestedCount says how many
// there were).
const maxRecordedNames = 8

// appRefusalBurst is how many refusals of one app are recorded at once
// before its records are limited to one per AuditSampleInterval.
const appRefusalBurst = 16

// appRefusalLimiter rate-limits the records of refusals of recognised
// workloads, per app. Its keys are app ids of the policy; it forgets them
// all when it holds maxAppRefusalKeys (policies are reloaded).
type appRefusalLimiter struct {
	every time.Duration
	mu    sync.Mutex
	apps  map[string]*appRefusals
}

type appRefusals struct {
	lim        *rate.Limiter
	suppressed uint64
}

const maxAppRefusalKeys = 4096

func newAppRefusalLimiter(every time.Duration) *appRefusalLimiter {
	return &appRefusalLimiter{every: every, apps: map[string]*appRefusals{}}
}

// admit says whether a refusal of app is recorded now, and if so how many
// were left out before it.
func (l *appRefusalLimiter) admit(app string) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.apps[app]
	if a == nil {
		if len(l.apps) >= maxAppRefusalKeys {
			clear(l.apps)
		}
		a = &appRefusals{lim: rate.NewLimiter(rate.Every(l.every), appRefusalBurst)}
		l.apps[app] = a
	}
	if !a.lim.Allow() {
		a.suppressed++
		return false, 0
	}
	n := a.suppressed
	a.suppressed = 0
	return true, n
}

// secretsService is asps.v1.Secrets.
type secretsService struct {
	aspsv1.UnimplementedSecretsServer
	s *Server
}

func (x *secretsService) GetSecrets(ctx context.Context, req *aspsv1.GetSecretsRequest) (*aspsv1.GetSecretsResponse, error) {
	vals, err := x.s.provision(ctx, "asps.v1.Secrets/GetSecrets", req.GetNames(), nil, nil)
	if err != nil {
		return nil, err
	}
	resp := &aspsv1.GetSecretsResponse{Secrets: make([]*aspsv1.Secret, len(vals))}
	for i, v := range vals {
		resp.Secrets[i] = &aspsv1.Secret{Name: req.GetNames()[i], Value: v}
	}
	return resp, nil
}

func (x *secretsService) GetSecret(ctx context.Context, req *aspsv1.GetSecretRequest) (*aspsv1.Secret, error) {
	vals, err := x.s.provision(ctx, "asps.v1.Secrets/GetSecret", []string{req.GetName()}, nil, nil)
	if err != nil {
		return nil, err
	}
	return &aspsv1.Secret{Name: req.GetName(), Value: vals[0]}, nil
}

func (x *secretsService) WhoAmI(ctx context.Context, _ *aspsv1.WhoAmIRequest) (*aspsv1.WhoAmIResponse, error) {
	d := &decision{}
	if err := x.s.peerClaims(ctx, d); err != nil {
		return nil, err
	}
	// Session evidence, when sent, is judged here as for a release, so a
	// tcg-nonce app shows as matched.
	if err := x.s.sessionClaims(ctx, d); err != nil {
		return nil, err
	}
	resp := whoAmI(d.claims)
	app, err := x.s.opts.Policy.Match(d.claims)
	if err != nil {
		resp.MatchError = x.s.denialMessage(err)
		// A stranger may call at will on a cached certificate: outside
		// dev mode the line is sampled per reason.
		if ok, suppressed := x.s.sampler.admit("whoami "+reasonCode(err), time.Now()); ok || x.s.opts.Dev {
			x.s.opts.Logger.Info("whoami: no app matches", "peer", d.rec.Peer, "reason", truncate(err.Error(), 1024), "suppressed", suppressed)
		}
	} else {
		resp.MatchedApp = app.ID
		resp.SecretNames = app.SecretNames()
		x.s.attested(d.rec.Peer)
	}
	return resp, nil
}

func whoAmI(c *claims.Claims) *aspsv1.WhoAmIResponse {
	r := &aspsv1.WhoAmIResponse{
		Tee: string(c.TEE), Runtime: c.Runtime, QuoteVersion: uint32(c.QuoteVersion), Debug: c.Debug,
		TcbStatus: c.TCBStatus, AdvisoryIds: c.AdvisoryIDs, Fmspc: c.FMSPC, Simulated: c.Simulated,
		ReportData: c.ReportData,
	}
	if !c.TCBDate.IsZero() {
		r.TcbDate = c.TCBDate.UTC().Format(time.RFC3339)
	}
	if !c.CollateralExpiry.IsZero() {
		r.CollateralExpiry = c.CollateralExpiry.UTC().Format(time.RFC3339)
	}
	if s := c.SGX; s != nil {
		r.Sgx = &aspsv1.SgxIdentity{
			MrEnclave: s.MrEnclave, MrSigner: s.MrSigner, IsvProdId: uint32(s.IsvProdID), IsvSvn: uint32(s.IsvSvn),
			ConfigId: s.ConfigID, ConfigSvn: uint32(s.ConfigSvn), Attributes: s.Attributes, MiscSelect: s.MiscSelect,
			IsvExtProdId: s.IsvExtProdID, IsvFamilyId: s.IsvFamilyID, CpuSvn: s.CPUSvn,
			Mode64: s.Mode64, ProvisionKey: s.ProvisionKey, EinittokenKey: s.EInitTokenKey, Kss: s.KSS,
		}
	}
	if t := c.TDX; t != nil {
		r.Tdx = &aspsv1.TdxIdentity{
			MrTd: t.MrTd, Rtmr0: t.Rtmr0, Rtmr1: t.Rtmr1, Rtmr2: t.Rtmr2, Rtmr3: t.Rtmr3,
			MrConfigId: t.MrConfigID, MrOwner: t.MrOwner, MrOwnerConfig: t.MrOwnerConfig,
			TdAttributes: t.TdAttributes, Xfam: t.Xfam, MrSeam: t.MrSeam, MrSignerSeam: t.MrSignerSeam, TeeTcbSvn: t.TeeTcbSvn,
			SeamAttributes: t.SeamAttributes, TeeTcbSvn2: t.TeeTcbSvn2, MrServicetd: t.MrServiceTd,
		}
	}
	return r
}

// occlumService is Occlum's ratls.GrSecret: the value goes back as a
// JSON-quoted base64 string, as Occlum's client expects.
type occlumService struct {
	occlumpb.UnimplementedGrSecretServer
	s *Server
}

func (x *occlumService) GetSecret(ctx context.Context, req *occlumpb.SecretRequest) (*occlumpb.SecretReply, error) {
	vals, err := x.s.provision(ctx, "ratls.GrSecret/GetSecret", []string{req.GetName()}, nil, nil)
	if err != nil {
		return nil, err
	}
	return &occlumpb.SecretReply{Secret: occlumEncode(vals[0])}, nil
}

// intelService is Intel ASPS's secretmanager.SecretManger (sic): the value
// goes back as the string the store holds.
type intelService struct {
	intelaspspb.UnimplementedSecretMangerServer
	s *Server
}

func (x *intelService) GetSecret(ctx context.Context, req *intelaspspb.SecretRequest) (*intelaspspb.SecretReply, error) {
	vals, err := x.s.provision(ctx, "secretmanager.SecretManger/GetSecret", []string{req.GetKey()},
		func(ctx context.Context) error { return checkIntelCtx(ctx, req.GetCtx()) },
		func(vals [][]byte) error {
			// Its reply is a protobuf string: binary values cannot go.
			if !utf8.Valid(vals[0]) {
				return withReason(ReasonBinaryValue, status.Errorf(codes.FailedPrecondition, "secret %q is binary; Intel ASPS's reply carries text only (use asps.v1.Secrets)", req.GetKey()))
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return &intelaspspb.SecretReply{Value: string(vals[0])}, nil
}

// checkIntelCtx: Intel's client sends its RA-TLS certificate in ctx over a
// TLS connection without a client certificate, so anyone who saw it could
// replay it. asps needs the certificate in the handshake, where the client
// proves it holds the key; a ctx certificate, if sent, must be that same
// certificate.
// reasonErr is a hook's refusal with its reason code; it is the gRPC
// status err to the caller.
type reasonErr struct {
	code string
	err  error
}

func (e *reasonErr) Error() string              { return e.err.Error() }
func (e *reasonErr) Unwrap() error              { return e.err }
func (e *reasonErr) GRPCStatus() *status.Status { s, _ := status.FromError(e.err); return s }

func withReason(code string, err error) error { return &reasonErr{code: code, err: err} }

// hookReason is the reason code of a pre or release hook's refusal: its
// own, else ReasonServiceCheck (a refusal is never recorded without one).
func hookReason(err error) string {
	var re *reasonErr
	if errors.As(err, &re) {
		return re.code
	}
	return ReasonServiceCheck
}

func checkIntelCtx(ctx context.Context, c string) error {
	if strings.TrimSpace(c) == "" {
		return nil
	}
	blk, _ := pem.Decode([]byte(c))
	if blk == nil {
		return withReason(ReasonCtxMalformed, status.Error(codes.InvalidArgument, "ctx: not a PEM certificate"))
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return withReason(ReasonCtxNotConnection, status.Error(codes.Unauthenticated, "attestation: the certificate in ctx must also be presented in the TLS handshake (a certificate sent only in ctx can be replayed)"))
	}
	if !bytes.Equal(info.State.PeerCertificates[0].Raw, blk.Bytes) {
		return withReason(ReasonCtxNotConnection, status.Error(codes.Unauthenticated, "attestation: the certificate in ctx is not the TLS client certificate of this connection"))
	}
	return nil
}
