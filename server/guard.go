package server

import (
	"container/list"
	"context"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ReasonVerificationBusy is the reason code of a request refused because
// too many certificates not yet verified are being verified at once.
const ReasonVerificationBusy = "server: too many attestations being verified"

// DefaultMaxVerifications is the default bound on concurrent
// verifications of certificates not yet verified: half the CPUs the
// process may use (at least one), so that a flood of evidence that fails
// verification, from however many sources, leaves the other half to
// workloads already verified.
func DefaultMaxVerifications() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// verifyGate bounds the RA-TLS verifications (signatures, quote,
// collateral) of certificates the verifier has not cached: at most
// Limits.MaxVerifications at once, a few more waiting briefly, the rest
// refused at once. Requests on a certificate already verified (cached,
// good or bad) cost a map lookup and do not pass through it, so a
// failed-attestation flood spread over many sources — which the
// per-source limits cannot see as one — takes at most the gate's share
// of the CPUs, and a flood request holds a provisioning slot (the
// shedder's) for at most the gate's wait.
type verifyGate struct {
	sem     *shedder
	metrics *Metrics
}

func newVerifyGate(n int, wait time.Duration, m *Metrics) *verifyGate {
	if n <= 0 {
		n = DefaultMaxVerifications()
	}
	return &verifyGate{sem: newShedder(n, 4*n, wait, 0), metrics: m}
}

// enter takes a verification slot, or says that the request is refused.
func (g *verifyGate) enter(ctx context.Context) (release func(), ok bool) {
	if !g.sem.acquire(ctx) {
		g.metrics.verifyRefused()
		return nil, false
	}
	g.metrics.verifyStarted()
	return func() { g.metrics.verifyDone(); g.sem.release() }, true
}

// verificationBusy is the refusal of a request that found the
// verification gate full: RESOURCE_EXHAUSTED with the shedder's retry hint.
// admitVerification lets a verification of evidence not yet verified
// start: refused before any work while src (or its /48) is over its
// failed-attestation limit, and queued behind the bound on concurrent
// verifications, refused with a retry hint when that is full. The caller
// calls release when the verification is done.
func (s *Server) admitVerification(ctx context.Context, src net.Addr, now time.Time, d *decision) (release func(), err error) {
	if s.fails.blocked(src, now) {
		d.rec.ReasonCode = ReasonRateLimited
		return nil, status.Error(codes.ResourceExhausted, "attestation: too many failed attestations from this address; try again later")
	}
	release, ok := s.verify.enter(ctx)
	if !ok {
		return nil, s.verificationBusy(ctx, d)
	}
	return release, nil
}

func (s *Server) verificationBusy(ctx context.Context, d *decision) error {
	d.rec.ReasonCode = ReasonVerificationBusy
	ms := strconv.FormatInt(s.opts.Limits.ShedRetryAfter.Milliseconds(), 10)
	_ = grpc.SetTrailer(ctx, metadata.Pairs(RetryAfterKey, ms, RetryPushbackKey, ms)) // fails only on a stream, which has no trailer to set yet
	return status.Errorf(codes.ResourceExhausted, "attestation: %s; retry after %sms (with jitter)", ReasonVerificationBusy, ms)
}

func verifyGateMetrics() (prometheus.Gauge, *prometheus.CounterVec) {
	return prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "asps_attestation_verifications_in_progress",
			Help: "RA-TLS verifications of certificates not yet verified that are running (bounded by --max-verifications).",
		}), prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asps_attestation_verifications_refused_total",
			Help: "Requests on a certificate not yet verified refused because --max-verifications were running and the wait queue was full or timed out.",
		}, []string{"reason"})
}

func (m *Metrics) verifyStarted() {
	if m != nil {
		m.verifying.Inc()
	}
}

func (m *Metrics) verifyDone() {
	if m != nil {
		m.verifying.Dec()
	}
}

func (m *Metrics) verifyRefused() {
	if m != nil {
		m.verifyBusy.WithLabelValues("busy").Inc()
	}
}

// prefixFactor: an IPv6 /48 (a site: 65,536 /64s) may fail attestation
// this many times as often as one /64 before all of it is refused.
const prefixFactor = 8

// failSources are the keys a failed attestation is counted under: the
// source (an IPv4 address, an IPv6 /64, see hostOf) and, for IPv6, its
// /48, so that rotating over the /64s of one allocation does not multiply
// the budget by 65,536. IPv4-mapped IPv6 addresses count as IPv4.
func failSources(a net.Addr) (host, prefix string) {
	host = hostOf(a)
	if a == nil {
		return host, ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return host, ""
	}
	if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
		prefix = ip.Mask(net.CIDRMask(48, 128)).String() + "/48"
	}
	return host, prefix
}

// sourceLimiter rate-limits failed attestations per source (failSources)
// and per IPv6 /48, the latter with prefixFactor times the budget.
type sourceLimiter struct {
	host, prefix *failLimiter
}

func newSourceLimiter(r rate.Limit, burst, max int) *sourceLimiter {
	return &sourceLimiter{host: newFailLimiter(r, burst, max), prefix: newFailLimiter(r*prefixFactor, burst*prefixFactor, max)}
}

// blocked reports whether the source, or its /48, has no failures left.
func (s *sourceLimiter) blocked(a net.Addr, now time.Time) bool {
	host, prefix := failSources(a)
	return s.host.blocked(host, now) || (prefix != "" && s.prefix.blocked(prefix, now))
}

// failed spends one failure of the source and of its /48.
func (s *sourceLimiter) failed(a net.Addr, now time.Time) {
	host, prefix := failSources(a)
	s.host.failed(host, now)
	if prefix != "" {
		s.prefix.failed(prefix, now)
	}
}

// failLimiter rate-limits failed attestations per source address: each
// failure takes a token from the address's bucket, and an address with an
// empty bucket is refused before any verification runs. It remembers at
// most max addresses (least recently seen forgotten first).
type failLimiter struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type failEntry struct {
	ip  string
	lim *rate.Limiter
}

func newFailLimiter(r rate.Limit, burst, max int) *failLimiter {
	return &failLimiter{r: r, burst: burst, max: max, ll: list.New(), items: map[string]*list.Element{}}
}

// blocked reports whether ip has no failures left to spend.
func (f *failLimiter) blocked(ip string, now time.Time) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	el, ok := f.items[ip]
	if !ok {
		return false
	}
	return el.Value.(*failEntry).lim.TokensAt(now) < 1
}

// failed spends one of ip's failures.
func (f *failLimiter) failed(ip string, now time.Time) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	el, ok := f.items[ip]
	if ok {
		f.ll.MoveToFront(el)
	} else {
		el = f.ll.PushFront(&failEntry{ip: ip, lim: rate.NewLimiter(f.r, f.burst)})
		f.items[ip] = el
		for f.ll.Len() > f.max {
			old := f.ll.Back()
			f.ll.Remove(old)
			delete(f.items, old.Value.(*failEntry).ip)
		}
	}
	el.Value.(*failEntry).lim.AllowN(now, 1)
}

// refusalSampler keeps refusals of peers that were not attested from
// flooding the audit file and the log: per reason code, at most one record
// per interval is written, carrying the count of those suppressed since.
// Reason codes come from a fixed set, so the map stays small; unknown
// codes share one slot.
type refusalSampler struct {
	mu    sync.Mutex
	every time.Duration
	slots map[string]*sampleSlot
}

type sampleSlot struct {
	last       time.Time
	suppressed uint64
}

const maxSampleSlots = 256

func newRefusalSampler(every time.Duration) *refusalSampler {
	return &refusalSampler{every: every, slots: map[string]*sampleSlot{}}
}

// admit says whether a refusal with this reason code is recorded now, and
// if so how many were suppressed before it.
func (s *refusalSampler) admit(code string, now time.Time) (bool, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.slots[code]
	if !ok {
		if len(s.slots) >= maxSampleSlots {
			code = "other"
			sl = s.slots[code]
		}
		if sl == nil {
			sl = &sampleSlot{}
			s.slots[code] = sl
		}
	}
	if !sl.last.IsZero() && now.Sub(sl.last) < s.every {
		sl.suppressed++
		return false, 0
	}
	n := sl.suppressed
	sl.last, sl.suppressed = now, 0
	return true, n
}
