package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asps-project/asps/audit"
)

// TestAttack_ReleaseWithoutAuditGoesUnnoticed: the chaos run's
// released_without_audit must count a value a client received for which
// no allow record of that replica, peer, app and time is on disk; a
// record of another replica, another peer, another app or another time
// does not count, and one record never covers two receipts.
func TestAttack_ReleaseWithoutAuditGoesUnnoticed(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	rep := &replica{listen: "127.0.0.1:7001", auditDir: dir}
	other := &replica{listen: "127.0.0.1:7002", auditDir: t.TempDir()}
	write := func(r *replica, recs ...audit.Record) {
		f, err := os.Create(filepath.Join(r.auditDir, "audit.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			b, _ := json.Marshal(rec)
			f.Write(append(b, '\n'))
		}
		f.WriteString(`{"torn":`) // a line cut by SIGKILL
		f.Close()
	}
	allow := func(peer, app string, at time.Duration) audit.Record {
		return audit.Record{Time: t0.Add(at), Peer: peer, App: app, Decision: audit.Allow, Released: []string{"demo-key"}}
	}
	write(rep,
		allow("127.0.0.1:5000", "demo-enclave", 10*time.Millisecond), // receipt 0
		allow("127.0.0.1:5001", "other", 10*time.Millisecond),        // wrong app for receipt 1
		allow("127.0.0.1:5002", "demo-enclave", 5*time.Second),       // wrong time for receipt 2
		audit.Record{Time: t0.Add(10 * time.Millisecond), Peer: "127.0.0.1:5004", App: "demo-enclave", Decision: audit.Deny},
	)
	write(other, allow("127.0.0.1:5003", "demo-enclave", 10*time.Millisecond)) // another replica for receipt 3
	rc := func(local string) receipt {
		return receipt{locals: []string{"127.0.0.1:7001|" + local}, app: "demo-enclave", start: t0, end: t0.Add(20 * time.Millisecond)}
	}
	for _, tc := range []struct {
		name      string
		receipts  []receipt
		unaudited int
	}{
		{"audited", []receipt{rc("127.0.0.1:5000")}, 0},
		{"one record, two receipts", []receipt{rc("127.0.0.1:5000"), rc("127.0.0.1:5000")}, 1},
		{"other app", []receipt{rc("127.0.0.1:5001")}, 1},
		{"other time", []receipt{rc("127.0.0.1:5002")}, 1},
		{"other replica", []receipt{rc("127.0.0.1:5003")}, 1},
		{"denied", []receipt{rc("127.0.0.1:5004")}, 1},
	} {
		st := &stats{receipts: tc.receipts}
		got, _, err := checkAudit([]*replica{rep, other}, st)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.unaudited {
			t.Errorf("%s: released_without_audit %d, want %d", tc.name, got, tc.unaudited)
		}
	}
}
