package ratls

import (
	"container/list"
	"sync"
	"time"

	"github.com/asps-project/asps/claims"
)

// ttlCache is a bounded LRU keyed by the SHA-256 of a certificate's DER
// encoding; entries expire. Values are copied in and out (clone), so no
// caller shares a cached value. A nil cache or max <= 0 caches nothing.
type ttlCache[V any] struct {
	mu    sync.Mutex
	max   int
	clone func(V) V
	ll    *list.List // front = most recently used
	items map[[32]byte]*list.Element
}

type ttlEntry[V any] struct {
	key     [32]byte
	val     V
	expires time.Time
}

func newTTLCache[V any](max int, clone func(V) V) *ttlCache[V] {
	return &ttlCache[V]{max: max, clone: clone, ll: list.New(), items: map[[32]byte]*list.Element{}}
}

// get returns a copy of the value for key if present and not expired at now.
func (c *ttlCache[V]) get(key [32]byte, now time.Time) (V, bool) {
	var zero V
	if c == nil || c.max <= 0 {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*ttlEntry[V])
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return zero, false
	}
	c.ll.MoveToFront(el)
	return c.clone(e.val), true
}

// put stores a copy of v until expires, evicting the least recently used
// entries beyond max.
func (c *ttlCache[V]) put(key [32]byte, v V, expires time.Time) {
	if c == nil || c.max <= 0 {
		return
	}
	v = c.clone(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*ttlEntry[V])
		e.val, e.expires = v, expires
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&ttlEntry[V]{key: key, val: v, expires: expires})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*ttlEntry[V]).key)
	}
}

func (c *ttlCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// resultCache holds verified claims; failureCache recent verification
// failures (the negative cache).
type (
	resultCache  = ttlCache[*claims.Claims]
	failureCache = ttlCache[*Error]
)

func newResultCache(max int) *resultCache { return newTTLCache(max, cloneClaims) }

func newFailureCache(max int) *failureCache {
	return newTTLCache(max, func(e *Error) *Error { cp := *e; return &cp })
}
