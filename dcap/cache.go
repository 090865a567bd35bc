package dcap

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// lru is a least-recently-used map bounded by the bytes its entries are
// estimated to hold. It never holds more than max bytes: an entry larger
// than the bound is not kept at all. Safe for concurrent use.
type lru[K comparable, V any] struct {
	max int64

	mu    sync.Mutex
	ll    *list.List // front: most recently used
	items map[K]*list.Element
	bytes int64

	hits, misses, evictions atomic.Uint64
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	cost int64
}

func newLRU[K comparable, V any](maxBytes int64) *lru[K, V] {
	return &lru[K, V]{max: maxBytes, ll: list.New(), items: map[K]*list.Element{}}
}

// get returns the value for k and counts a hit or a miss.
func (c *lru[K, V]) get(k K) (V, bool) {
	var zero V
	if c == nil || c.max <= 0 {
		return zero, false
	}
	c.mu.Lock()
	e, ok := c.items[k]
	if ok {
		c.ll.MoveToFront(e)
	}
	c.mu.Unlock()
	if !ok {
		c.misses.Add(1)
		return zero, false
	}
	c.hits.Add(1)
	return e.Value.(*lruEntry[K, V]).val, true
}

// peek returns the value for k, counting nothing on a miss (a hit
// is the caller's to count).
func (c *lru[K, V]) peek(k K) (V, bool) {
	var zero V
	if c == nil || c.max <= 0 {
		return zero, false
	}
	c.mu.Lock()
	e, ok := c.items[k]
	if ok {
		c.ll.MoveToFront(e)
	}
	c.mu.Unlock()
	if !ok {
		return zero, false
	}
	return e.Value.(*lruEntry[K, V]).val, true
}

// add stores v under k at the given cost, evicting the least recently
// used entries until the total fits. An existing entry is kept (the
// first verified value wins; both are equal by construction).
func (c *lru[K, V]) add(k K, v V, cost int64) {
	if c == nil || c.max <= 0 || cost > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return
	}
	for c.bytes+cost > c.max {
		old := c.ll.Back()
		if old == nil {
			break
		}
		oe := old.Value.(*lruEntry[K, V])
		c.ll.Remove(old)
		delete(c.items, oe.key)
		c.bytes -= oe.cost
		c.evictions.Add(1)
	}
	c.items[k] = c.ll.PushFront(&lruEntry[K, V]{key: k, val: v, cost: cost})
	c.bytes += cost
}

// clear drops every entry.
func (c *lru[K, V]) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.ll.Init()
	clear(c.items)
	c.bytes = 0
	c.mu.Unlock()
}

// LRUStats describes one cache.
type LRUStats struct {
	Hits, Misses, Evictions uint64
	Entries                 int
	Bytes, MaxBytes         int64 // estimated bytes held, and the bound
}

func (c *lru[K, V]) stats() LRUStats {
	if c == nil {
		return LRUStats{}
	}
	c.mu.Lock()
	n, b := len(c.items), c.bytes
	c.mu.Unlock()
	return LRUStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), Entries: n, Bytes: b, MaxBytes: c.max}
}
