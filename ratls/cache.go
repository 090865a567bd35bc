package ratls

import (
	"container/list"
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// ttlCache is an LRU keyed by the SHA-256 of a certificate's DER encoding
// (or of session evidence), bounded by the bytes its entries are
// estimated to hold and, optionally, by a count; entries expire. Values
// are copied in and out (clone), so no caller shares a cached value. A
// value whose estimated size is over the byte bound is not kept. A nil
// cache, or maxBytes <= 0, caches nothing.
type ttlCache[V any] struct {
	maxBytes int64
	maxItems int // 0: bounded by bytes only
	clone    func(V) V
	cost     func(V) int64 // estimated heap bytes of a stored (cloned) value

	mu    sync.Mutex
	ll    *list.List // front = most recently used
	items map[[32]byte]*list.Element
	bytes int64

	hits, misses, evictions, tooLarge atomic.Uint64
}

type ttlEntry[V any] struct {
	key     [32]byte
	val     V
	expires time.Time
	cost    int64
	gen     uint64 // the collateral generation the value was reached with
}

// entryOverhead is what an entry costs besides its value: the ttlEntry
// (80 bytes), its list element (48) and its map slot (a 32-byte key and a
// pointer, with the map's spare capacity: up to about 110), rounded up.
const entryOverhead = 320

func newTTLCache[V any](maxBytes int64, maxItems int, clone func(V) V, cost func(V) int64) *ttlCache[V] {
	return &ttlCache[V]{maxBytes: maxBytes, maxItems: max(maxItems, 0), clone: clone, cost: cost,
		ll: list.New(), items: map[[32]byte]*list.Element{}}
}

func (c *ttlCache[V]) off() bool { return c == nil || c.maxBytes <= 0 }

// get returns a copy of the value for key if present, not expired at now
// and reached with collateral generation gen, counting a hit or a miss.
func (c *ttlCache[V]) get(key [32]byte, now time.Time, gen uint64) (V, bool) {
	v, ok := c.peek(key, now, gen)
	if !c.off() {
		if ok {
			c.hits.Add(1)
		} else {
			c.misses.Add(1)
		}
	}
	return v, ok
}

// peek is get without counting (a look that answers no request).
func (c *ttlCache[V]) peek(key [32]byte, now time.Time, gen uint64) (V, bool) {
	var zero V
	if c.off() {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*ttlEntry[V])
	if !now.Before(e.expires) || e.gen != gen {
		c.removeLocked(el)
		return zero, false
	}
	c.ll.MoveToFront(el)
	return c.clone(e.val), true
}

func (c *ttlCache[V]) removeLocked(el *list.Element) {
	e := c.ll.Remove(el).(*ttlEntry[V])
	delete(c.items, e.key)
	c.bytes -= e.cost
}

// put stores a copy of v until expires, evicting the least recently used
// entries until it fits the bounds. A value larger than the whole byte
// bound is not stored (and counted as too large).
func (c *ttlCache[V]) put(key [32]byte, v V, expires time.Time, gen uint64) {
	if c.off() {
		return
	}
	v = c.clone(v)
	cost := c.cost(v) + entryOverhead
	if cost > c.maxBytes {
		c.tooLarge.Add(1)
		c.mu.Lock()
		if el, ok := c.items[key]; ok { // an older value must not outlive this one
			c.removeLocked(el)
		}
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeLocked(el)
	}
	for c.ll.Len() > 0 && (c.bytes+cost > c.maxBytes || c.maxItems > 0 && c.ll.Len() >= c.maxItems) {
		c.removeLocked(c.ll.Back())
		c.evictions.Add(1)
	}
	c.items[key] = c.ll.PushFront(&ttlEntry[V]{key: key, val: v, expires: expires, cost: cost, gen: gen})
	c.bytes += cost
}

func (c *ttlCache[V]) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// CacheStats describes one of a Verifier's caches.
type CacheStats struct {
	// Hits are lookups the cache answered, Misses lookups it did not.
	Hits, Misses uint64
	// Evictions are entries dropped to stay within the bounds; TooLarge
	// values not stored at all because one alone was over the byte bound.
	Evictions, TooLarge uint64
	// Entries and Bytes are what it holds now (Bytes estimated, as the
	// bound counts them); MaxBytes is the bound.
	Entries         int
	Bytes, MaxBytes int64
}

func (c *ttlCache[V]) stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	n, b := c.ll.Len(), c.bytes
	c.mu.Unlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(),
		TooLarge: c.tooLarge.Load(), Entries: n, Bytes: b, MaxBytes: max(c.maxBytes, 0)}
}

// resultCache holds verified claims (the verdict cache); failureCache
// recent verification failures (the negative cache).
type (
	resultCache  = ttlCache[*claims.Claims]
	failureCache = ttlCache[*Error]
)

func newResultCache(maxBytes int64, maxItems int) *resultCache {
	return newTTLCache(maxBytes, maxItems, cloneClaims, claimsCost)
}

func newFailureCache(maxBytes int64, maxItems int) *failureCache {
	return newTTLCache(maxBytes, maxItems, func(e *Error) *Error { cp := *e; return &cp }, errorCost)
}

// heapBytes rounds an allocation of n bytes up the way the Go allocator
// does, or above it: to 16 bytes up to 1 KiB, then to a quarter of the
// enclosing power of two (coarser than the allocator's size classes).
func heapBytes(n int) int64 {
	if n <= 0 {
		return 0
	}
	if n <= 1024 {
		return int64((n + 15) &^ 15)
	}
	step := 1 << (bitLen(n) - 2)
	return int64((n + step - 1) &^ (step - 1))
}

func bitLen(n int) int {
	l := 0
	for ; n > 0; n >>= 1 {
		l++
	}
	return l
}

// claimsCost estimates the heap bytes held by a cached copy of c (made by
// cloneClaims): the structs and every slice and string they point to.
func claimsCost(c *claims.Claims) int64 {
	if c == nil {
		return 0
	}
	n := heapBytes(int(unsafe.Sizeof(*c)))
	str := func(s string) int64 { return heapBytes(len(s)) }
	n += heapBytes(len(c.ReportData)) + str(string(c.TEE)) + str(c.Runtime) + str(c.TCBStatus) + str(c.FMSPC) + str(c.Binding)
	n += heapBytes(cap(c.AdvisoryIDs) * int(unsafe.Sizeof("")))
	for _, a := range c.AdvisoryIDs {
		n += str(a)
	}
	if s := c.SGX; s != nil {
		n += heapBytes(int(unsafe.Sizeof(*s)))
		for _, h := range []claims.Hex{s.MrEnclave, s.MrSigner, s.ConfigID, s.IsvExtProdID, s.IsvFamilyID, s.Attributes, s.CPUSvn} {
			n += heapBytes(len(h))
		}
	}
	if t := c.TDX; t != nil {
		n += heapBytes(int(unsafe.Sizeof(*t)))
		for _, h := range []claims.Hex{t.TeeTcbSvn, t.MrSeam, t.MrSignerSeam, t.SeamAttributes, t.TdAttributes, t.Xfam,
			t.MrTd, t.MrConfigID, t.MrOwner, t.MrOwnerConfig, t.Rtmr0, t.Rtmr1, t.Rtmr2, t.Rtmr3, t.TeeTcbSvn2, t.MrServiceTd} {
			n += heapBytes(len(h))
		}
	}
	return n
}

// maxCachedText bounds each text a cached failure keeps (its detail, its
// cause's message): a refused certificate chooses much of what its error
// says.
const maxCachedText = 512

// errorCost estimates the heap bytes held by a cached failure, made
// compact by compactError.
func errorCost(e *Error) int64 {
	if e == nil {
		return 0
	}
	n := heapBytes(int(unsafe.Sizeof(*e))) + heapBytes(len(e.Check)) + heapBytes(len(e.Detail))
	if cc, ok := e.Cause.(*cachedCause); ok {
		n += heapBytes(int(unsafe.Sizeof(*cc))) + heapBytes(len(cc.msg)) + heapBytes(cap(cc.wrapped)*16)
		if cc.rej != nil {
			n += heapBytes(int(unsafe.Sizeof(*cc.rej))) + heapBytes(len(cc.rej.Check)) + heapBytes(len(cc.rej.Detail))
		}
	} else if e.Cause != nil {
		// Not compacted (not expected): count its text twice over.
		n += 2 * heapBytes(len(e.Cause.Error()))
	}
	return n
}

// compactError is the copy of a failure the negative cache keeps: its
// texts cut to maxCachedText, and its cause replaced by a summary that
// keeps what callers branch on — the dcap rejection (check, reason) and
// the dcap malformed/unsupported sentinels — but not the cause's own
// values (which may hold parsed certificates or large texts).
func compactError(e *Error) *Error {
	out := &Error{Check: truncText(e.Check), Reason: e.Reason, Detail: truncText(e.Detail)}
	if e.Cause == nil {
		return out
	}
	cc := &cachedCause{msg: truncText(e.Cause.Error())}
	var rej *dcap.Rejection
	if errors.As(e.Cause, &rej) {
		cc.rej = &dcap.Rejection{Check: truncText(rej.Check), Reason: rej.Reason, Detail: truncText(rej.Detail)}
		cc.wrapped = append(cc.wrapped, cc.rej)
	}
	for _, s := range []error{dcap.ErrMalformed, dcap.ErrUnsupported} {
		if errors.Is(e.Cause, s) {
			cc.wrapped = append(cc.wrapped, s)
		}
	}
	out.Cause = cc
	return out
}

// cachedCause stands for a remembered failure's cause.
type cachedCause struct {
	msg     string
	rej     *dcap.Rejection
	wrapped []error
}

func (c *cachedCause) Error() string   { return c.msg }
func (c *cachedCause) Unwrap() []error { return c.wrapped }

func truncText(s string) string {
	if len(s) <= maxCachedText {
		return s
	}
	n := maxCachedText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
