package server_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/server"
)

// TestVerdictCacheMetrics: the RA-TLS verdict cache's hits, misses and
// full verifications are exported next to the quote verifier's caches.
// One certificate used for three connections is verified once and
// answered twice from the cache; a second certificate is verified.
func TestVerdictCacheMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := startHardened(t, func(o *server.Options) {
		o.Metrics = server.NewMetrics(reg, nil)
		o.Metrics.ObserveVerdictCache(o.Verifier)
	})
	a, err := devmode.Attester(h.env.PKI, claims.SGX, devmode.DemoIdentity(claims.SGX))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: &devmode.Env{Addr: h.addr, ServerPin: h.pin}}
	provision := func(c *grpc.ClientConn) {
		t.Helper()
		if _, err := aspsv1.NewSecretsClient(c).GetSecrets(context.Background(), &aspsv1.GetSecretsRequest{Names: []string{"demo-key"}}); err != nil {
			t.Fatal(err)
		}
	}
	reused := f.certFor(t, a)
	for range 3 {
		c := f.conn(t, reused)
		provision(c)
		c.Close()
	}
	provision(f.conn(t, f.certFor(t, a)))

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "asps_certificate_verifications_total" {
			got["verifications"] = mf.GetMetric()[0].GetCounter().GetValue()
		}
		if mf.GetName() != "asps_verifier_cache_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var cache, result string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "cache":
					cache = l.GetValue()
				case "result":
					result = l.GetValue()
				}
			}
			got[cache+"/"+result] = m.GetCounter().GetValue()
		}
	}
	for k, v := range map[string]float64{"verdict/hit": 2, "verdict/miss": 2, "verdict/eviction": 0, "verdict/too_large": 0, "verdict_negative/miss": 2, "verifications": 2} {
		if got[k] != v {
			t.Errorf("asps_verifier_cache_total{%s} = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
