package ratls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"time"

	"github.com/asps-project/asps/claims"
)

// ServerConfig returns a TLS 1.3 server configuration presenting cert and
// requiring every client to present an RA-TLS certificate that verifies
// with NewVerifier(qv, opts). The peer's claims are then available from
// (*Verifier).PeerClaims. See (*Verifier).ServerConfig.
func ServerConfig(cert tls.Certificate, qv QuoteVerifier, opts VerifyOptions) *tls.Config {
	return NewVerifier(qv, opts).ServerConfig(cert)
}

// ServerConfig returns a TLS 1.3 server configuration presenting cert
// (an RA-TLS certificate from NewCertificate, or any other) that requires a
// client certificate and verifies it with v during the handshake; the
// handshake fails with v's error otherwise. A verification is bounded by
// VerifyOptions.Timeout (crypto/tls gives VerifyConnection no context).
// Session tickets are off: every connection proves possession of the
// certified key.
func (v *Verifier) ServerConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		ClientAuth:             tls.RequireAnyClientCert,
		SessionTicketsDisabled: true,
		VerifyConnection:       v.verifyConnection(),
	}
}

// verifyConnection returns a tls.Config.VerifyConnection that verifies the
// peer's leaf certificate within the verifier's Timeout.
func (v *Verifier) verifyConnection() func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		ctx, cancel := context.WithTimeout(context.Background(), v.timeout())
		defer cancel()
		_, err := v.verifyLeaf(ctx, cs.PeerCertificates)
		return err
	}
}

func (v *Verifier) timeout() time.Duration {
	if v == nil || v.opts.Timeout <= 0 {
		return 30 * time.Second
	}
	return v.opts.Timeout
}

// ServerAuth says how a client authenticates the server. Build one with
// ServerByRATLS, ServerByCA or ServerByPin; the zero value refuses every
// server (ErrNoVerifier).
type ServerAuth struct {
	verifier   *Verifier
	pool       *x509.CertPool
	serverName string
	pins       [][32]byte
	kind       int
}

const (
	authNone = iota
	authRATLS
	authCA
	authPin
)

// ServerByRATLS authenticates the server by its RA-TLS certificate
// (mutual attestation): the server's quote must verify with v and bind the
// server's key. Pin the server's measurements with VerifyOptions.Check.
func ServerByRATLS(v *Verifier) ServerAuth { return ServerAuth{kind: authRATLS, verifier: v} }

// ServerByCA authenticates the server the ordinary way: a chain to a root
// in pool (nil: the system roots) and serverName (empty: the name dialled).
func ServerByCA(pool *x509.CertPool, serverName string) ServerAuth {
	return ServerAuth{kind: authCA, pool: pool, serverName: serverName}
}

// ServerByPin authenticates the server by the SHA-256 of its certificate's
// SubjectPublicKeyInfo (see SPKIHash), which must equal one of pins.
func ServerByPin(pins ...[32]byte) ServerAuth {
	return ServerAuth{kind: authPin, pins: append([][32]byte(nil), pins...)}
}

// ClientConfig returns a TLS 1.3 client configuration that presents cert
// (normally from NewCertificate; an empty cert presents none) and
// authenticates the server as server says. With ServerByRATLS the server's
// claims are available from the verifier's PeerClaims.
func ClientConfig(cert tls.Certificate, server ServerAuth) *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
	}
	if len(cert.Certificate) > 0 {
		c.Certificates = []tls.Certificate{cert}
	}
	switch server.kind {
	case authRATLS:
		// The server's certificate is self-signed: crypto/tls's chain
		// check is replaced by the RA-TLS verification.
		c.InsecureSkipVerify = true
		c.VerifyConnection = server.verifier.verifyConnection()
	case authCA:
		c.RootCAs = server.pool
		c.ServerName = server.serverName
	case authPin:
		c.InsecureSkipVerify = true
		pins := server.pins
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fail("verify server", ErrNoCertificate, "want a certificate with a pinned key")
			}
			got := SPKIHash(cs.PeerCertificates[0])
			for _, p := range pins {
				if got == p {
					return nil
				}
			}
			want := make([]string, len(pins))
			for i, p := range pins {
				want[i] = hex.EncodeToString(p[:])
			}
			return fail("verify server", ErrPinMismatch, "SPKI SHA-256 %s, want one of %v", hex.EncodeToString(got[:]), want)
		}
	default:
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(tls.ConnectionState) error {
			return fail("verify server", ErrNoVerifier, "client configuration has no server authentication")
		}
	}
	return c
}

// PeerClaims returns the verified claims of the peer of a completed
// handshake, from v's cache or, when evicted or expired, by verifying the
// peer's certificate again.
func (v *Verifier) PeerClaims(ctx context.Context, cs tls.ConnectionState) (*claims.Claims, error) {
	if !cs.HandshakeComplete {
		return nil, fail("peer claims", ErrNoClaims, "handshake not complete")
	}
	return v.verifyLeaf(ctx, cs.PeerCertificates)
}
