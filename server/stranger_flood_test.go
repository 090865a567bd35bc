package server_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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
