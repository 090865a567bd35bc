package server

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/asps-project/asps/ratls"
)

// sessionClaims, when the request carries session evidence
// (ratls.SessionMetadataKey), verifies it for this connection and puts its
// fresh claims — Binding claims.BindingTCGNonce — in place of the
// certificate's, so that an app whose policy says "binding: tcg-nonce" can
// match. Evidence that does not verify refuses the request: it is never
// ignored. It runs after peerClaims has verified the certificate.
func (s *Server) sessionClaims(ctx context.Context, d *decision) error {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(ratls.SessionMetadataKey)
	switch len(vals) {
	case 0:
		return nil
	case 1:
	default:
		d.rec.ReasonCode = "ratls: " + ratls.ErrMalformedEvidence.Error()
		return status.Errorf(codes.InvalidArgument, "%d session evidence entries; send one", len(vals))
	}
	var cs tls.ConnectionState
	if p, ok := peer.FromContext(ctx); ok {
		switch ai := p.AuthInfo.(type) {
		case credentials.TLSInfo:
			cs = ai.State
		case ratls.AuthInfo:
			cs = ai.State
		}
	}
	// Session evidence is verified on every request that brings new
	// evidence, whatever the certificate: its failures count against the
	// source address like a certificate's, and over the limit it is
	// refused before it is verified.
	var src net.Addr
	now := time.Now()
	if p, ok := peer.FromContext(ctx); ok {
		src = p.Addr
	}
	release, err := s.admitVerification(ctx, src, now, d)
	if err != nil {
		return err
	}
	defer release()
	c, err := s.opts.Verifier.VerifySession(ctx, cs, []byte(vals[0]))
	if err != nil {
		s.fails.failed(src, now)
		return s.attestationFailed(d, "attestation: session evidence", err)
	}
	if !ratls.SameWorkload(d.claims, c) {
		d.rec.ReasonCode = "ratls: " + ratls.ErrBindingMismatch.Error()
		return status.Error(codes.Unauthenticated, "attestation: session evidence: it comes from another workload than the certificate")
	}
	d.claims = c
	d.rec.FromClaims(c)
	d.rec.CollateralGrace = c.CollateralGrace
	return nil
}
