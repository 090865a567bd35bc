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
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	intelaspspb "github.com/asps-project/asps/api/intelasps"
	occlumpb "github.com/asps-project/asps/api/occlum"
	"github.com/asps-project/asps/audit"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
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
}

// Server is the gRPC server with every service registered.
type Server struct {
	opts   Options
	grpc   *grpc.Server
	health *health.Server
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
	// The handshake asks for a client certificate and, when one is given,
	// proves the client holds its key. The RA-TLS verification itself
	// (evidence, binding, quote) runs in each handler through
	// Verifier.PeerClaims — cached by certificate — so that a refusal,
	// including "no certificate", reaches the client as a gRPC status
	// naming the failed check and is audited, instead of a bare TLS
	// alert. No secret is served before it succeeds; only the health and
	// reflection services answer an unattested peer.
	tlsConf := opts.Verifier.ServerConfig(opts.Certificate)
	tlsConf.VerifyConnection = nil
	tlsConf.ClientAuth = tls.RequestClientCert
	s := &Server{opts: opts, health: health.NewServer()}
	sopts := []grpc.ServerOption{grpc.Creds(credentials.NewTLS(tlsConf))}
	if opts.Metrics != nil {
		sopts = append(sopts, grpc.ChainUnaryInterceptor(opts.Metrics.unaryInterceptor))
	}
	sopts = append(sopts,
		grpc.MaxRecvMsgSize(64<<10),
		grpc.MaxConcurrentStreams(128),
		grpc.ConnectionTimeout(10*time.Second),
		// Idle workloads' connections are closed; clients may not ping
		// more than every 10 s.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute}),
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

// Serve accepts connections on l until Stop or GracefulStop.
func (s *Server) Serve(l net.Listener) error {
	return s.grpc.Serve(l)
}

// GracefulStop stops accepting, lets in-flight requests finish, then stops.
func (s *Server) GracefulStop() {
	s.health.Shutdown()
	s.grpc.GracefulStop()
}

// Stop stops at once.
func (s *Server) Stop() { s.grpc.Stop() }

// SetServing reports the server (un)healthy, e.g. when the store is down.
func (s *Server) SetServing(ok bool) {
	st := healthpb.HealthCheckResponse_SERVING
	if !ok {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	s.health.SetServingStatus("", st)
}

// decision is one request's way through the checks, for the audit record.
type decision struct {
	rec    audit.Record
	claims *claims.Claims
	app    *policy.App
}

// reasonCode names why a request was refused, from a small fixed set (the
// sentinel errors of dcap, ratls, policy and store), for metrics labels
// and audit queries.
func reasonCode(err error) string {
	if r := dcap.ReasonOf(err); r != nil {
		return "quote: " + r.Error()
	}
	var re *ratls.Error
	if errors.As(err, &re) {
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
		d.rec.ReasonCode = "ratls: no client certificate"
		return status.Error(codes.Unauthenticated, "attestation: no client certificate: present an RA-TLS certificate whose quote binds its key")
	}
	c, err := s.opts.Verifier.PeerClaims(ctx, info.State)
	if err != nil {
		d.rec.ReasonCode = reasonCode(err)
		return status.Errorf(codes.Unauthenticated, "attestation: %v", err)
	}
	d.claims = c
	d.rec.FromClaims(c)
	d.rec.CollateralGrace = c.CollateralGrace
	return nil
}

// match finds the caller's app.
func (s *Server) match(ctx context.Context, d *decision) error {
	if err := s.peerClaims(ctx, d); err != nil {
		return err
	}
	if err := s.sessionClaims(ctx, d); err != nil {
		return err
	}
	app, err := s.opts.Policy.Match(d.claims)
	if err != nil {
		d.rec.ReasonCode = reasonCode(err)
		return status.Error(codes.PermissionDenied, err.Error())
	}
	d.app = app
	d.rec.App = app.ID
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
	d := &decision{rec: audit.Record{Service: service, Requested: names}}
	defer func() { s.finish(d, err) }()
	if err := s.match(ctx, d); err != nil {
		return nil, err
	}
	if pre != nil {
		if err := pre(ctx); err != nil {
			return nil, err
		}
	}
	refs, err := d.app.Authorize(names)
	if err != nil {
		d.rec.ReasonCode = reasonCode(err)
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
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
			return nil, err
		}
	}
	d.rec.Released = names
	// A release that cannot be audited does not happen.
	if err := s.opts.Audit.Record(s.record(d, nil)); err != nil {
		d.rec.Released = nil
		clear(vals)
		s.opts.Logger.Error("audit write failed; refusing the release", "err", err)
		return nil, status.Error(codes.Internal, "audit log unavailable")
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
	st := s.opts.Store
	if strings.HasPrefix(r.Ref, policy.InlinePrefix) {
		if s.opts.Inline == nil {
			d.rec.Reason = fmt.Sprintf("secret %q: no inline store configured", r.Name)
			return nil, status.Errorf(codes.NotFound, "secret %q not found", r.Name)
		}
		st = s.opts.Inline
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

// finish audits a refusal (an allow was audited before the release).
func (s *Server) finish(d *decision, err error) {
	if s.opts.Metrics != nil {
		s.opts.Metrics.decision(d, err)
	}
	if err == nil {
		return
	}
	if aerr := s.opts.Audit.Record(s.record(d, err)); aerr != nil {
		s.opts.Logger.Error("audit write failed", "err", aerr)
	}
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
	resp := whoAmI(d.claims)
	app, err := x.s.opts.Policy.Match(d.claims)
	if err != nil {
		resp.MatchError = err.Error()
	} else {
		resp.MatchedApp = app.ID
		resp.SecretNames = app.SecretNames()
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
		}
	}
	if t := c.TDX; t != nil {
		r.Tdx = &aspsv1.TdxIdentity{
			MrTd: t.MrTd, Rtmr0: t.Rtmr0, Rtmr1: t.Rtmr1, Rtmr2: t.Rtmr2, Rtmr3: t.Rtmr3,
			MrConfigId: t.MrConfigID, MrOwner: t.MrOwner, MrOwnerConfig: t.MrOwnerConfig,
			TdAttributes: t.TdAttributes, Xfam: t.Xfam, MrSeam: t.MrSeam, MrSignerSeam: t.MrSignerSeam, TeeTcbSvn: t.TeeTcbSvn,
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
				return status.Errorf(codes.FailedPrecondition, "secret %q is binary; Intel ASPS's reply carries text only (use asps.v1.Secrets)", req.GetKey())
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
func checkIntelCtx(ctx context.Context, c string) error {
	if strings.TrimSpace(c) == "" {
		return nil
	}
	blk, _ := pem.Decode([]byte(c))
	if blk == nil {
		return status.Error(codes.InvalidArgument, "ctx: not a PEM certificate")
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return status.Error(codes.Unauthenticated, "attestation: the certificate in ctx must also be presented in the TLS handshake (a certificate sent only in ctx can be replayed)")
	}
	if !bytes.Equal(info.State.PeerCertificates[0].Raw, blk.Bytes) {
		return status.Error(codes.Unauthenticated, "attestation: the certificate in ctx is not the TLS client certificate of this connection")
	}
	return nil
}
