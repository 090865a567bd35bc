package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
