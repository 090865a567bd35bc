package attest_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/asps-project/asps/attest"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
)

// TestEndToEndThroughStandIns: each attester, over its stand-in interface
// returning simulator quotes, provisions secrets from a real server on
// loopback, and the server learns which runtime produced the evidence.
func TestEndToEndThroughStandIns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, err := devmode.Start(ctx, devmode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	sgxA, err := devmode.Attester(env.PKI, claims.SGX, devmode.DemoIdentity(claims.SGX))
	if err != nil {
		t.Fatal(err)
	}
	tdxA, err := devmode.Attester(env.PKI, claims.TDX, devmode.DemoIdentity(claims.TDX))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, runtime, secret string
		setup                 func(*standIn)
	}{
		{"gramine", "gramine", "demo-key", func(s *standIn) { s.withGramine("dcap") }},
		{"occlum", "occlum", "demo-key", func(s *standIn) { s.withOcclum() }},
		{"tsm", "tdx-guest", "tdx-token", func(s *standIn) { s.withTSM("tdx_guest") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStandIn(t)
			s.sgx, s.tdx = sgxA, tdxA
			tc.setup(s)
			a, err := attest.ByNameWith(tc.name, s.opts())
			if err != nil {
				t.Fatal(err)
			}
			c, err := client.Dial(ctx, client.Config{Server: env.Addr, Attester: a, ServerAuth: ratls.ServerByPin(env.ServerPin)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := c.GetSecrets(ctx, tc.secret)
			if err != nil {
				t.Fatal(err)
			}
			want := devmode.DemoSecrets()[tc.secret]
			if !bytes.Equal(got[0].Value, want) {
				t.Fatalf("%s = %q", tc.secret, got[0].Value)
			}
			w, err := c.WhoAmI(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if w.GetRuntime() != tc.runtime {
				t.Fatalf("server sees runtime %q, want %q", w.GetRuntime(), tc.runtime)
			}
		})
	}
}
