package server_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
)

// TestAttack_UnattestedPeerHoldsStreamingMethods: the request wait bounds
// unary calls, but streaming methods (health Watch, reflection) read their
// own messages and stay open: a peer whose certificate only passes the
// handshake's screen — no TEE needed — held 128 Watch streams on each of
// its connections, about 9 KB of heap plus a goroutine each (measured:
// 960 streams, +8.3 MiB heap), for the connection's whole life; with 256
// connections per address that is hundreds of megabytes per address.
// Streaming methods now need a connection whose workload was attested and
// recognised; probes use Health/Check (unary) or /healthz.
func TestAttack_UnattestedPeerHoldsStreamingMethods(t *testing.T) {
	h := startHardened(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hc := healthpb.NewHealthClient(dialGRPC(t, h.addr, h.pin, untrustedCert(t)))
	for i := range 8 {
		s, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("Watch stream %d of an unattested peer: %v, want Unauthenticated", i, err)
		}
	}
	// Health/Check (unary) still answers the same peer.
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check: %v %v", r, err)
	}
	// A stranger whose certificate attests but matches no app is no
	// better.
	stranger := devmode.DemoIdentity(claims.SGX)
	stranger.MrEnclave[0] ^= 0xff
	sa, err := devmode.Attester(h.env.PKI, claims.SGX, stranger)
	if err != nil {
		t.Fatal(err)
	}
	scert, err := ratls.NewCertificate(ctx, sa, ratls.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sconn := dialGRPC(t, h.addr, h.pin, scert)
	if _, err := aspsv1.NewSecretsClient(sconn).GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: []string{"demo-key"}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stranger: %v", err)
	}
	s, err := healthpb.NewHealthClient(sconn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Watch of an attested stranger: %v, want Unauthenticated", err)
	}
	// A recognised workload's connection may watch.
	a, err := devmode.Attester(h.env.PKI, claims.SGX, devmode.DemoIdentity(claims.SGX))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ratls.NewCertificate(ctx, a, ratls.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialGRPC(t, h.addr, h.pin, cert)
	if _, err := aspsv1.NewSecretsClient(conn).GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: []string{"demo-key"}}); err != nil {
		t.Fatalf("recognised workload: %v", err)
	}
	ws, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ws.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch of a recognised workload: %v %v", r, err)
	}
}
