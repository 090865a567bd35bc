package server_test

import (
	"context"
	"crypto/rand"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/server"
)

// TestAttack_ForgedSessionEvidenceFloodNotRateLimited: the failed
// attestation limit (issue 11.9) counted only certificates. A peer whose
// certificate verifies — a stranger on a rented TEE — could send new
// forged session evidence on every request, each verified in full and
// none remembered, and was never limited: its certificate is known good,
// which lifts the limit. Failed session evidence now counts as a failed
// attestation of the source address, and over the limit session evidence
// is refused before it is verified.
func TestAttack_ForgedSessionEvidenceFloodNotRateLimited(t *testing.T) {
	const burst = 5
	h := startHardened(t, func(o *server.Options) {
		o.Limits.FailedAttestationBurst = burst
		o.Limits.FailedAttestationRate = 0.01
	})
	stranger := devmode.DemoIdentity(claims.SGX)
	stranger.MrEnclave[0] ^= 0xff
	a, err := devmode.Attester(h.env.PKI, claims.SGX, stranger)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ratls.NewCertificate(context.Background(), a, ratls.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := aspsv1.NewSecretsClient(dialGRPC(t, h.addr, h.pin, cert))
	// The certificate attests (the stranger matches no app).
	if _, err := c.GetSecrets(context.Background(), &aspsv1.GetSecretsRequest{Names: []string{"demo-key"}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stranger without session evidence: %v", err)
	}
	var limited int
	for i := range 4 * burst {
		ev := make([]byte, 600)
		rand.Read(ev)
		ctx := metadata.AppendToOutgoingContext(context.Background(), ratls.SessionMetadataKey, string(ev))
		_, err := c.GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: []string{"demo-key"}})
		switch status.Code(err) {
		case codes.Unauthenticated:
			if limited > 0 {
				t.Fatalf("request %d: verified again after the limit: %v", i, err)
			}
		case codes.ResourceExhausted:
			limited++
		default:
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if limited < 2*burst {
		t.Fatalf("%d of %d forged session evidences refused by the limit, want at least %d", limited, 4*burst, 2*burst)
	}
	// Without session evidence the known certificate is still served
	// (its own app's decision; here: no app).
	if _, err := c.GetSecrets(context.Background(), &aspsv1.GetSecretsRequest{Names: []string{"demo-key"}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the certificate alone after the flood: %v", err)
	}
}
