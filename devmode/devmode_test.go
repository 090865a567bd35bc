package devmode

import (
	"bytes"
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/asps-project/asps/claims"
)

func TestDevServerEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()

	c, err := env.Client(ctx, claims.SGX, DemoIdentity(claims.SGX))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.GetSecrets(ctx, "demo-key", "db-password")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[0].Value, DemoSecrets()["demo-key"]) || string(got[1].Value) != "correct horse battery staple" {
		t.Fatalf("wrong secrets: %q", got)
	}
	who, err := c.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if who.GetMatchedApp() != "demo-enclave" || !who.GetSimulated() {
		t.Fatalf("whoami: %v", who)
	}

	// A secret of another app: PermissionDenied, nothing released.
	_, err = c.GetSecrets(ctx, "demo-key", "other-app")
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("other app's secret: %v", err)
	}

	// The demo TD.
	td, err := env.Client(ctx, claims.TDX, DemoIdentity(claims.TDX))
	if err != nil {
		t.Fatal(err)
	}
	defer td.Close()
	if s, err := td.GetSecrets(ctx, "tdx-token"); err != nil || string(s[0].Value) != "token-for-the-demo-trust-domain" {
		t.Fatalf("TD: %v %q", err, s)
	}
}
