package server

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/store"
)

// Metrics are the server's Prometheus metrics. Labels carry codes and
// reasons, never secret names' values or measurements.
type Metrics struct {
	requests    *prometheus.CounterVec
	decisions   *prometheus.CounterVec
	verifySecs  *prometheus.HistogramVec
	storeSecs   *prometheus.HistogramVec
	requestSecs *prometheus.HistogramVec
	conns       prometheus.Gauge
	connEvents  *prometheus.CounterVec
	handshakes  *prometheus.CounterVec
	auditFails  prometheus.Counter
	verifying   prometheus.Gauge       // verifications of not-yet-verified certificates in progress (guard.go)
	verifyBusy  *prometheus.CounterVec // requests refused or queued at the verification gate (guard.go)
	// verdicts is the RA-TLS verifier whose verdict caches are exported
	// (ObserveVerdictCache).
	verdicts atomic.Pointer[ratls.Verifier]
}

// NewMetrics registers the metrics with reg; dv, when set, also exports
// the verifier's cache counters.
func NewMetrics(reg prometheus.Registerer, dv *dcap.Verifier) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asps_requests_total", Help: "gRPC requests by method and code.",
		}, []string{"method", "code"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asps_decisions_total", Help: "Provisioning decisions by decision, gRPC code and reason (the failed check).",
		}, []string{"decision", "code", "reason"}),
		verifySecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "asps_quote_verify_seconds", Help: "Quote verification latency by result.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}, []string{"result"}),
		storeSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "asps_store_seconds", Help: "Secret store latency by store and result.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"store", "result"}),
		requestSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "asps_request_seconds", Help: "gRPC request latency by method.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"method"}),
	}
	m.conns = prometheus.NewGauge(prometheus.GaugeOpts{Name: "asps_connections_open", Help: "Open gRPC connections."})
	m.connEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asps_connections_limited_total", Help: "Connections refused or closed by the connection limits, by reason.",
	}, []string{"reason"})
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asps_handshake_refusals_total", Help: "TLS handshakes refused or failed, by reason code.",
	}, []string{"reason"})
	m.auditFails = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "asps_audit_write_failures_total", Help: "Audit records that could not be written (a release is refused when its record cannot be written).",
	})
	m.verifying, m.verifyBusy = verifyGateMetrics()
	reg.MustRegister(m.requests, m.decisions, m.verifySecs, m.storeSecs, m.requestSecs, m.conns, m.connEvents, m.handshakes, m.auditFails,
		m.verifying, m.verifyBusy)
	reg.MustRegister(&cacheCollector{dv: dv, m: m,
		desc: prometheus.NewDesc(
			"asps_verifier_cache_total", "Verifier cache lookups by cache and result (hit, miss; eviction: entries dropped to stay within the byte bound; too_large: not stored, over the bound alone). Caches: pck_chain, collateral, qe_report (quote verifier); verdict (RA-TLS verified claims by certificate), verdict_negative (recent failures).",
			[]string{"cache", "result"}, nil),
		bytes: prometheus.NewDesc(
			"asps_verifier_cache_bytes", "Bytes a verifier cache holds (estimated, as its bound counts them), by cache.",
			[]string{"cache"}, nil),
		verifications: prometheus.NewDesc(
			"asps_certificate_verifications_total", "RA-TLS certificates and session evidence verified in full: neither the verdict cache nor the negative cache answered.",
			nil, nil),
	})
	return m
}

// ObserveVerdictCache exports the RA-TLS verifier's verdict and negative
// caches in asps_verifier_cache_total (cache="verdict",
// "verdict_negative"), asps_verifier_cache_bytes and
// asps_certificate_verifications_total.
func (m *Metrics) ObserveVerdictCache(v *ratls.Verifier) {
	if m != nil {
		m.verdicts.Store(v)
	}
}

// ObserveVerify records one quote verification (QuoteVerifier.Observe).
func (m *Metrics) ObserveVerify(d time.Duration, reason string) {
	m.verifySecs.WithLabelValues(reason).Observe(d.Seconds())
}

func (m *Metrics) observeStore(kind string, d time.Duration, err error) {
	res := "ok"
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		res = "not_found"
	case errors.Is(err, store.ErrPermissionDenied):
		res = "permission_denied"
	default:
		res = "unavailable"
	}
	m.storeSecs.WithLabelValues(kind, res).Observe(d.Seconds())
}

func (m *Metrics) decision(d *decision, err error) {
	if err == nil {
		m.decisions.WithLabelValues("allow", "OK", "").Inc()
		return
	}
	m.decisions.WithLabelValues("deny", status.Code(err).String(), d.rec.ReasonCode).Inc()
}

func (m *Metrics) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	m.requests.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	m.requestSecs.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
	return resp, err
}

type cacheCollector struct {
	dv                         *dcap.Verifier
	m                          *Metrics
	desc, bytes, verifications *prometheus.Desc
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.bytes
	ch <- c.verifications
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	if rv := c.m.verdicts.Load(); rv != nil {
		s := rv.Stats()
		for _, v := range []struct {
			cache string
			s     ratls.CacheStats
		}{{"verdict", s.Verdicts}, {"verdict_negative", s.Failures}} {
			for _, r := range []struct {
				result string
				n      uint64
			}{{"hit", v.s.Hits}, {"miss", v.s.Misses}, {"eviction", v.s.Evictions}, {"too_large", v.s.TooLarge}} {
				ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(r.n), v.cache, r.result)
			}
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(v.s.Bytes), v.cache)
		}
		ch <- prometheus.MustNewConstMetric(c.verifications, prometheus.CounterValue, float64(s.Verifications))
	}
	if c.dv == nil {
		return
	}
	s := c.dv.Stats()
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Chain.Bytes), "pck_chain")
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Collateral.Bytes), "collateral")
	for _, v := range []struct {
		cache, result string
		n             uint64
	}{
		{"pck_chain", "hit", s.ChainHits}, {"pck_chain", "miss", s.ChainMisses},
		{"collateral", "hit", s.CollateralHits}, {"collateral", "miss", s.CollateralMisses},
		{"qe_report", "hit", s.QEReportHits}, {"qe_report", "miss", s.QEReportMisses},
		{"pck_chain", "eviction", s.Chain.Evictions}, {"collateral", "eviction", s.Collateral.Evictions},
	} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(v.n), v.cache, v.result)
	}
}

// The methods below accept a nil *Metrics (no metrics configured).

func (m *Metrics) connOpened() {
	if m != nil {
		m.conns.Inc()
	}
}

func (m *Metrics) connGone() {
	if m != nil {
		m.conns.Dec()
	}
}

func (m *Metrics) connRefused(reason string) {
	if m != nil {
		m.connEvents.WithLabelValues("refused_" + reason).Inc()
	}
}

func (m *Metrics) connClosed(reason string) {
	if m != nil {
		m.connEvents.WithLabelValues("closed_" + reason).Inc()
	}
}

func (m *Metrics) handshakeRefused(reason string) {
	if m != nil {
		m.handshakes.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) auditFailure() {
	if m != nil {
		m.auditFails.Inc()
	}
}
