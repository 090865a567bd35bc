package dcap

import (
	"fmt"
	"testing"
)

// TestLRUBoundedByBytes: the cache never holds more than its bound,
// evicts the least recently used first and counts hits, misses and
// evictions; an entry larger than the bound is not kept.
func TestLRUBoundedByBytes(t *testing.T) {
	c := newLRU[int, string](100)
	for i := range 10 {
		c.add(i, "v", 30)
		if s := c.stats(); s.Bytes > 100 {
			t.Fatalf("after %d adds: %d bytes, bound 100", i+1, s.Bytes)
		}
	}
	if _, ok := c.get(9); !ok {
		t.Fatal("the newest entry was evicted")
	}
	if _, ok := c.get(0); ok {
		t.Fatal("the oldest entry was kept")
	}
	c.get(7) // 7 is now more recent than 8
	c.add(10, "v", 30)
	if _, ok := c.get(8); ok {
		t.Fatal("evicted 7, recently used, before 8")
	}
	if _, ok := c.get(7); !ok {
		t.Fatal("7 was evicted")
	}
	c.add(11, "big", 101)
	if _, ok := c.get(11); ok {
		t.Fatal("an entry over the bound was kept")
	}
	s := c.stats()
	if s.Entries != 3 || s.Bytes != 90 || s.Evictions != 8 || s.Hits != 3 || s.Misses != 3 {
		t.Fatalf("stats %+v", s)
	}
	var off *lru[int, int]
	off.add(1, 1, 1)
	if _, ok := off.get(1); ok {
		t.Fatal("a nil cache holds something")
	}
	zero := newLRU[int, int](0)
	zero.add(1, 1, 1)
	if _, ok := zero.get(1); ok || zero.stats().Misses != 0 {
		t.Fatal("a disabled cache holds or counts something")
	}
}

// TestConcurrentVerify: verifications, cache evictions and forgetting
// platforms at once (run with -race) give the same verdicts.
func TestConcurrentVerify(t *testing.T) {
	cases := acceptedCases(t)
	// Room for about one platform: the caches evict all the time.
	v := NewVerifier(WithCacheBytes(chainEntryBytes+8<<10, 3*64<<10))
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 12 {
				c := cases[(g+i)%len(cases)]
				if i%5 == 4 {
					v.ForgetPlatforms()
				}
				var res *Result
				if res, err = v.Verify(c.quote, c.collateral, c.exp.VerifyAt); err != nil {
					break
				}
				if res.TCBStatus != c.exp.Status {
					err = fmt.Errorf("%s: status %s, want %s", c.name, res.TCBStatus, c.exp.Status)
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if s := v.Stats(); s.Chain.Bytes > s.Chain.MaxBytes || s.Collateral.Bytes > s.Collateral.MaxBytes {
		t.Fatalf("over the bounds: %+v", s)
	}
}
