package server

import "sync"

// Bounds on streams waiting for their request message on connections whose
// workload has not been attested and recognised (see tapRequestWait). A
// legitimate client's first request waits milliseconds; these leave room
// for many such clients at once.
const (
	maxWaitingPerConn    = 8
	maxWaitingUnattested = 1024
)

// waitCounter counts the streams waiting for their request message, per
// connection (by remote address) and in all, for connections not attested.
type waitCounter struct {
	perConn, total int

	mu     sync.Mutex
	n      int
	byConn map[string]int
}

func newWaitCounter(perConn, total int) *waitCounter {
	return &waitCounter{perConn: perConn, total: total, byConn: map[string]int{}}
}

// enter admits a waiting stream on the connection at addr and returns the
// function that ends its wait; ok is false when a bound is reached. Streams
// of attested connections are not counted (they are bounded by the
// connection's stream limit and the request wait).
func (w *waitCounter) enter(addr string, attested bool) (release func(), ok bool) {
	if attested {
		return func() {}, true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n >= w.total || w.byConn[addr] >= w.perConn {
		return nil, false
	}
	w.n++
	w.byConn[addr]++
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.n--
		if w.byConn[addr]--; w.byConn[addr] <= 0 {
			delete(w.byConn, addr)
		}
	}, true
}
