package devmode

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/asps-project/asps/ratls"
)

// BenchRoleLabel is the pprof label that tells a bench run's goroutines
// apart: "client" (the load generator) or "server" (an in-process server
// started under InProcessServerLabels). A CPU profile of the run is split
// by it.
const BenchRoleLabel = "asps_bench_role"

// InProcessServerLabels runs f — which starts a server in this process —
// with the pprof label that counts the server's goroutines (those f
// starts, and theirs) as server CPU in a bench run.
func InProcessServerLabels(ctx context.Context, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(BenchRoleLabel, "server"), f)
}

// ServerCounters are a server's cumulative counters, read before and
// after a run.
type ServerCounters struct {
	// VerdictCacheAnswers: certificates answered from the RA-TLS verdict
	// cache (no quote verified).
	VerdictCacheAnswers uint64
	// Verifications: certificates (and session evidence) verified in full.
	Verifications uint64
	// CPU is the server process's CPU time, when it is another process
	// (HasCPU).
	CPU    time.Duration
	HasCPU bool
}

// BenchServer reads the counters of the server under load.
type BenchServer interface {
	Counters(ctx context.Context) (ServerCounters, error)
}

// InProcessServer reads the counters of a server in this process from
// its RA-TLS verifier; its CPU comes from the run's profile (goroutines
// labelled by InProcessServerLabels).
type InProcessServer struct{ Verifier *ratls.Verifier }

// Counters implements BenchServer.
func (s InProcessServer) Counters(context.Context) (ServerCounters, error) {
	st := s.Verifier.Stats()
	return ServerCounters{VerdictCacheAnswers: st.Verdicts.Hits, Verifications: st.Verifications}, nil
}

// RemoteServer reads a server's counters from its Prometheus endpoint
// (asps server --metrics-listen: http://HOST:PORT/metrics) and, when PID
// is set, its CPU time from /proc/PID/stat (a server on this machine).
type RemoteServer struct {
	MetricsURL string
	PID        int
	Client     *http.Client
}

// Counters implements BenchServer.
func (s RemoteServer) Counters(ctx context.Context) (ServerCounters, error) {
	var c ServerCounters
	if s.MetricsURL != "" {
		hc := s.Client
		if hc == nil {
			hc = &http.Client{Timeout: 10 * time.Second}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.MetricsURL, nil)
		if err != nil {
			return c, fmt.Errorf("metrics URL: %w", err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return c, fmt.Errorf("scrape %s: %w", s.MetricsURL, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return c, fmt.Errorf("scrape %s: %s", s.MetricsURL, resp.Status)
		}
		m, err := parseMetrics(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return c, fmt.Errorf("scrape %s: %w", s.MetricsURL, err)
		}
		hits, ok1 := m[`asps_verifier_cache_total{cache="verdict",result="hit"}`]
		ver, ok2 := m[`asps_certificate_verifications_total`]
		if !ok1 || !ok2 {
			return c, fmt.Errorf("scrape %s: no verdict-cache metrics (asps_verifier_cache_total{cache=\"verdict\"}, asps_certificate_verifications_total): is it an asps server of this version?", s.MetricsURL)
		}
		c.VerdictCacheAnswers, c.Verifications = uint64(hits), uint64(ver)
	}
	if s.PID > 0 {
		cpu, err := processCPU(s.PID)
		if err != nil {
			return c, err
		}
		c.CPU, c.HasCPU = cpu, true
	}
	return c, nil
}

// parseMetrics reads the Prometheus text format: "name{labels} value"
// lines, keyed by everything before the value.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[strings.TrimSpace(line[:i])] = v
	}
	return out, sc.Err()
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// processCPU returns the user+system CPU time of a process on this
// machine.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("server CPU: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("server CPU: /proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("server CPU: /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("server CPU: /proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuByLabel sums a CPU profile's CPU time by the value of label key
// ("" for samples without it). The profile is the gzipped protocol
// buffer runtime/pprof writes (profile.proto).
func cpuByLabel(prof []byte, key string) (map[string]time.Duration, error) {
	zr, err := gzip.NewReader(bytes.NewReader(prof))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	type label struct{ key, str int64 }
	type sample struct {
		values []int64
		labels []label
	}
	var (
		strs    []string
		samples []sample
		types   []int64 // sample_type[i].type as a string index
	)
	bad := errors.New("cpu profile: malformed")
	// fields calls f for each field of a message.
	fields := func(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error) error {
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				return bad
			}
			b = b[n:]
			var v uint64
			var sub []byte
			switch typ {
			case protowire.VarintType:
				v, n = protowire.ConsumeVarint(b)
			case protowire.BytesType:
				sub, n = protowire.ConsumeBytes(b)
			default:
				n = protowire.ConsumeFieldValue(num, typ, b)
			}
			if n < 0 {
				return bad
			}
			b = b[n:]
			if err := f(num, typ, v, sub); err != nil {
				return err
			}
		}
		return nil
	}
	// ints reads a repeated int64 field, packed or not.
	ints := func(dst []int64, typ protowire.Type, v uint64, sub []byte) ([]int64, error) {
		if typ == protowire.VarintType {
			return append(dst, int64(v)), nil
		}
		for len(sub) > 0 {
			x, n := protowire.ConsumeVarint(sub)
			if n < 0 {
				return nil, bad
			}
			dst, sub = append(dst, int64(x)), sub[n:]
		}
		return dst, nil
	}
	err = fields(raw, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
		switch num {
		case 1: // sample_type
			return fields(sub, func(num protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
				if num == 1 {
					types = append(types, int64(v))
				}
				return nil
			})
		case 2: // sample
			var s sample
			err := fields(sub, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
				var err error
				switch num {
				case 2:
					s.values, err = ints(s.values, typ, v, sub)
				case 3:
					var l label
					err = fields(sub, func(num protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
						switch num {
						case 1:
							l.key = int64(v)
						case 2:
							l.str = int64(v)
						}
						return nil
					})
					s.labels = append(s.labels, l)
				}
				return err
			})
			samples = append(samples, s)
			return err
		case 6: // string_table
			strs = append(strs, string(sub))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	str := func(i int64) string {
		if i < 0 || i >= int64(len(strs)) {
			return ""
		}
		return strs[i]
	}
	cpu := -1
	for i, t := range types {
		if str(t) == "cpu" {
			cpu = i
		}
	}
	if cpu < 0 {
		return nil, errors.New("cpu profile: no cpu sample type")
	}
	out := map[string]time.Duration{}
	for _, s := range samples {
		if cpu >= len(s.values) || s.values[cpu] < 0 {
			continue
		}
		role := ""
		for _, l := range s.labels {
			if str(l.key) == key {
				role = str(l.str)
			}
		}
		out[role] += time.Duration(s.values[cpu])
	}
	return out, nil
}
