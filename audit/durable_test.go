package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncWriter counts bytes written and the bytes covered by the last Sync.
type syncWriter struct {
	mu              sync.Mutex
	written, synced int
	writes, syncs   int
	fail            error
	// gate, when set, holds the first Sync until it is closed.
	gate     chan struct{}
	inSync   chan struct{}
	gateOnce sync.Once
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written += len(p)
	w.writes++
	return len(p), nil
}

func (w *syncWriter) Sync() error {
	if w.gate != nil {
		first := false
		w.gateOnce.Do(func() { first = true })
		if first {
			close(w.inSync)
			<-w.gate
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.syncs++
	if w.fail != nil {
		return w.fail
	}
	w.synced = w.written
	return nil
}

// TestAttack_ReleaseRecordNotDurableBeforeSecretLeaves: Record returned
// once the record was handed to the kernel; the server then sent the
// secret, and a crash before writeback lost the only record of the
// release (issue 15.4). Record now returns only after a sync that covers
// the record.
func TestAttack_ReleaseRecordNotDurableBeforeSecretLeaves(t *testing.T) {
	w := &syncWriter{}
	l := New(w, nil)
	for i := range 20 {
		if err := l.Record(Record{Service: "svc", Decision: Allow, Released: []string{"k"}, Reason: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		w.mu.Lock()
		written, synced := w.written, w.synced
		w.mu.Unlock()
		if synced != written {
			t.Fatalf("record %d returned with %d of %d bytes synced", i, synced, written)
		}
	}
}

// TestAttack_AuditSyncFailureStillReleases: a record written but not
// made durable (fsync failed: EIO, a full thin volume) must fail Record,
// so the release does not happen, and mark the log unhealthy.
func TestAttack_AuditSyncFailureStillReleases(t *testing.T) {
	w := &syncWriter{fail: errors.New("input/output error")}
	l := New(w, nil)
	if err := l.Record(Record{Decision: Allow, Released: []string{"k"}}); err == nil {
		t.Fatal("a record that could not be synced was reported written")
	}
	if l.Healthy() || l.Failures() != 1 {
		t.Fatalf("healthy %v failures %d after a failed sync", l.Healthy(), l.Failures())
	}
	w.mu.Lock()
	w.fail = nil
	w.mu.Unlock()
	if err := l.Probe(); err != nil || !l.Healthy() {
		t.Fatalf("probe after the disk recovered: %v", err)
	}
}

// TestGroupCommit: concurrent records share syncs. While one sync is in
// progress every other writer writes; one more sync then covers them all.
func TestGroupCommit(t *testing.T) {
	w := &syncWriter{gate: make(chan struct{}), inSync: make(chan struct{})}
	l := New(w, nil)
	const n = 64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); l.Record(Record{Decision: Allow}) }()
	select {
	case <-w.inSync:
	case <-time.After(10 * time.Second):
		t.Fatal("Record never synced")
	}
	for range n - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Record(Record{Decision: Allow}); err != nil {
				t.Error(err)
			}
		}()
	}
	// Let every writer write before the first sync finishes.
	for {
		w.mu.Lock()
		k := w.writes
		w.mu.Unlock()
		if k == n {
			break
		}
		runtimeGosched()
	}
	close(w.gate)
	wg.Wait()
	if w.syncs > 2 || w.synced != w.written {
		t.Fatalf("%d records took %d syncs (want at most 2), %d of %d bytes synced", n, w.syncs, w.synced, w.written)
	}
	if l.Syncs() != uint64(w.syncs) {
		t.Fatalf("Syncs() %d, syncer saw %d", l.Syncs(), w.syncs)
	}
}

// TestRotatedFileSynced: the file-backed log syncs across a rotation and
// every record is in one of the files.
func TestRotatedFileSynced(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "audit.jsonl")
	l, err := OpenRotating(p, Rotation{MaxSizeMB: 1, MaxBackups: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]string, 1)
	big[0] = strings.Repeat("x", 300)
	const n = 3000 // about 1.2 MB: one rotation
	for i := range n {
		if err := l.Record(Record{Decision: Deny, Reason: strconv.Itoa(i), Requested: big}); err != nil {
			t.Fatal(err)
		}
	}
	if l.Syncs() == 0 {
		t.Fatal("no sync")
	}
	l.Close()
	ents, _ := os.ReadDir(dir)
	if len(ents) < 2 {
		t.Fatalf("no rotation: %d files", len(ents))
	}
	seen := map[string]bool{}
	for _, e := range ents {
		for _, r := range readRecords(t, filepath.Join(dir, e.Name())) {
			seen[r.Reason] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("%d of %d records across the rotated files", len(seen), n)
	}
}

func readRecords(t *testing.T, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			break // a torn last line of a killed writer
		}
		out = append(out, r)
	}
	return out
}

// TestAttack_SIGKILLLosesReleasedRecord: a writer process is SIGKILLed
// while recording; every record it reported as written (the point where
// the server would send the secret) is in the file.
func TestAttack_SIGKILLLosesReleasedRecord(t *testing.T) {
	if p := os.Getenv("ASPS_AUDIT_KILL_CHILD"); p != "" {
		l, err := Open(p, nil)
		if err != nil {
			os.Exit(3)
		}
		for i := 0; ; i++ {
			if err := l.Record(Record{Decision: Allow, Released: []string{"k"}, Reason: strconv.Itoa(i)}); err != nil {
				os.Exit(4)
			}
			fmt.Println(i) // "released"
		}
	}
	p := filepath.Join(t.TempDir(), "audit.jsonl")
	cmd := exec.Command(os.Args[0], "-test.run=^TestAttack_SIGKILLLosesReleasedRecord$")
	cmd.Env = append(os.Environ(), "ASPS_AUDIT_KILL_CHILD="+p)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	released := map[string]bool{}
	for sc.Scan() && len(released) < 300 {
		released[sc.Text()] = true
	}
	cmd.Process.Signal(syscall.SIGKILL)
	for sc.Scan() {
		released[sc.Text()] = true
	}
	cmd.Wait()
	if len(released) < 300 {
		t.Fatalf("child released only %d", len(released))
	}
	onDisk := map[string]bool{}
	for _, r := range readRecords(t, p) {
		onDisk[r.Reason] = true
	}
	for k := range released {
		if !onDisk[k] {
			t.Fatalf("release %s reported but not on disk after SIGKILL", k)
		}
	}
}

func runtimeGosched() { runtime.Gosched() }

// BenchmarkRecordDurable: records/s to a real file, fsync'd with group
// commit, from concurrent writers (-cpu sets how many), and without sync.
func BenchmarkRecordDurable(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		b.Run(map[bool]string{false: "fsync", true: "nosync"}[noSync], func(b *testing.B) {
			l, err := OpenRotating(filepath.Join(b.TempDir(), "audit.jsonl"), Rotation{NoSync: noSync}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Record(Record{Service: "svc", Decision: Allow, App: "a", Released: []string{"k"}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(l.Syncs())/float64(b.N), "syncs/record")
		})
	}
}
