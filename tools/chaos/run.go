package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/asps-project/asps/audit"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
)

// workload is an identity and what the policy gives it.
type workload struct {
	app   string
	id    sim.Identity
	names []string
}

func workloads() []workload {
	return []workload{
		{app: "demo-enclave", id: devmode.DemoIdentity(claims.SGX), names: []string{"demo-key", "db-password"}},
		{app: "other", id: sim.Identity{MrEnclave: devmode.OtherEnclave}, names: []string{"other-app"}},
	}
}

// clientLoop provisions with fresh evidence until ctx ends. One call in
// ten, the "other" workload also asks for the demo enclave's key: any
// value it gets is a wrong secret.
func clientLoop(ctx context.Context, idx int, pki *sim.PKI, servers string, pin [32]byte, values map[string]string, st *stats) {
	ws := workloads()
	for n := 0; ctx.Err() == nil; n++ {
		w := ws[0]
		if (idx+n)%4 == 3 {
			w = ws[1]
		}
		probe := w.app == "other" && n%10 == 0
		names := w.names
		if probe {
			names = []string{"demo-key"}
		}
		a, err := devmode.Attester(pki, claims.SGX, w.id)
		if err != nil {
			panic(err)
		}
		var mu sync.Mutex
		var locals []string
		dialer := func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err == nil {
				mu.Lock()
				locals = append(locals, addr+"|"+c.LocalAddr().String())
				mu.Unlock()
			}
			return c, err
		}
		start := time.Now()
		during := st.faultActive.Load() > 0
		// Bounded: a provision has 30s and 12 attempts across replicas.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := client.Dial(cctx, client.Config{Server: servers, Attester: a, ServerAuth: ratls.ServerByPin(pin),
			Retry: client.Retry{MaxAttempts: 12}, DialOptions: []grpc.DialOption{grpc.WithContextDialer(dialer)}})
		var got []client.Secret
		if err == nil {
			got, err = c.GetSecrets(cctx, names...)
			st.retries.Add(c.Retries())
			c.Close()
		}
		cancel()
		lat := time.Since(start)
		during = during || st.faultActive.Load() > 0
		st.mu.Lock()
		if probe {
			if err == nil {
				st.wrong++
			}
			st.mu.Unlock()
			continue
		}
		st.provisions++
		st.latAll = append(st.latAll, lat)
		if during {
			st.latDuringFlt = append(st.latDuringFlt, lat)
		}
		switch {
		case err != nil:
			if ctx.Err() != nil {
				st.provisions-- // cut off by the end of the run
				break
			}
			st.failed++
			if len(st.lastErrs) < 10 {
				st.lastErrs = append(st.lastErrs, err.Error())
			}
		default:
			ok := len(got) == len(names)
			for i, s := range got {
				if s.Name != names[i] || string(s.Value) != values[names[i]] {
					ok = false
				}
			}
			if !ok {
				st.wrong++
			}
			st.succeeded++
			mu.Lock()
			st.receipts = append(st.receipts, receipt{locals: slices.Clone(locals), app: w.app, start: start, end: start.Add(lat)})
			mu.Unlock()
		}
		st.mu.Unlock()
	}
}

// faults injects one fault after another until ctx ends, each held for a
// moment and then repaired; recovery is the time from the repair (a
// restart, an unseal, the disk freed) until the affected components report
// healthy again (/healthz of the replicas, sys/health of OpenBao); 0 for
// faults the replicas ride out with nothing to repair (collateral served
// from cache, policy reloads).
func faults(ctx context.Context, o options, v *bao, tf *tcpFaults, reps []*replica, fp *faultProxy, diskFull, policyPath string, policyBase []byte, st *stats) {
	kinds := []string{"replica_sigkill", "store_leader_kill", "store_net_partition", "collateral_slow", "replica_sigterm", "store_seal",
		"store_net_reset", "policy_reload", "collateral_5xx", "audit_disk_full", "store_net_latency", "collateral_garbage"}
	if diskFull == "" {
		kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == "audit_disk_full" })
	}
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	if !sleep(2 * time.Second) {
		return
	}
	gap := max(500*time.Millisecond, o.duration/time.Duration(len(kinds)*2))
	for i := 0; ; i++ {
		kind := kinds[i%len(kinds)]
		r := reps[i%len(reps)]
		st.faultActive.Add(1)
		logf("fault: %s", kind)
		var rec time.Duration
		var err error
		switch kind {
		case "replica_sigkill", "replica_sigterm":
			sig := syscall.SIGKILL
			if kind == "replica_sigterm" {
				sig = syscall.SIGTERM
			}
			r.signal(sig)
			sleep(time.Second)
			t0 := time.Now()
			if err = r.start(); err == nil {
				_, err = waitHTTP("http://"+r.metrics+"/healthz", 200, 60*time.Second)
			}
			rec = time.Since(t0)
		case "store_leader_kill":
			// SIGKILL the active OpenBao node; the others elect a new
			// leader (election_s); the killed node restarts and rejoins
			// (recovery: restart until the cluster is whole again).
			var l *baoNode
			if l, _, err = v.waitLeader(nil, 30*time.Second); err != nil {
				break
			}
			l.signal(syscall.SIGKILL)
			var el time.Duration
			if _, el, err = v.waitLeader(l, 60*time.Second); err == nil {
				st.mu.Lock()
				st.election[kind] = append(st.election[kind], el.Seconds())
				st.mu.Unlock()
				logf("OpenBao leader %s killed; new leader after %.2fs", l.name, el.Seconds())
			}
			sleep(time.Second)
			t1 := time.Now()
			if err = l.startNode(false); err == nil {
				_, err = v.waitReady(60 * time.Second)
			}
			rec = time.Since(t1)
		case "store_seal":
			// Seal one node, in turn the active one (sys/seal: the
			// leadership moves) and a standby (OpenBao seals standbys
			// only by a restart: it comes back sealed), then unseal it.
			var l *baoNode
			if l, _, err = v.waitLeader(nil, 30*time.Second); err != nil {
				break
			}
			target := l
			if st.faultsByKindLocked(kind)%2 == 1 {
				for _, n := range v.nodes {
					if n != l {
						target = n
						break
					}
				}
				target.signal(syscall.SIGTERM)
				err = target.startNode(true)
			} else {
				var code int
				code, _, err = v.do(target, http.MethodPut, "sys/seal", nil)
				if err == nil && code != http.StatusNoContent {
					err = fmt.Errorf("seal %s: HTTP %d", target.name, code)
				}
			}
			if err != nil {
				break
			}
			logf("OpenBao node %s sealed (leader: %v)", target.name, target == l)
			if target == l {
				if _, el, lerr := v.waitLeader(l, 60*time.Second); lerr == nil {
					st.mu.Lock()
					st.election[kind] = append(st.election[kind], el.Seconds())
					st.mu.Unlock()
				}
			}
			sleep(time.Second)
			t0 := time.Now()
			if err = v.unsealNode(target); err == nil {
				_, err = v.waitReady(60 * time.Second)
			}
			rec = time.Since(t0)
		case "store_net_partition", "store_net_reset", "store_net_latency":
			// TCP faults (Toxiproxy) between the replicas and OpenBao: the
			// active node's link black-holed (a partition: connections
			// stay open, nothing passes) or reset, or every link slowed.
			// Recovery: from the toxic's removal until the affected nodes
			// answer through their proxies again.
			toxic := map[string][2]string{
				"store_net_partition": {"timeout", `{"timeout":0}`},
				"store_net_reset":     {"reset_peer", `{"timeout":0}`},
				"store_net_latency":   {"latency", `{"latency":300,"jitter":100}`},
			}[kind]
			typ, attrs := toxic[0], toxic[1]
			var targets []int
			if kind == "store_net_latency" {
				targets = []int{0, 1, 2}
			} else {
				var l *baoNode
				if l, _, err = v.waitLeader(nil, 30*time.Second); err != nil {
					break
				}
				targets = []int{slices.Index(v.nodes, l)}
			}
			for _, i := range targets {
				if err = tf.add(i, kind, typ, attrs); err != nil {
					break
				}
			}
			logf("%s on OpenBao node(s) %v", kind, targets)
			sleep(3 * time.Second)
			t0 := time.Now()
			for _, i := range targets {
				if rerr := tf.remove(i, kind); rerr != nil && err == nil {
					err = rerr
				}
			}
			for _, i := range targets {
				if _, werr := waitHTTP(tf.addrs()[i]+"/v1/sys/health?standbyok=true", 200, 30*time.Second); werr != nil && err == nil {
					err = werr
				}
			}
			rec = time.Since(t0)
		case "collateral_slow", "collateral_5xx", "collateral_garbage":
			fp.mode.Store(strings.TrimPrefix(kind, "collateral_"))
			sleep(3 * time.Second)
			fp.mode.Store("ok")
		case "policy_reload":
			for k := range 5 {
				os.WriteFile(policyPath, append(slices.Clone(policyBase), fmt.Sprintf("# reload %d.%d\n", i, k)...), 0o600)
				for _, r := range reps {
					if p := r.pid(); p > 0 {
						syscall.Kill(p, syscall.SIGHUP)
					}
				}
				sleep(200 * time.Millisecond)
			}
		case "audit_disk_full":
			filler := filepath.Join(diskFull, "filler")
			f, ferr := os.Create(filler)
			if ferr == nil {
				buf := make([]byte, 64<<10)
				for {
					if _, werr := f.Write(buf); werr != nil {
						break
					}
				}
				f.Close()
			}
			sleep(3 * time.Second)
			os.Remove(filler)
			rec, err = waitHTTP("http://"+reps[len(reps)-1].metrics+"/healthz", 200, 60*time.Second)
		}
		st.faultActive.Add(-1)
		st.mu.Lock()
		st.faultsByKind[kind]++
		st.recovery[kind] = append(st.recovery[kind], rec.Seconds())
		st.mu.Unlock()
		if err != nil {
			logf("fault %s: repair: %v", kind, err)
		}
		if !sleep(gap + time.Duration(rand.N(int64(gap)))) {
			return
		}
	}
}

func (st *stats) faultsByKindLocked(kind string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.faultsByKind[kind]
}

// checkAudit matches every receipt to an allow record, on disk, of the
// replica the client was connected to, whose peer is the client's local
// address of that connection, for the same app, written while the
// provision was in progress (each record matched once).
func checkAudit(reps []*replica, st *stats) (int, int, error) {
	allows := map[string][]time.Time{} // replica|peer|app → record times
	n := 0
	for _, r := range reps {
		files, _ := filepath.Glob(filepath.Join(r.auditDir, "audit*.jsonl"))
		for _, p := range files {
			f, err := os.Open(p)
			if err != nil {
				return 0, 0, err
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var rec audit.Record
				if json.Unmarshal(sc.Bytes(), &rec) != nil {
					continue // a line torn by SIGKILL: never the record of a release that returned
				}
				if rec.Decision == audit.Allow {
					k := r.listen + "|" + rec.Peer + "|" + rec.App
					allows[k] = append(allows[k], rec.Time)
					n++
				}
			}
			f.Close()
		}
	}
	// A record is written after the request arrived and before its reply
	// left: within the client's [start, end] (one clock). Of the records
	// that fit, the closest to the end is taken.
	const slack = 5 * time.Millisecond
	unaudited := 0
	for _, rc := range st.receipts {
		bestK, bestI := "", -1
		var bestD time.Duration
		for _, l := range rc.locals {
			k := l + "|" + rc.app
			for i, t := range allows[k] {
				if t.Before(rc.start.Add(-slack)) || t.After(rc.end.Add(slack)) {
					continue
				}
				if d := rc.end.Sub(t).Abs(); bestI < 0 || d < bestD {
					bestK, bestI, bestD = k, i, d
				}
			}
		}
		if bestI < 0 {
			unaudited++
			if len(st.unaudited) < 5 {
				st.unaudited = append(st.unaudited, fmt.Sprintf("%s %v..%v via %v", rc.app, rc.start.Format(time.RFC3339Nano), rc.end.Format(time.RFC3339Nano), rc.locals))
			}
			continue
		}
		allows[bestK] = slices.Delete(allows[bestK], bestI, bestI+1)
	}
	return unaudited, n, nil
}

type sample struct {
	T          float64 `json:"t_s"`
	RSSBytes   float64 `json:"rss_bytes"`
	Goroutines float64 `json:"goroutines"`
	OpenFDs    float64 `json:"open_fds"`
}

// soakSampler scrapes every replica's /metrics every interval and
// returns the sums.
func soakSampler(ctx context.Context, reps []*replica, every time.Duration) []sample {
	start := time.Now()
	var out []sample
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		s := sample{T: time.Since(start).Seconds()}
		for _, r := range reps {
			m := scrape("http://" + r.metrics + "/metrics")
			s.RSSBytes += m["process_resident_memory_bytes"]
			s.Goroutines += m["go_goroutines"]
			s.OpenFDs += m["process_open_fds"]
		}
		out = append(out, s)
		logf("sample t=%.0fs rss=%.1fMiB goroutines=%.0f fds=%.0f", s.T, s.RSSBytes/(1<<20), s.Goroutines, s.OpenFDs)
	}
}

func scrape(url string) map[string]float64 {
	out := map[string]float64{}
	resp, err := httpc.Get(url)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out
}

func p99(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[min(len(s)-1, len(s)*99/100)].Microseconds()) / 1000
}

func p50(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

func summary(o options, st *stats, unaudited, nrec int, samples []sample) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := map[string]any{
		"mode": map[bool]string{true: "soak", false: "chaos"}[o.soak], "duration_s": o.duration.Seconds(), "clients": o.clients, "replicas": o.replicas,
		"provisions": st.provisions, "succeeded": st.succeeded, "failed_after_retries": st.failed,
		"wrong_secret": st.wrong, "released_without_audit": unaudited, "audit_allow_records": nrec,
		"retries": st.retries.Load(), "p99_ms": p99(st.latAll), "p50_ms": p50(st.latAll),
		"throughput_per_s": float64(st.succeeded) / o.duration.Seconds(),
	}
	if !o.soak {
		out["faults_injected"] = st.faultsByKind
		out["p99_ms_during_faults"] = p99(st.latDuringFlt)
		out["recovery_s"] = st.recovery
		out["store_election_s"] = st.election
	}
	if len(st.unaudited) > 0 {
		out["unaudited_examples"] = st.unaudited
	}
	if len(st.lastErrs) > 0 {
		out["errors"] = st.lastErrs
	}
	ok := st.failed == 0 && st.wrong == 0 && unaudited == 0 && st.succeeded > 0
	if !o.soak && len(st.faultsByKind) < 5 {
		ok = false
	}
	if o.soak && len(samples) >= 4 {
		// Growth: the last sample against the one at the end of warm-up
		// (a quarter of the run).
		w := samples[len(samples)/4]
		l := samples[len(samples)-1]
		out["samples"] = samples
		out["growth_after_warmup"] = map[string]float64{
			"rss_bytes": l.RSSBytes - w.RSSBytes, "goroutines": l.Goroutines - w.Goroutines, "open_fds": l.OpenFDs - w.OpenFDs,
		}
	}
	out["ok"] = ok
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
	if !ok {
		return errors.New("the run did not meet its goal (see the summary)")
	}
	return nil
}
