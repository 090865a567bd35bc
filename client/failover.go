package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/health" // client-side health checking: NOT_SERVING replicas get no requests
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// RetryAfterKey is the trailer in which a shedding server says, in
// milliseconds, when to try again (server.RetryAfterKey).
const RetryAfterKey = "asps-retry-after-ms"

// Retry says how calls are retried when a replica is unavailable (down,
// draining, its store or audit log failing) or sheds load. Retries go
// through the balancer, so they reach another replica when there is one.
// Waits are exponential with full jitter, and never shorter than the
// server's retry hint (plus jitter), so that a crowd of clients spreads
// out rather than returning in step.
type Retry struct {
	// MaxAttempts counts the first call (default 8; 1: no retry).
	MaxAttempts int
	// Base and Max bound the backoff (defaults 50ms and 3s).
	Base, Max time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 8
	}
	if r.Base <= 0 {
		r.Base = 50 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 3 * time.Second
	}
	return r
}

// serviceConfig balances over every replica and skips the ones whose
// health is not SERVING. One address has nowhere else to go: its calls
// reach it whatever its health, so that its own refusal, which says why,
// is what the caller sees.
const (
	serviceConfig       = `{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}}`
	singleServiceConfig = `{"loadBalancingConfig":[{"pick_first":{}}]}`
)

var resolverSeq atomic.Uint64

// Target turns Config.Server into a gRPC target and dial options: one
// host:port as before, several comma-separated (a static set of replicas,
// balanced and failed over), or a "dns:///name:port" target whose name
// has several addresses.
func Target(server string) (string, []grpc.DialOption, error) {
	var addrs []string
	for a := range strings.SplitSeq(server, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return "", nil, errors.New("client: no server address")
	}
	opts := []grpc.DialOption{grpc.WithDefaultServiceConfig(serviceConfig)}
	if len(addrs) == 1 {
		if !strings.HasPrefix(addrs[0], "dns:") {
			opts = []grpc.DialOption{grpc.WithDefaultServiceConfig(singleServiceConfig)}
		}
		return addrs[0], opts, nil
	}
	eps := make([]resolver.Endpoint, len(addrs))
	for i, a := range addrs {
		if strings.Contains(a, "://") {
			return "", nil, fmt.Errorf("client: %q: give several host:port addresses, or one dns:/// target", a)
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return "", nil, fmt.Errorf("client: server address %q: %w", a, err)
		}
		eps[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}}
	}
	scheme := "asps-replicas-" + strconv.FormatUint(resolverSeq.Add(1), 10)
	r := manual.NewBuilderWithScheme(scheme)
	r.InitialState(resolver.State{Endpoints: eps})
	host, _, _ := net.SplitHostPort(addrs[0])
	// The TLS server name (with a CA) is the first address's host: all
	// replicas share one server identity.
	opts = append(opts, grpc.WithResolvers(r), grpc.WithAuthority(host))
	return scheme + ":///replicas", opts, nil
}

// retryable reports whether a failed call may succeed on another attempt
// (another replica, or the same one later), and the server's hint.
func retryable(err error, trailer metadata.MD) (bool, time.Duration) {
	var se *ServerError
	if !errors.As(err, &se) {
		return false, 0
	}
	var hint time.Duration
	if v := trailer.Get(RetryAfterKey); len(v) == 1 {
		if ms, err := strconv.Atoi(v[0]); err == nil && ms > 0 && ms <= 60_000 {
			hint = time.Duration(ms) * time.Millisecond
		}
	}
	switch se.Code {
	case codes.Unavailable, codes.ResourceExhausted:
		return true, hint
	}
	return false, 0
}

// backoff is the wait before attempt n+1 (n ≥ 1).
func (r Retry) backoff(n int, hint time.Duration) time.Duration {
	d := r.Base << min(n-1, 20)
	if d > r.Max || d <= 0 {
		d = r.Max
	}
	d = rand.N(d) + 1 // full jitter
	if hint > 0 {
		d = max(d, hint+rand.N(hint)+1)
	}
	return d
}

// call runs f until it succeeds, fails for good, runs out of attempts or
// ctx ends. The error returned is the last one a server sent, when one
// did (it says why), rather than the balancer's "no replica ready".
func (c *Client) call(ctx context.Context, f func(context.Context, ...grpc.CallOption) error) error {
	r := c.retry
	var fromServer error
	for n := 1; ; n++ {
		var tr metadata.MD
		var p peer.Peer
		err := f(ctx, grpc.Trailer(&tr), grpc.Peer(&p))
		if err == nil {
			return nil
		}
		err = c.callError(err)
		if p.Addr != nil {
			fromServer = err
		}
		ok, hint := retryable(err, tr)
		if !ok || n >= r.MaxAttempts {
			return cmp.Or(fromServer, err)
		}
		t := time.NewTimer(r.backoff(n, hint))
		select {
		case <-ctx.Done():
			t.Stop()
			return cmp.Or(fromServer, err)
		case <-t.C:
		}
		c.retries.Add(1)
	}
}

// Retries returns how many calls were retried (for tools and tests).
func (c *Client) Retries() uint64 { return c.retries.Load() }
