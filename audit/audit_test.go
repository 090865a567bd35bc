package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
)

func TestRecordJSONLines(t *testing.T) {
	var buf, logBuf bytes.Buffer
	l := New(&buf, slog.New(slog.NewJSONHandler(&logBuf, nil)))
	c := &claims.Claims{TEE: claims.SGX, TCBStatus: "UpToDate", SGX: &claims.SGXIdentity{MrEnclave: claims.Hex{1, 2}, MrSigner: claims.Hex{3}}}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := Record{Service: "svc", Peer: "127.0.0.1:1", App: "web", Requested: []string{"db"}, Decision: Allow}
			if i%2 == 1 {
				r.Decision, r.Code, r.Reason, r.Released = Deny, "PermissionDenied", "no", nil
			} else {
				r.Released = []string{"db"}
			}
			r.FromClaims(c)
			if err := l.Record(r); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	sc := bufio.NewScanner(&buf)
	n, denies := 0, 0
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d is not a whole JSON record: %v", n, err)
		}
		if r.MrEnclave != "0102" || r.TEE != "sgx" || r.Time.IsZero() {
			t.Fatalf("identity not recorded: %+v", r)
		}
		if r.Decision == Deny {
			denies++
			if len(r.Released) != 0 {
				t.Fatal("a denial released something")
			}
		}
		n++
	}
	if n != 50 || denies != 25 {
		t.Fatalf("%d records, %d denials; want 50, 25", n, denies)
	}
	if strings.Count(logBuf.String(), `"msg":"decision"`) != 50 {
		t.Fatal("not every decision reached the log")
	}
}

func TestOpenFileMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(Record{Decision: Deny, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("audit file mode %v, want 0600", st.Mode().Perm())
	}
	var nilLogger *Logger
	if err := nilLogger.Record(Record{}); err != nil {
		t.Fatal("a nil logger must discard")
	}
}

// TestAttack_AuditFileGrowsWithoutBound: the audit file was one file
// appended forever (issue 11.6): a flood filled the disk. It rotates at
// MaxSizeMB and keeps MaxBackups rotated files (lumberjack).
func TestAttack_AuditFileGrowsWithoutBound(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "audit.jsonl")
	l, err := OpenRotating(p, Rotation{MaxSizeMB: 1, MaxBackups: 2, NoSync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	names := []string{strings.Repeat("n", 200)}
	// About 4 MiB of records: rotated at 1 MB, two backups kept.
	for i := range 4 << 20 / 400 {
		if err := l.Record(Record{Service: "svc", Decision: Deny, Requested: names, Reason: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	var files []string
	deadline := time.Now().Add(10 * time.Second) // old backups are removed asynchronously
	for {
		total, files = 0, nil
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			fi, _ := e.Info()
			total += fi.Size()
			files = append(files, e.Name())
		}
		if len(files) <= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(files) > 3 || total > 3<<20+1<<20 {
		t.Fatalf("%d files, %d bytes after 4 MiB of records (want the file and at most 2 backups): %v", len(files), total, files)
	}
	st, err := os.Stat(p)
	if err != nil || st.Size() > 1<<20 || st.Mode().Perm() != 0o600 {
		t.Fatalf("current audit file: %v %v", st, err)
	}
}

// TestOpenRefusesNonRegularFile: rotation renames the file; a device or a
// FIFO is never the audit log.
func TestOpenRefusesNonRegularFile(t *testing.T) {
	if _, err := Open(os.DevNull, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("audit log on %s: %v", os.DevNull, err)
	}
}

// failWriter fails while broken.
type failWriter struct{ broken bool }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.broken {
		return 0, errors.New("no space left on device")
	}
	return len(p), nil
}

// TestProbeRecordsTheOutage: after failed writes the log is unhealthy;
// Probe writes a notice with the count of lost records once it can.
func TestProbeRecordsTheOutage(t *testing.T) {
	w := &failWriter{broken: true}
	l := New(w, nil)
	for range 3 {
		if err := l.Record(Record{Decision: Deny}); err == nil {
			t.Fatal("a failed write was not reported")
		}
	}
	if l.Healthy() || l.Failures() != 3 {
		t.Fatalf("healthy %v, failures %d", l.Healthy(), l.Failures())
	}
	if err := l.Probe(); err == nil {
		t.Fatal("probe succeeded on a broken log")
	}
	w.broken = false
	if err := l.Probe(); err != nil || !l.Healthy() {
		t.Fatalf("probe after recovery: %v", err)
	}
}
