package devmode

import (
	"context"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/ratls"
)

// BenchmarkProvision: one provision (a new TLS connection with the
// client's RA-TLS certificate, then GetSecrets) against a dev server on
// loopback, client and server in this process.
//
//	go test ./devmode -run '^$' -bench Provision
func BenchmarkProvision(b *testing.B) {
	ctx := context.Background()
	env, err := Start(ctx, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Stop()
	a, err := Attester(env.PKI, claims.SGX, DemoIdentity(claims.SGX))
	if err != nil {
		b.Fatal(err)
	}
	o := BenchOptions{Addr: env.Addr, ServerAuth: ratls.ServerByPin(env.ServerPin), Attester: a, Names: []string{"demo-key"}, Duration: time.Minute}
	c, err := newRATLSCert(ctx, a)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := provisionOnce(ctx, o, c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
