package collateral

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startMirror serves h on a real loopback listener, with the mirror's
// server settings.
func startMirror(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	cfg := NewMirrorServer(h)
	srv.Config = cfg
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// clientFrom is an HTTP client whose connections come from a given
// loopback address (127.0.0.0/8 is all loopback on Linux), so that the
// mirror sees distinct clients.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16}, Timeout: 20 * time.Second}
}

func fmspcN(i int) string { return fmt.Sprintf("%012X", 0xF00000000000+i) }

// TestAttack_MirrorDistinctFMSPCsSpendAPIKey: 1,000 anonymous requests
// for distinct FMSPCs made 1,000 upstream calls with the operator's API
// key. Now one client gets at most its allowance, and many clients
// together at most the cap on documents never fetched before; the rest
// are refused without an upstream call.
func TestAttack_MirrorDistinctFMSPCsSpendAPIKey(t *testing.T) {
	const clientBurst, unknownBurst = 5, 20
	for _, tc := range []struct {
		name     string
		clients  int
		maxCalls int64
		refused  int // the status of the refused
	}{
		{"one client", 1, clientBurst, http.StatusTooManyRequests},
		{"200 clients", 200, unknownBurst, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{UnknownBurst: unknownBurst, UnknownEvery: time.Hour, MaxFetches: 4})
			mirror := startMirror(t, NewHandlerWithOptions(e.cache, HandlerOptions{ClientBurst: clientBurst, ClientEvery: time.Hour}))
			clients := make([]*http.Client, tc.clients)
			for i := range clients {
				clients[i] = clientFrom(fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250))
			}
			var mu sync.Mutex
			statuses := map[int]int{}
			var wg sync.WaitGroup
			work := make(chan int)
			for w := 0; w < 32; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						resp, err := clients[i%len(clients)].Get(mirror.URL + "/sgx/certification/v4/tcb?fmspc=" + fmspcN(i))
						if err != nil {
							t.Error(err)
							continue
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						mu.Lock()
						statuses[resp.StatusCode]++
						mu.Unlock()
					}
				}()
			}
			for i := 0; i < 1000; i++ {
				work <- i
			}
			close(work)
			wg.Wait()
			calls := e.pcs.requests.Load()
			t.Logf("1,000 requests for distinct FMSPCs from %d clients: %d upstream calls; answers %v", tc.clients, calls, statuses)
			if calls > tc.maxCalls {
				t.Fatalf("%d upstream calls, want at most %d", calls, tc.maxCalls)
			}
			if statuses[http.StatusOK] != int(calls) || statuses[tc.refused] != 1000-int(calls) {
				t.Fatalf("answers %v; want %d OK and the rest %d", statuses, calls, tc.refused)
			}
			if s := e.cache.Stats(); s.Limited != uint64(1000-calls) {
				t.Errorf("Stats.Limited = %d, want %d", s.Limited, 1000-calls)
			}
			// What is cached is still served, without limit.
			docs := e.cache.Documents()
			if len(docs) == 0 {
				t.Fatal("nothing cached")
			}
			for i := 0; i < 20; i++ {
				resp, err := clients[0].Get(mirror.URL + "/sgx/certification/v4/tcb?fmspc=" + docs[0].Key.FMSPC)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("cached document: %s", resp.Status)
				}
			}
		})
	}
}

func openFDs(t *testing.T) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(es)
}

// eventually polls cond until it holds; a hang guard, not a timing
// assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAttack_MirrorAbandonedRequestsLeaveFetchesInFlight: 2,000 requests
// that start upstream fetches and then go away left 2,000 fetches in
// flight (on a context that outlived the clients) and 2,010 open files.
// Now a fetch nobody waits for is canceled: none is left in flight, the
// upstream connections close, open files return to where they were, and
// an abandoned fetch is not remembered as a failure. The limits on
// clients and unknown documents are off here, so that this is what is
// tested.
func TestAttack_MirrorAbandonedRequestsLeaveFetchesInFlight(t *testing.T) {
	const n = 2000
	e := newEnv(t, Options{UnknownBurst: -1, MaxFetches: 64})
	var active, hold atomic.Int64
	hold.Store(1)
	e.pcs.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		if hold.Load() == 0 {
			return false
		}
		active.Add(1)
		defer active.Add(-1)
		<-r.Context().Done() // a PCCS that never answers
		return true
	})
	mirror := startMirror(t, NewHandlerWithOptions(e.cache, HandlerOptions{ClientBurst: -1}))
	addr := mirror.Listener.Addr().String()
	runtime.GC()
	fds0 := openFDs(t)

	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(c, "GET /sgx/certification/v4/tcb?fmspc=%s HTTP/1.1\r\nHost: mirror\r\n\r\n", fmspcN(i))
			conns[i] = c
		}()
	}
	wg.Wait()
	eventually(t, fmt.Sprintf("%d fetches in flight", n), func() bool { return e.cache.Stats().InFlight == n })
	eventually(t, "64 upstream calls held", func() bool { return active.Load() == 64 })
	t.Logf("before abandoning: %d fetches in flight, %d upstream calls held, %d more open files", e.cache.Stats().InFlight, active.Load(), openFDs(t)-fds0)

	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	eventually(t, "no fetch in flight", func() bool { return e.cache.Stats().InFlight == 0 })
	eventually(t, "no upstream call held", func() bool { return active.Load() == 0 })
	eventually(t, "open files back to where they were", func() bool { return openFDs(t) <= fds0+16 })
	t.Logf("after: %d in flight, %d upstream calls held, %+d open files", e.cache.Stats().InFlight, active.Load(), openFDs(t)-fds0)

	// The abandoned fetch is no failure of the service: asked again, the
	// document is fetched.
	hold.Store(0)
	resp, err := http.Get(mirror.URL + "/sgx/certification/v4/tcb?fmspc=" + fmspcN(7))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("after abandonment: %s %s", resp.Status, b)
	}
}

// TestMirrorCoalescesOneKey: many clients asking for the same missing
// document share one upstream call, and a client leaving does not cancel
// the fetch the others wait for.
func TestMirrorCoalescesOneKey(t *testing.T) {
	e := newEnv(t, Options{})
	release := make(chan struct{})
	var calls atomic.Int64
	e.pcs.setFault(func(k Key, w http.ResponseWriter, r *http.Request) bool {
		calls.Add(1)
		<-release
		return false
	})
	k := TCBInfoKey(TEESGX, fmspcA)
	ctx, leave := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := e.cache.Document(ctx, k); errc <- err }()
	eventually(t, "the first fetch started", func() bool { return calls.Load() == 1 })
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.cache.Document(context.Background(), k); err != nil {
				t.Error(err)
			}
		}()
	}
	eventually(t, "50 waiters joined", func() bool {
		e.cache.mu.Lock()
		defer e.cache.mu.Unlock()
		f := e.cache.flights[k]
		return f != nil && f.waiters == 51
	})
	leave()
	if err := <-errc; err == nil {
		t.Fatal("the caller that left got a document")
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d upstream calls for one document", calls.Load())
	}
}

// TestAttack_MirrorHeaderFlood: the mirror's server bounds what an
// anonymous client may send and hold: a header block over 16 KiB is
// refused (431), and a connection that never completes its header is
// closed (ReadHeaderTimeout; shortened here, the production values are
// checked below).
func TestAttack_MirrorHeaderFlood(t *testing.T) {
	e := newEnv(t, Options{})
	mirror := httptest.NewUnstartedServer(nil)
	cfg := NewMirrorServer(NewHandler(e.cache))
	if cfg.ReadHeaderTimeout != 10*time.Second || cfg.ReadTimeout != 30*time.Second || cfg.IdleTimeout != time.Minute ||
		cfg.WriteTimeout != time.Minute || cfg.MaxHeaderBytes != 16<<10 {
		t.Fatalf("mirror server limits: header %s, read %s, idle %s, write %s, header bytes %d",
			cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.IdleTimeout, cfg.WriteTimeout, cfg.MaxHeaderBytes)
	}
	cfg.ReadHeaderTimeout = 200 * time.Millisecond
	mirror.Config = cfg
	mirror.Start()
	defer mirror.Close()

	req, _ := http.NewRequest(http.MethodGet, mirror.URL+"/sgx/certification/v4/qe/identity", nil)
	for i := 0; i < 64; i++ {
		req.Header.Set(fmt.Sprintf("X-Pad-%d", i), strings.Repeat("a", 1024))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of header: %s", resp.Status)
	}

	c, err := net.Dial("tcp", mirror.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /sgx/certification/v4/qe/identity HTTP/1.1\r\nHost: m\r\nX-Slow: ")
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a hang guard
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("a connection that never completes its header was not closed: %v", err)
	}
}

// TestAttack_QuotesWithMadeUpFMSPCs: the FMSPC a server looks up comes
// from a quote's PCK certificate before that is verified, so an anonymous
// peer can make the server's cache ask the PCS for any FMSPC. Documents
// never held are fetched at most UnknownBurst at once; beyond, ErrBusy and
// no upstream call.
func TestAttack_QuotesWithMadeUpFMSPCs(t *testing.T) {
	const burst = 12
	e := newEnv(t, Options{UnknownBurst: burst, UnknownEvery: time.Hour})
	busy := 0
	for i := 0; i < 200; i++ {
		_, _, err := e.cache.Get(context.Background(), TEESGX, fmspcN(i), CAProcessor)
		switch {
		case err == nil:
		case errors.Is(err, ErrBusy):
			busy++
		default:
			t.Fatalf("FMSPC %d: %v", i, err)
		}
	}
	if n := e.pcs.requests.Load(); n > burst {
		t.Fatalf("200 made-up FMSPCs: %d upstream calls, want at most %d", n, burst)
	}
	// The first request took four documents never held (TCB info, QE
	// identity, two CRLs), each later one a TCB info.
	if busy != 200-(burst-3) {
		t.Errorf("%d refused, want %d", busy, 200-(burst-3))
	}
	// Known FMSPCs are still served.
	if _, _, err := e.cache.Get(context.Background(), TEESGX, fmspcN(0), CAProcessor); err != nil {
		t.Fatal(err)
	}
}
