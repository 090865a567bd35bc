package collateral

import (
	"context"
	"testing"
	"time"
)

// BenchmarkGetWarm: the steady state, everything cached.
func BenchmarkGetWarm(b *testing.B) {
	pki := newTestPKI(b, "Test")
	pcs := newFakePCS(b, pki, t0, t0.Add(month))
	clock := &fakeClock{t: t0.Add(time.Hour)}
	c, err := NewCache(Options{Client: testClient(b, pcs.srv.URL), TrustAnchors: []*x509Cert{pki.root}, Now: clock.Now, RefreshInterval: -1, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, _, err := c.Get(ctx, TEESGX, fmspcA, CAProcessor); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := c.Get(ctx, TEESGX, fmspcA, CAProcessor); err != nil {
				b.Fatal(err)
			}
		}
	})
}
