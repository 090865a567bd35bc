package ratls

import (
	"container/list"
	"sync"
	"time"

	"github.com/asps-project/asps/claims"
)

// resultCache is a bounded LRU of verified claims keyed by the SHA-256 of a
// certificate's DER encoding; entries expire.
type resultCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front = most recently used
	items map[[32]byte]*list.Element
}

type cacheEntry struct {
	key     [32]byte
	claims  *claims.Claims
	expires time.Time
}

func newResultCache(max int) *resultCache {
	return &resultCache{max: max, ll: list.New(), items: map[[32]byte]*list.Element{}}
}

// get returns a copy of the cached claims for key if present and not
// expired at now.
func (c *resultCache) get(key [32]byte, now time.Time) (*claims.Claims, bool) {
	if c == nil || c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return nil, false
	}
	c.ll.MoveToFront(el)
	return cloneClaims(e.claims), true
}

func (c *resultCache) put(key [32]byte, cl *claims.Claims, expires time.Time) {
	if c == nil || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry)
		e.claims, e.expires = cloneClaims(cl), expires
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, claims: cloneClaims(cl), expires: expires})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
}

func (c *resultCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// failureCache is a bounded LRU of recent verification failures keyed by
// the SHA-256 of a certificate's DER encoding; entries expire after a
// short TTL.
type failureCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front = most recently used
	items map[[32]byte]*list.Element
}

type failureEntry struct {
	key     [32]byte
	err     *Error
	expires time.Time
}

func newFailureCache(max int) *failureCache {
	return &failureCache{max: max, ll: list.New(), items: map[[32]byte]*list.Element{}}
}

// get returns a copy of the remembered failure for key, if not expired.
func (c *failureCache) get(key [32]byte, now time.Time) (*Error, bool) {
	if c == nil || c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*failureEntry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return nil, false
	}
	c.ll.MoveToFront(el)
	cp := *e.err
	return &cp, true
}

func (c *failureCache) put(key [32]byte, err *Error, expires time.Time) {
	if c == nil || c.max <= 0 {
		return
	}
	cp := *err
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*failureEntry)
		e.err, e.expires = &cp, expires
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&failureEntry{key: key, err: &cp, expires: expires})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*failureEntry).key)
	}
}

func (c *failureCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
