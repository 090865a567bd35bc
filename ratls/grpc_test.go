package ratls

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/asps-project/asps/claims"
)

// TestGRPC: a gRPC server on NewServerCredentials sees the client's claims
// through ClaimsFromPeer; the client, with ServerByRATLS, sees the
// server's in its peer AuthInfo.
func TestGRPC(t *testing.T) {
	tee := newFakeTEE(t, false)
	debugTEE := newFakeTEE(t, true)
	qv := verifierFor(tee, debugTEE)
	serverCert, err := NewCertificate(context.Background(), tee, CertOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var seen []*claims.Claims
	var seenErr []error
	srv := grpc.NewServer(
		grpc.Creds(NewServerCredentials(serverCert, NewVerifier(qv, VerifyOptions{}))),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			c, err := ClaimsFromPeer(ctx)
			mu.Lock()
			seen, seenErr = append(seen, c), append(seenErr, err)
			mu.Unlock()
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Stop()

	call := func(t *testing.T, creds credentials.TransportCredentials) (*peer.Peer, error) {
		t.Helper()
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var p peer.Peer
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(false))
		return &p, err
	}

	t.Run("mutual attestation", func(t *testing.T) {
		clientCert, err := NewCertificate(context.Background(), tee, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := call(t, NewClientCredentials(clientCert, ServerByRATLS(NewVerifier(qv, VerifyOptions{}))))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		c, cerr := seen[len(seen)-1], seenErr[len(seenErr)-1]
		mu.Unlock()
		if cerr != nil || !bytes.Equal(c.SGX.MrEnclave, tee.mrEnclave[:]) {
			t.Fatalf("server saw claims %v, %v", c, cerr)
		}
		ai, ok := p.AuthInfo.(AuthInfo)
		if !ok {
			t.Fatalf("client AuthInfo is %T", p.AuthInfo)
		}
		if ai.Claims == nil || ai.Claims.TCBStatus != claims.StatusUpToDate || ai.State.Version == 0 {
			t.Errorf("client sees server claims %+v", ai.Claims)
		}
		if ai.AuthType() != "ratls" || ai.GetCommonAuthInfo().SecurityLevel != credentials.PrivacyAndIntegrity {
			t.Errorf("auth type %q level %v", ai.AuthType(), ai.GetCommonAuthInfo().SecurityLevel)
		}
		// Claims handed out are copies.
		pctx := peer.NewContext(context.Background(), p)
		c1, err := ClaimsFromPeer(pctx)
		if err != nil {
			t.Fatal(err)
		}
		c1.SGX.MrEnclave[0] ^= 0xff
		if c2, _ := ClaimsFromPeer(pctx); c2.SGX.MrEnclave[0] == c1.SGX.MrEnclave[0] {
			t.Errorf("ClaimsFromPeer returned shared claims")
		}
	})
	t.Run("pinned server", func(t *testing.T) {
		clientCert, err := NewCertificate(context.Background(), tee, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := call(t, NewClientCredentials(clientCert, ServerByPin(SPKIHash(serverCert.Leaf))))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ClaimsFromPeer(peer.NewContext(context.Background(), p)); !errors.Is(err, ErrNoClaims) {
			t.Errorf("claims of a pinned server: %v, want ErrNoClaims", err)
		}
	})
	t.Run("debug client refused", func(t *testing.T) {
		clientCert, err := NewCertificate(context.Background(), debugTEE, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		before := len(seen)
		mu.Unlock()
		_, err = call(t, NewClientCredentials(clientCert, ServerByPin(SPKIHash(serverCert.Leaf))))
		// The client learns only that the connection failed (a TLS 1.3
		// client finishes before the server judges its certificate).
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("%v, want Unavailable", err)
		}
		mu.Lock()
		after := len(seen)
		mu.Unlock()
		if after != before {
			t.Errorf("the handler ran for a refused client")
		}
	})
	t.Run("no peer", func(t *testing.T) {
		if _, err := ClaimsFromPeer(context.Background()); !errors.Is(err, ErrNoClaims) {
			t.Errorf("%v", err)
		}
	})
}
