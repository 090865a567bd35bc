package ratls

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/asps-project/asps/claims"
)

// AuthInfo is the gRPC peer AuthInfo of a connection made with
// NewServerCredentials or NewClientCredentials: the TLS state plus the
// peer's verified claims, fixed at handshake time for the connection's
// life.
type AuthInfo struct {
	credentials.TLSInfo
	// Claims are the peer's verified claims; nil when the peer was
	// authenticated another way (ServerByCA, ServerByPin).
	Claims *claims.Claims
}

// AuthType returns "ratls".
func (AuthInfo) AuthType() string { return "ratls" }

// NewServerCredentials returns gRPC transport credentials that serve cert
// and require clients to present RA-TLS certificates that verify with v.
// Handlers read the client's claims with ClaimsFromPeer.
func NewServerCredentials(cert tls.Certificate, v *Verifier) credentials.TransportCredentials {
	return &creds{TransportCredentials: credentials.NewTLS(v.ServerConfig(cert)), verifier: v}
}

// NewClientCredentials returns gRPC transport credentials that present cert
// and authenticate the server as server says. With ServerByRATLS the
// server's claims are in the connection's AuthInfo.
func NewClientCredentials(cert tls.Certificate, server ServerAuth) credentials.TransportCredentials {
	var v *Verifier
	if server.kind == authRATLS {
		v = server.verifier
	}
	return &creds{TransportCredentials: credentials.NewTLS(ClientConfig(cert, server)), verifier: v}
}

// creds wraps crypto/tls transport credentials and attaches the claims the
// handshake's own verifier produced.
type creds struct {
	credentials.TransportCredentials
	verifier *Verifier // nil: the peer is not RA-TLS verified
}

func (c *creds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, ai, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return nil, nil, err
	}
	return c.attach(context.Background(), conn, ai)
}

func (c *creds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, ai, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		return nil, nil, err
	}
	return c.attach(ctx, conn, ai)
}

// attach looks up the claims the verifier produced during the handshake
// (from its cache; verifying again if evicted in between).
func (c *creds) attach(ctx context.Context, conn net.Conn, ai credentials.AuthInfo) (net.Conn, credentials.AuthInfo, error) {
	info, ok := ai.(credentials.TLSInfo)
	if !ok {
		conn.Close()
		return nil, nil, fmt.Errorf("ratls: unexpected AuthInfo %T from TLS credentials", ai)
	}
	out := AuthInfo{TLSInfo: info}
	if c.verifier != nil {
		ctx, cancel := context.WithTimeout(ctx, c.verifier.timeout())
		defer cancel()
		cl, err := c.verifier.PeerClaims(ctx, info.State)
		if err != nil {
			conn.Close()
			return nil, nil, err
		}
		out.Claims = cl
	}
	return conn, out, nil
}

func (c *creds) Clone() credentials.TransportCredentials {
	return &creds{TransportCredentials: c.TransportCredentials.Clone(), verifier: c.verifier}
}

// ClaimsFromPeer returns the verified claims of the gRPC peer in ctx (a
// handler's or interceptor's context). It reads the AuthInfo of
// NewServerCredentials / NewClientCredentials, and falls back to
// never for plain TLS credentials built on
// ServerConfig.
func ClaimsFromPeer(ctx context.Context) (*claims.Claims, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil, fail("peer claims", ErrNoClaims, "no gRPC peer information in the context")
	}
	switch ai := p.AuthInfo.(type) {
	case AuthInfo:
		if ai.Claims == nil {
			return nil, fail("peer claims", ErrNoClaims, "peer was not authenticated by RA-TLS")
		}
		return cloneClaims(ai.Claims), nil
	case *AuthInfo:
		if ai.Claims == nil {
			return nil, fail("peer claims", ErrNoClaims, "peer was not authenticated by RA-TLS")
		}
		return cloneClaims(ai.Claims), nil
	case credentials.TLSInfo:
		return nil, fail("peer claims", ErrNoClaims, "plain TLS credentials carry no verified claims: use NewServerCredentials, or the Verifier's PeerClaims")
	}
	return nil, fail("peer claims", ErrNoClaims, "peer AuthInfo is %s, not TLS", p.AuthInfo.AuthType())
}
