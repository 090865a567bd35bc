// Package client is the Go client of asps: it makes a fresh key pair, gets
// a quote that commits to it from the TEE's attester, wraps both in an
// RA-TLS certificate and asks the server for secrets over mutual TLS. It is
// what `asps fetch` and `asps run` call.
package client

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/attest"
	"github.com/asps-project/asps/ratls"
)

// Config says where the server is, how to trust it, and where evidence
// comes from.
type Config struct {
	// Server is host:port; or several, comma-separated (replicas sharing
	// one server identity: calls are balanced over them and fail over);
	// or a dns:///name:port target whose name has several addresses.
	Server string
	// Retry says how calls that met an unavailable or overloaded replica
	// are retried (zero value: the defaults).
	Retry Retry
	// Attester produces the quote (a real TEE's, or the simulator's in
	// dev mode).
	Attester attest.Attester
	// ServerAuth says how to authenticate the server: RA-TLS (the server
	// in a TEE), a CA, or a pinned key.
	ServerAuth ratls.ServerAuth
	// ServerJudge, when the server is attested (ServerByRATLS with the
	// judge's Check), lets calls report the policy's refusal of the server
	// as a typed *ServerRefusedError rather than a connection error.
	ServerJudge *ServerJudge
	// Cert shapes the RA-TLS certificate.
	Cert ratls.CertOptions
	// SessionEvidence sends, after the handshake, a fresh quote bound to
	// the connection's TLS exporter (ratls.SessionCredentials): one more
	// quote per connection, and what apps with binding: tcg-nonce require.
	SessionEvidence bool
	// DialOptions are appended to the gRPC dial options.
	DialOptions []grpc.DialOption
}

// Client holds one attested connection. It is safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	secrets aspsv1.SecretsClient
	judge   *ServerJudge
	retry   Retry
	retries atomic.Uint64
}

// Dial gets a quote for a fresh key and prepares the attested connection
// (gRPC connects on first use).
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Attester == nil {
		return nil, errors.New("client: no attester")
	}
	cert, err := ratls.NewCertificate(ctx, cfg.Attester, cfg.Cert)
	if err != nil {
		return nil, fmt.Errorf("client: RA-TLS certificate: %w", err)
	}
	creds := credentials.NewTLS(ratls.ClientConfig(cert, cfg.ServerAuth))
	// A server's header lists (status messages, metadata) are bounded:
	// gRPC's default is 16 MiB, which HPACK lets a hostile server fill
	// cheaply.
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithMaxHeaderListSize(64 << 10)}
	if cfg.SessionEvidence {
		opts = append(opts, grpc.WithPerRPCCredentials(ratls.SessionCredentials(cfg.Attester, cert)))
	}
	tgt, topts, err := Target(cfg.Server)
	if err != nil {
		return nil, err
	}
	opts = append(opts, topts...)
	opts = append(opts, cfg.DialOptions...)
	conn, err := grpc.NewClient(tgt, opts...)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", cfg.Server, err)
	}
	return &Client{conn: conn, secrets: aspsv1.NewSecretsClient(conn), judge: cfg.ServerJudge, retry: cfg.Retry.withDefaults()}, nil
}

// Secret is one secret received.
type Secret struct {
	Name  string
	Value []byte
}

// GetSecrets fetches all the named secrets, or none: the server refuses
// the whole request if any one is not allowed or not available.
func (c *Client) GetSecrets(ctx context.Context, names ...string) ([]Secret, error) {
	var resp *aspsv1.GetSecretsResponse
	err := c.call(ctx, func(ctx context.Context, o ...grpc.CallOption) (err error) {
		resp, err = c.secrets.GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: names}, o...)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(resp.GetSecrets()) != len(names) {
		return nil, fmt.Errorf("client: asked for %d secrets, the server sent %d", len(names), len(resp.GetSecrets()))
	}
	out := make([]Secret, len(names))
	for i, s := range resp.GetSecrets() {
		if s.GetName() != names[i] {
			return nil, fmt.Errorf("client: asked for %q, the server sent %q", names[i], s.GetName())
		}
		out[i] = Secret{Name: s.GetName(), Value: s.GetValue()}
	}
	return out, nil
}

// WhoAmI asks how the server sees this workload: its verified claims, the
// app it matched and the names of the secrets that app may read. The
// response's text fields are as the server sent them: escape them
// (EscapeText) before printing.
func (c *Client) WhoAmI(ctx context.Context) (*aspsv1.WhoAmIResponse, error) {
	var w *aspsv1.WhoAmIResponse
	err := c.call(ctx, func(ctx context.Context, o ...grpc.CallOption) (err error) {
		w, err = c.secrets.WhoAmI(ctx, &aspsv1.WhoAmIRequest{}, o...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// callError is the error of a failed call: the server policy's refusal of
// the server if there was one (the handshake failed on it), else the
// call's status as a *ServerError.
func (c *Client) callError(err error) error {
	if c.judge != nil {
		if r := c.judge.Refusal(); r != nil {
			return r
		}
	}
	return serverError(err)
}

// Conn is the underlying connection (for the compatibility services).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
