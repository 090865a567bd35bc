package devmode

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/ratls"
)

// Bench clients: how a provision reaches the server. Both open a new TCP
// connection and a full TLS 1.3 handshake with the client's RA-TLS
// certificate, then make one GetSecrets call over HTTP/2 and close.
const (
	// BenchClientGRPC is grpc-go's client, as a workload's (a new
	// grpc.ClientConn per provision: resolver, balancer, transport).
	BenchClientGRPC = "grpc"
	// BenchClientHTTP2 is a lean one: the gRPC call as an HTTP/2 request
	// on a single net/http client connection, without grpc-go's
	// per-connection machinery; the load generator then takes less of the
	// CPU it shares with the server. The server sees the same handshake
	// and the same call.
	BenchClientHTTP2 = "http2"
)

// maxBenchResponse bounds a GetSecrets response the lean client reads.
const maxBenchResponse = 4 << 20

// provisionHTTP2 is one provision with the lean client: TLS (h2) to addr,
// POST /asps.v1.Secrets/GetSecrets with the request as a gRPC message,
// then the gRPC status from the trailers.
func provisionHTTP2(ctx context.Context, o BenchOptions, cert tls.Certificate) error {
	cfg := ratls.ClientConfig(cert, o.ServerAuth)
	cfg.NextProtos = []string{"h2"}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return err
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return fmt.Errorf("TLS handshake: %w", err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		tc.Close()
		return fmt.Errorf("server negotiated %q, want h2", p)
	}
	tr := &http.Transport{
		Protocols: new(http.Protocols),
		DialTLSContext: func(context.Context, string, string) (net.Conn, error) {
			return tc, nil
		},
	}
	tr.Protocols.SetHTTP2(true)
	cc, err := tr.NewClientConn(ctx, "https", o.Addr)
	if err != nil {
		tc.Close()
		return err
	}
	defer cc.Close()

	msg, err := proto.Marshal(&aspsv1.GetSecretsRequest{Names: o.Names})
	if err != nil {
		return err
	}
	body := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(body[1:], uint32(len(msg)))
	body = append(body, msg...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+o.Addr+aspsv1.Secrets_GetSecrets_FullMethodName, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBenchResponse+1))
	if err != nil {
		return err
	}
	// A gRPC error may come in the headers (trailers-only) or the trailers.
	st := resp.Trailer.Get("Grpc-Status")
	if st == "" {
		st = resp.Header.Get("Grpc-Status")
	}
	if st != "0" {
		m := resp.Trailer.Get("Grpc-Message")
		if m == "" {
			m = resp.Header.Get("Grpc-Message")
		}
		var code uint32
		if _, err := fmt.Sscan(st, &code); err != nil {
			return fmt.Errorf("HTTP %s without a gRPC status", resp.Status)
		}
		return status.Error(codes.Code(code), m)
	}
	if len(out) < 5 || out[0] != 0 || int(binary.BigEndian.Uint32(out[1:5])) != len(out)-5 {
		return fmt.Errorf("response is not one uncompressed gRPC message (%d bytes)", len(out))
	}
	var r aspsv1.GetSecretsResponse
	if err := proto.Unmarshal(out[5:], &r); err != nil {
		return fmt.Errorf("response: %w", err)
	}
	if len(r.GetSecrets()) != len(o.Names) {
		return fmt.Errorf("asked for %d secrets, got %d", len(o.Names), len(r.GetSecrets()))
	}
	return nil
}
