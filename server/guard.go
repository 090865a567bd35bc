package server

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

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
