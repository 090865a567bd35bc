package collateral

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asps-project/asps/dcap"
)

func get(t *testing.T, c *Cache, fmspc string) (*dcap.Collateral, Info) {
	t.Helper()
	col, info, err := c.Get(context.Background(), TEESGX, fmspc, CAProcessor)
	if err != nil {
		t.Fatal(err)
	}
	return col, info
}

// TestOutage: with the service down the cache serves what has not
// expired; past expiry it fails closed; a grace period extends it, and
// says so.
func TestOutage(t *testing.T) {
	for _, down := range []string{"503", "closed"} {
		t.Run(down, func(t *testing.T) {
			e := newEnv(t, Options{FailureTTL: -1})
			col, info := get(t, e.cache, fmspcA)
			if info.FromCache || !info.NextUpdate.Equal(t0.Add(month)) || !info.FetchedAt.Equal(t0.Add(time.Hour)) {
				t.Fatalf("info %+v", info)
			}
			if down == "503" {
				e.pcs.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
					http.Error(w, "down", http.StatusBadGateway)
					return true
				})
			} else {
				e.pcs.srv.Close()
			}
			// Inside the window, even in the refresh window: served.
			e.clock.Set(t0.Add(month - time.Hour))
			col2, info := get(t, e.cache, fmspcA)
			if col2 != col || info.Grace || !info.FromCache {
				t.Fatalf("inside expiry: same %v, %+v", col2 == col, info)
			}
			// Past expiry: fail closed, with the reason.
			e.clock.Set(t0.Add(month + time.Minute))
			_, _, err := e.cache.Get(context.Background(), TEESGX, fmspcA, CAProcessor)
			if !errors.Is(err, ErrExpired) || !errors.Is(err, dcap.ErrCollateralExpired) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("past expiry: %v", err)
			}
			t.Log(err)

			// The same cache directory with a grace period: served, flagged.
			g := e.reopen(t, Options{Client: e.cache.client, Grace: 48 * time.Hour, FailureTTL: -1})
			col3, info, err := g.Get(context.Background(), TEESGX, fmspcA, CAProcessor)
			if err != nil {
				t.Fatal(err)
			}
			if !info.Grace || !info.VerifyAt.Equal(t0.Add(month)) || !info.NextUpdate.Equal(t0.Add(month)) {
				t.Fatalf("under grace: %+v", info)
			}
			if err := NewChecker(e.pki.root).Check(col3, Want{TEE: "sgx", FMSPC: fmspcA, CA: "processor"}, info.VerifyAt); err != nil {
				t.Errorf("collateral served under grace does not verify at VerifyAt: %v", err)
			}
			if g.Stats().Grace == 0 {
				t.Error("grace not counted")
			}
			// Past the grace period: fail closed again.
			e.clock.Set(t0.Add(month + 49*time.Hour))
			if _, _, err := g.Get(context.Background(), TEESGX, fmspcA, CAProcessor); !errors.Is(err, ErrExpired) {
				t.Fatalf("past grace: %v", err)
			}
		})
	}
}

// TestFailureTTL: a failed fetch is not repeated for every request.
func TestFailureTTL(t *testing.T) {
	e := newEnv(t, Options{FailureTTL: time.Minute})
	e.pcs.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "", http.StatusNotFound)
		return true
	})
	for range 5 {
		if _, _, err := e.cache.Get(context.Background(), TEESGX, fmspcA, CAProcessor); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	if n := e.pcs.count(TCBInfoKey(TEESGX, fmspcA)); n != 1 {
		t.Errorf("%d fetches within the failure TTL, want 1", n)
	}
	e.pcs.setFault(nil)
	e.clock.Set(e.clock.Now().Add(2 * time.Minute))
	get(t, e.cache, fmspcA)
}

// TestBackgroundRefresh: ahead of expiry the loop fetches the new
// documents; the cache then serves a new collateral (and the old one
// until then).
func TestBackgroundRefresh(t *testing.T) {
	e := newEnv(t, Options{RefreshInterval: 5 * time.Millisecond, RefreshLead: time.Hour, RefreshFraction: 0.25})
	col, _ := get(t, e.cache, fmspcA)
	tcbKey := TCBInfoKey(TEESGX, fmspcA)

	// Before the refresh window: nothing happens.
	e.clock.Set(t0.Add(20 * 24 * time.Hour))
	time.Sleep(50 * time.Millisecond)
	if n := e.pcs.count(tcbKey); n != 1 {
		t.Fatalf("%d fetches before the refresh window", n)
	}
	// Inside the last quarter: the loop refreshes.
	t1 := t0.Add(25 * 24 * time.Hour)
	e.pcs.setDates(t1, t1.Add(month))
	e.clock.Set(t1.Add(time.Hour))
	deadline := time.Now().Add(5 * time.Second)
	for {
		// All four documents refreshed: the earliest expiry moved.
		c2, info := get(t, e.cache, fmspcA)
		if info.NextUpdate.Equal(t1.Add(month)) {
			if c2 == col || !info.FromCache {
				t.Fatalf("after refresh: same pointer %v, %+v", c2 == col, info)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refresh; %d fetches", e.pcs.count(tcbKey))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Refreshed on disk too (written just after it is served).
	for {
		d, err := readDocument(e.dir, tcbKey)
		if err == nil && d.IssueDate.Equal(t1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("disk: %v %v", d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Nothing due now: no more fetches.
	n := e.pcs.requests.Load()
	time.Sleep(50 * time.Millisecond)
	if m := e.pcs.requests.Load(); m != n {
		t.Errorf("%d fetches after the refresh", m-n)
	}
}

// TestRefreshOnDemand: without the loop, a request that finds a document
// due serves it and refreshes it in the background; a refresh bringing
// the same document keeps the pointer; one bringing an older document
// keeps the cached one; a failed refresh keeps serving.
func TestRefreshOnDemand(t *testing.T) {
	e := newEnv(t, Options{MinRefreshInterval: time.Minute})
	col, _ := get(t, e.cache, fmspcA)
	tcbKey := TCBInfoKey(TEESGX, fmspcA)

	// Due, but the service still has the same documents (re-signed:
	// ECDSA is randomized, so the bytes differ; same issue date).
	e.clock.Set(t0.Add(28 * 24 * time.Hour))
	c2, info := get(t, e.cache, fmspcA)
	if c2 != col || !info.FromCache {
		t.Fatal("a due document was not served from the cache")
	}
	if err := e.cache.RefreshDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.cache.wg.Wait()
	if n := e.pcs.count(tcbKey); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}

	// An older document than the cached one is not taken.
	e.pcs.setDates(t0.Add(-24*time.Hour), t0.Add(month+time.Hour))
	e.clock.Set(e.clock.Now().Add(2 * time.Minute))
	before := e.cache.Documents()
	if err := e.cache.RefreshDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, d := range e.cache.Documents() {
		if d != before[i] && d.IssueDate.Before(before[i].IssueDate) {
			t.Errorf("%s: an older document replaced the cached one", d.Key)
		}
	}

	// A failing refresh keeps serving.
	e.pcs.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "", http.StatusInternalServerError)
		return true
	})
	e.clock.Set(e.clock.Now().Add(2 * time.Minute))
	if err := e.cache.RefreshDue(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("failing refresh: %v", err)
	}
	get(t, e.cache, fmspcA)
}

// TestSameContentKeepsPointer: fetching the very same bytes again does
// not make a new collateral.
func TestSameContentKeepsPointer(t *testing.T) {
	pki := newTestPKI(t, "Test")
	fixed := map[Key][2][]byte{}
	var mu sync.Mutex
	pcs := newFakePCS(t, pki, t0, t0.Add(month))
	pcs.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		v, ok := fixed[k]
		if !ok {
			b, c := pcs.good(k, t0, t0.Add(month))
			v = [2][]byte{b, c}
			fixed[k] = v
		}
		writeDoc(w, k, v[0], v[1])
		return true
	})
	clock := &fakeClock{t: t0.Add(29 * 24 * time.Hour)}
	c, err := NewCache(Options{Client: testClient(t, pcs.srv.URL), TrustAnchors: []*x509Cert{pki.root}, Now: clock.Now, RefreshInterval: -1, MinRefreshInterval: time.Nanosecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	col, _ := get(t, c, fmspcA)
	clock.Set(clock.Now().Add(time.Second))
	if err := c.RefreshDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pcs.requests.Load() != 8 {
		t.Fatalf("%d requests, want 8", pcs.requests.Load())
	}
	if col2, _ := get(t, c, fmspcA); col2 != col {
		t.Error("identical documents made a new collateral")
	}
}

// TestSingleFlight: concurrent first requests for a new FMSPC cause one
// fetch of each document, and all get the same collateral.
func TestSingleFlight(t *testing.T) {
	e := newEnv(t, Options{})
	gate := make(chan struct{})
	e.pcs.mu.Lock()
	e.pcs.gate = gate
	e.pcs.mu.Unlock()
	const n = 64
	cols := make([]*dcap.Collateral, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cols[i], _, errs[i] = e.cache.Get(context.Background(), TEESGX, fmspcA, CAProcessor)
		}()
	}
	// Let the requests pile up on the first fetch, then release it.
	for e.pcs.requests.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if cols[i] != cols[0] {
			t.Fatal("different collateral pointers")
		}
	}
	keys, _ := collateralKeys(TEESGX, fmspcA, CAProcessor)
	for _, k := range keys {
		if c := e.pcs.count(k); c != 1 {
			t.Errorf("%s fetched %d times, want once", k, c)
		}
	}
	// A second FMSPC shares the QE identity and CRLs: one more fetch.
	get(t, e.cache, fmspcB)
	if got := e.pcs.requests.Load(); got != 5 {
		t.Errorf("%d requests in all, want 5", got)
	}
	// A waiter that gives up does not cancel the shared fetch.
	e.pcs.mu.Lock()
	e.pcs.gate = make(chan struct{})
	gate2 := e.pcs.gate
	e.pcs.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := e.cache.Get(ctx, TEETDX, fmspcB, CAPlatform); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("gave up: %v", err)
	}
	close(gate2)
	if _, _, err := e.cache.Get(context.Background(), TEETDX, fmspcB, CAPlatform); err != nil {
		t.Fatal(err)
	}
}

// TestRestart: a new cache over the same directory serves without a
// fetch, the same documents; damaged files are ignored and refetched.
func TestRestart(t *testing.T) {
	e := newEnv(t, Options{})
	col, _ := get(t, e.cache, fmspcA)
	e.cache.Close()
	for _, p := range []string{"tcb/sgx/" + fmspcA + ".json", "qe/sgx.json", "crl/processor.json", "crl/root.json"} {
		if _, err := os.Stat(filepath.Join(e.dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	n := e.pcs.requests.Load()

	c2 := e.reopen(t, Options{Client: e.cache.client})
	col2, info := get(t, c2, fmspcA)
	if !info.FromCache || e.pcs.requests.Load() != n {
		t.Fatalf("restart fetched: %+v, %d requests", info, e.pcs.requests.Load()-n)
	}
	if col2.Digest() != col.Digest() {
		t.Error("a different collateral after the restart")
	}
	c2.Close()

	// Offline over the same directory (no client at all).
	c3 := e.reopen(t, Options{})
	if _, _, err := c3.Get(context.Background(), TEESGX, fmspcA, CAProcessor); err != nil {
		t.Fatal(err)
	}

	// A damaged file (bad signature, wrong place) is ignored: refetched.
	p := filepath.Join(e.dir, "tcb", "sgx", fmspcA+".json")
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, []byte(stringsReplace(string(b), `"tcbEvaluationDataNumber\":17`, `"tcbEvaluationDataNumber\":16`)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A file for B holding A's TCB info, its metadata edited to say B.
	if err := os.WriteFile(filepath.Join(e.dir, "tcb", "sgx", fmspcB+".json"), []byte(stringsReplace(string(b), `"fmspc": "`+fmspcA, `"fmspc": "`+fmspcB)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "tcb", "sgx", ".tmp-123"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	c4 := e.reopen(t, Options{Client: e.cache.client})
	if _, info := get(t, c4, fmspcA); info.FromCache {
		t.Error("a damaged file was used")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "tcb", "sgx", ".tmp-123")); !os.IsNotExist(err) {
		t.Error("temporary file left behind")
	}
	if _, err := OpenBundle(e.dir, Options{TrustAnchors: []*x509Cert{e.pki.root}, Logger: quietLogger()}); err == nil {
		t.Error("a bundle with a misplaced file opened")
	} else if !errors.Is(err, dcap.ErrFMSPCMismatch) {
		t.Errorf("bundle with a misplaced file: %v", err)
	}
}

// TestBundle: offline; missing documents are ErrNotFound; expiry is
// checked per request against the clock; grace applies.
func TestBundle(t *testing.T) {
	e := newEnv(t, Options{})
	get(t, e.cache, fmspcA)
	clock := &fakeClock{t: t0.Add(time.Hour)}
	o := Options{TrustAnchors: []*x509Cert{e.pki.root}, Now: clock.Now, Logger: quietLogger()}
	b, err := OpenBundle(e.dir, o)
	if err != nil {
		t.Fatal(err)
	}
	col, info, err := b.Get(context.Background(), TEESGX, fmspcA, CAProcessor)
	if err != nil || !info.FromCache {
		t.Fatal(err)
	}
	if col2, _, _ := b.Get(context.Background(), TEESGX, fmspcA, CAProcessor); col2 != col {
		t.Error("bundle: a new pointer per request")
	}
	if _, _, err := b.Get(context.Background(), TEESGX, fmspcB, CAProcessor); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing FMSPC: %v", err)
	}
	if _, _, err := b.Get(context.Background(), TEESGX, fmspcA, CAPlatform); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing CA: %v", err)
	}
	if _, _, err := b.Get(context.Background(), "sev", fmspcA, CAPlatform); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad TEE: %v", err)
	}
	if _, _, err := b.Get(context.Background(), TEESGX, "00A0", CAPlatform); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad FMSPC: %v", err)
	}
	if _, _, err := b.Get(context.Background(), TEESGX, fmspcA, "intel"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad CA: %v", err)
	}
	clock.Set(t0.Add(month + time.Hour))
	if _, _, err := b.Get(context.Background(), TEESGX, fmspcA, CAProcessor); !errors.Is(err, ErrExpired) {
		t.Errorf("expired bundle: %v", err)
	}
	o.Grace = 2 * time.Hour
	bg, err := OpenBundle(e.dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, info, err := bg.Get(context.Background(), TEESGX, fmspcA, CAProcessor); err != nil || !info.Grace {
		t.Errorf("bundle under grace: %+v %v", info, err)
	}
	// The mirror serves expired documents: the downstream verifier
	// checks dates.
	if _, err := b.Document(context.Background(), TCBInfoKey("SGX", fmspcA)); err != nil {
		t.Error(err)
	}
	if got := len(b.Documents()); got != 4 {
		t.Errorf("%d documents", got)
	}
	// Wrong anchor: the bundle does not open.
	if _, err := OpenBundle(e.dir, Options{Logger: quietLogger()}); !errors.Is(err, dcap.ErrUntrustedRoot) {
		t.Errorf("bundle under Intel's root: %v", err)
	}
	if _, err := OpenBundle(t.TempDir(), o); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty bundle: %v", err)
	}
	if _, err := OpenBundle(filepath.Join(t.TempDir(), "none"), o); err == nil {
		t.Error("missing directory opened")
	}
}

// TestMirrorOverCache: the handler over a fetching cache is a caching
// PCCS proxy.
func TestMirrorOverCache(t *testing.T) {
	e := newEnv(t, Options{})
	front := newFakePCS(t, e.pki, t0, t0) // only for its listener
	front.srv.Config.Handler = NewHandler(e.cache)
	c2 := e.reopen(t, Options{Client: testClient(t, front.srv.URL)})
	// Fresh directory for the downstream cache.
	c2.o.Dir = t.TempDir()
	col, _ := get(t, c2, fmspcA)
	if col.TCBInfo.FMSPC != fmspcA {
		t.Fatal("wrong TCB info through the proxy")
	}
	if e.pcs.count(TCBInfoKey(TEESGX, fmspcA)) != 1 {
		t.Error("the proxy did not fetch upstream once")
	}
	// Upstream down, cache expired: the proxy still serves what it has.
	e.pcs.srv.Close()
	e.clock.Set(t0.Add(2 * month))
	if _, err := e.cache.Document(context.Background(), TCBInfoKey(TEESGX, fmspcA)); err != nil {
		t.Errorf("proxy with upstream down: %v", err)
	}
	if _, err := e.cache.Document(context.Background(), TCBInfoKey(TEESGX, fmspcB)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("proxy, unknown FMSPC, upstream down: %v", err)
	}
}

// TestClosed: a closed cache fetches nothing.
func TestClosed(t *testing.T) {
	e := newEnv(t, Options{})
	e.cache.Close()
	if _, _, err := e.cache.Get(context.Background(), TEESGX, fmspcA, CAProcessor); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: %v", err)
	}
}

// TestPruneFailedSlots: lookups of FMSPCs that do not exist leave nothing
// behind once their failure is forgotten.
func TestPruneFailedSlots(t *testing.T) {
	e := newEnv(t, Options{FailureTTL: time.Minute})
	get(t, e.cache, fmspcA)
	e.pcs.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		if k.Kind == KindTCBInfo && k.FMSPC != fmspcA {
			http.Error(w, "", http.StatusNotFound)
			return true
		}
		return false
	})
	for _, f := range []string{"000000000001", "000000000002", "000000000003"} {
		if _, _, err := e.cache.Get(context.Background(), TEESGX, f, CAProcessor); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	count := func() int {
		e.cache.mu.Lock()
		defer e.cache.mu.Unlock()
		return len(e.cache.slots)
	}
	if n := count(); n != 7 {
		t.Fatalf("%d slots, want 7", n)
	}
	_ = e.cache.RefreshDue(context.Background())
	if n := count(); n != 7 {
		t.Fatalf("pruned within the failure TTL: %d slots", n)
	}
	e.clock.Set(e.clock.Now().Add(2 * time.Minute))
	_ = e.cache.RefreshDue(context.Background())
	if n := count(); n != 4 {
		t.Fatalf("%d slots after pruning, want 4", n)
	}
	get(t, e.cache, fmspcA)
}
