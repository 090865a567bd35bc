package server

import "sync"

// Bounds on streams waiting for their request message (see
// tapRequestWait), per connection and in all, on connections whose
// workload has not been attested and recognised and — in a pool of their
// own, so strangers cannot crowd them out — on recognised ones: a
// recognised workload (its own code compromised, or any enclave of an app
// pinned by signer) must not hold 128 header lists on each of its
// connections either. A legitimate client's request waits milliseconds
// for its message (headers and message are sent together); these leave
// room for many such clients at once, and a stream over a bound is
// refused (REFUSED_STREAM: gRPC clients retry it).
const (
	maxWaitingPerConn    = 8
	maxWaitingUnattested = 1024
	maxWaitingAttested   = 1024
)

// waitCounter counts the streams waiting for their request message, per
// connection (by remote address) and in all, in two pools: connections
// not attested, and attested ones.
type waitCounter struct {
	perConn, total, totalAttested int

	mu      sync.Mutex
	n, nAtt int
	byConn  map[string]int
}

func newWaitCounter(perConn, total, totalAttested int) *waitCounter {
	return &waitCounter{perConn: perConn, total: total, totalAttested: totalAttested, byConn: map[string]int{}}
}

// enter admits a waiting stream on the connection at addr and returns the
// function that ends its wait; ok is false when a bound is reached.
func (w *waitCounter) enter(addr string, attested bool) (release func(), ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pool, limit := &w.n, w.total
	if attested {
		pool, limit = &w.nAtt, w.totalAttested
	}
	if *pool >= limit || w.byConn[addr] >= w.perConn {
		return nil, false
	}
	*pool++
	w.byConn[addr]++
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		*pool--
		if w.byConn[addr]--; w.byConn[addr] <= 0 {
			delete(w.byConn, addr)
		}
	}, true
}
