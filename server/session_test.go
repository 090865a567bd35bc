package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/attest"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
)

// sessionPolicy: the demo enclave's secret only with fresh session
// evidence; another app of the same enclave without the requirement.
func sessionPolicy() []byte {
	return fmt.Appendf(nil, `allow_simulated: true
apps:
  - id: fresh-only
    tee: sgx
    mr_enclave: %x
    binding: tcg-nonce
    secrets: {db-password: db-password}
  - id: other
    tee: sgx
    mr_enclave: %x
    secrets: {other-app: other-app}
`, devmode.DemoMrEnclave, devmode.OtherEnclave)
}

// TestAttack_QuoteOracleReplayRefusedWhenAppRequiresSessionNonce: an
// enclave that once quoted data an attacker chose gave the attacker
// certificate evidence for the attacker's key. With "binding: tcg-nonce"
// that is not enough: each connection needs a quote over its own TLS
// exporter, made after the handshake. A certificate alone, session
// evidence recorded on another connection, and session evidence of
// another enclave are refused with named reasons; a workload that quotes
// the exporter of its connection is served.
func TestAttack_QuoteOracleReplayRefusedWhenAppRequiresSessionNonce(t *testing.T) {
	env, err := devmode.Start(context.Background(), devmode.Options{Policy: sessionPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	attester := func(id sim.Identity) attest.Attester {
		a, err := sim.NewAttester(sim.Options{PKI: env.PKI, TEE: claims.SGX, Identity: id})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	enclave := attester(devmode.DemoIdentity(claims.SGX))
	other := attester(sim.Identity{MrEnclave: devmode.OtherEnclave})
	cert, err := ratls.NewCertificate(ctx, enclave, ratls.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(opts ...grpc.DialOption) aspsv1.SecretsClient {
		creds := credentials.NewTLS(ratls.ClientConfig(cert, ratls.ServerByPin(env.ServerPin)))
		c, err := grpc.NewClient(env.Addr, append(opts, grpc.WithTransportCredentials(creds))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return aspsv1.NewSecretsClient(c)
	}
	get := func(c aspsv1.SecretsClient, ctx context.Context) (string, error) {
		r, err := c.GetSecret(ctx, &aspsv1.GetSecretRequest{Name: "db-password"})
		if err != nil {
			return "", err
		}
		return string(r.GetValue()), nil
	}
	refused := func(t *testing.T, err error, code codes.Code, says string) {
		t.Helper()
		if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), says) {
			t.Fatalf("want %v saying %q, got %v", code, says, err)
		}
	}

	t.Run("fresh session evidence is served", func(t *testing.T) {
		c := dial(grpc.WithPerRPCCredentials(ratls.SessionCredentials(enclave, cert)))
		for range 2 { // the second call reuses the connection's evidence
			if v, err := get(c, ctx); err != nil || v != "correct horse battery staple" {
				t.Fatalf("got %q, %v", v, err)
			}
		}
	})
	t.Run("certificate alone", func(t *testing.T) {
		_, err := get(dial(), ctx)
		refused(t, err, codes.PermissionDenied, "binding not allowed")
		refused(t, err, codes.PermissionDenied, "requires tcg-nonce")
	})

	// Session evidence recorded on one connection, replayed on another.
	recorder := &recordingCreds{PerRPCCredentials: ratls.SessionCredentials(enclave, cert)}
	if _, err := get(dial(grpc.WithPerRPCCredentials(recorder)), ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("session evidence of another connection", func(t *testing.T) {
		_, err := get(dial(), metadata.AppendToOutgoingContext(ctx, ratls.SessionMetadataKey, recorder.last))
		refused(t, err, codes.Unauthenticated, "another connection")
	})
	t.Run("session evidence of another enclave", func(t *testing.T) {
		c := dial(grpc.WithPerRPCCredentials(ratls.SessionCredentials(other, cert)))
		_, err := get(c, ctx)
		refused(t, err, codes.Unauthenticated, "another workload")
	})
	t.Run("session evidence for another key", func(t *testing.T) {
		otherCert, err := ratls.NewCertificate(ctx, enclave, ratls.CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := dial(grpc.WithPerRPCCredentials(ratls.SessionCredentials(enclave, otherCert)))
		_, err = get(c, ctx)
		refused(t, err, codes.Unauthenticated, "pubkey-hash")
	})
	t.Run("garbage session evidence", func(t *testing.T) {
		_, err := get(dial(), metadata.AppendToOutgoingContext(ctx, ratls.SessionMetadataKey, "\xd9\xea\x60junk"))
		refused(t, err, codes.Unauthenticated, "malformed evidence")
	})
}

// recordingCreds remembers the last session evidence it sent.
type recordingCreds struct {
	credentials.PerRPCCredentials
	last string
}

func (r *recordingCreds) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	m, err := r.PerRPCCredentials.GetRequestMetadata(ctx, uri...)
	if err == nil {
		r.last = m[ratls.SessionMetadataKey]
	}
	return m, err
}
