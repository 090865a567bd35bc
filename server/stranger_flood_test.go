package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/asps-project/asps/audit"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/server"
)

// TestAttack_AttestedStrangerAuditFlood: genuine evidence is not
// authorisation. Anyone who rents a TEE can attest, with an enclave no app
// of the policy names, and then send request after request of 64 names of
// 256 bytes on a certificate the verifier has cached as good: each used to
// be recorded in full, names and all (16 KiB a request), unsampled — the
// audit flood of issue 11.6 by a peer that attests but that the policy
// does not know. Refusals of workloads that match no app are sampled like
// unattested ones and carry only a count of names; the identity and the
// policy's reason stay in the sampled record.
func TestAttack_AttestedStrangerAuditFlood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	al, err := audit.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	h := startHardened(t, func(o *server.Options) { o.Audit = al })
	stranger := devmode.DemoIdentity(claims.SGX)
	stranger.MrEnclave[0] ^= 0xff
	c := h.client(t, simOpts{TEE: claims.SGX, Identity: stranger})
	names := make([]string, server.MaxNames)
	for i := range names {
		names[i] = strings.Repeat(string(rune('a'+i%26)), server.MaxNameLength-3) + string(rune('A'+i/26)) + "00"
	}
	const n = 300
	for range n {
		_, err := c.GetSecrets(context.Background(), names...)
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("stranger: %v", err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	t.Logf("audit file after %d requests of an attested stranger (%d names of %d bytes): %d bytes, %d records",
		n, len(names), server.MaxNameLength, st.Size(), bytes.Count(b, []byte("\n")))
	if st.Size() > 64<<10 {
		t.Fatalf("audit file is %d bytes after %d refusals of an attested stranger", st.Size(), n)
	}
	if bytes.Contains(b, []byte(names[0])) {
		t.Fatal("the names of a workload that matches no app reached the audit file")
	}
	if !bytes.Contains(b, []byte(`"requested_count":64`)) || !bytes.Contains(b, []byte("no matching app")) {
		t.Fatalf("the sampled record lost the count or the reason:\n%.2000s", b)
	}

	// A recognised workload asking for a secret of another app is still
	// recorded in full, every time.
	own := h.client(t, simOpts{TEE: claims.SGX, Identity: devmode.DemoIdentity(claims.SGX)})
	for range 3 {
		if _, err := own.GetSecrets(context.Background(), "other-app"); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("recognised workload, foreign secret: %v", err)
		}
	}
	b, _ = os.ReadFile(path)
	if got := bytes.Count(b, []byte(`"requested":["other-app"]`)); got != 3 {
		t.Fatalf("%d of 3 refusals of a recognised workload recorded with their names", got)
	}
}

// countingLog counts the lines the server logs.
type countingLog struct {
	mu sync.Mutex
	n  int
	b  bytes.Buffer
}

func (w *countingLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	if w.b.Len() < 64<<10 {
		w.b.Write(p)
	}
	return len(p), nil
}

// TestAttack_AttestedStrangerWhoAmILogFlood: WhoAmI of a workload that no
// app recognises wrote one log line per call with the policy's detail,
// unsampled: an attested stranger on a cached certificate could fill the
// operator's log at the rate it can call. Those lines are sampled per
// reason, with a count of those suppressed.
func TestAttack_AttestedStrangerWhoAmILogFlood(t *testing.T) {
	lw := &countingLog{}
	h := startHardened(t, func(o *server.Options) { o.Logger = slog.New(slog.NewJSONHandler(lw, nil)) })
	stranger := devmode.DemoIdentity(claims.SGX)
	stranger.MrEnclave[0] ^= 0xff
	c := h.client(t, simOpts{TEE: claims.SGX, Identity: stranger})
	const n = 300
	for range n {
		w, err := c.WhoAmI(context.Background())
		if err != nil || w.MatchError == "" {
			t.Fatalf("stranger whoami: %v %+v", err, w)
		}
	}
	lw.mu.Lock()
	lines, text := lw.n, lw.b.String()
	lw.mu.Unlock()
	t.Logf("%d WhoAmI calls of an attested stranger: %d log lines", n, lines)
	if lines > 20 {
		t.Fatalf("%d WhoAmI calls of a stranger wrote %d log lines", n, lines)
	}
	if !strings.Contains(text, "whoami: no app matches") {
		t.Fatalf("the sampled line is missing:\n%s", text)
	}
}
