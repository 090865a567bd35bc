package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/asps-project/asps/audit"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/server"
	"github.com/asps-project/asps/store"
)

// TestAttack_RecognisedConnectionHoldsHeaderListsOnEveryStream: the cap on
// streams waiting for their request (8 per connection, 1,024 in all) stops
// at recognition. A connection whose first request matched an app — the
// app's own code, compromised, or any enclave of an app pinned by
// mr_signer and product — may then hold all 128 streams with header lists
// just under the 16 KiB limit and never send the request, renewed every
// 10 s, on each of its 256 connections per address (4,096 in all): about
// 37 KB of heap a stream, over a gigabyte per address. Waiting streams
// should stay bounded per connection and in all, recognised or not.
func TestAttack_RecognisedConnectionHoldsHeaderListsOnEveryStream(t *testing.T) {
	h := startHardened(t, nil)
	a, err := devmode.Attester(h.env.PKI, claims.SGX, devmode.DemoIdentity(claims.SGX))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ratls.NewCertificate(context.Background(), a, ratls.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const conns, streams = 4, 120
	before := heapInUse()
	held := 0
	for c := range conns {
		r := dialRawH2(t, h.addr, cert)
		// One complete WhoAmI: the connection is recognised.
		r.grpcHeaders("/asps.v1.Secrets/WhoAmI")
		if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.block(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if err := r.fr.WriteData(1, true, []byte{0, 0, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for answered := false; !answered; {
			f, err := r.fr.ReadFrame()
			if err != nil {
				t.Fatalf("connection %d: WhoAmI not answered: %v", c, err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					r.fr.WriteSettingsAck()
				}
			case *http2.GoAwayFrame:
				t.Fatalf("connection %d: GOAWAY %v", c, f.ErrCode)
			case *http2.RSTStreamFrame:
				t.Fatalf("connection %d: WhoAmI reset: %v", c, f.ErrCode)
			case *http2.HeadersFrame:
				answered = f.StreamID == 1 && f.StreamEnded()
			}
		}
		r.conn.SetReadDeadline(time.Time{})
		for s := 1; s <= streams; s++ {
			r.grpcHeaders("/asps.v1.Secrets/GetSecrets")
			for i := range 300 { // about 15 KiB decoded, under the limit
				r.enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-%d", i), Value: "vvvvvvvvvvvvvv", Sensitive: true})
			}
			if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*s + 1), BlockFragment: r.block(), EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
		}
		r.fr.WritePing(false, [8]byte{0xff})
		o := r.readUntilPingAck(t, 10*time.Second)
		if o.ended {
			t.Fatalf("connection %d ended: %v", c, o.endErr)
		}
		held += streams - len(o.answered)
	}
	grew := int64(heapInUse()) - int64(before)
	t.Logf("%d streams of 15 KiB headers waiting on %d recognised connections: heap +%d KiB", held, conns, grew>>10)
	if held > 8*conns {
		t.Errorf("%d streams wait for their request on %d recognised connections, want at most %d", held, conns, 8*conns)
	}
	if grew > 8<<20 {
		t.Errorf("heap grew %d MiB while the streams wait", grew>>20)
	}
}

// TestAttack_RecognisedWorkloadRotatesReleasesOutOfTheAudit: the audit
// file rotates and keeps MaxBackups old files (100 MB x 10 by default), and
// a recognised workload's refusals are recorded in full, every time: 64
// names of 256 bytes, about 17 KB a record (and as much again in the
// server log). A compromised workload that has just fetched its secrets
// asks, on its cached certificate, for names it may not read until the
// record of its release has been rotated away — about 66,000 requests, a
// minute or so, with the defaults; here 1 MB x 1 backup. The audit trail
// of releases must survive what a peer can make the server write.
func TestAttack_RecognisedWorkloadRotatesReleasesOutOfTheAudit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	al, err := audit.OpenRotating(path, audit.Rotation{MaxSizeMB: 1, MaxBackups: 1, NoSync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	h := startHardened(t, func(o *server.Options) { o.Audit = al })
	c := h.client(t, simOpts{TEE: claims.SGX, Identity: devmode.DemoIdentity(claims.SGX)})
	ctx := context.Background()
	if _, err := c.GetSecrets(ctx, "demo-key"); err != nil {
		t.Fatal(err)
	}
	names := make([]string, server.MaxNames)
	for i := range names {
		names[i] = strings.Repeat(string(rune('a'+i%26)), server.MaxNameLength-3) + string(rune('A'+i/26)) + "00"
	}
	const n = 400
	for range n {
		if _, err := c.GetSecrets(ctx, names...); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("recognised workload, names it may not read: %v", err)
		}
	}
	var all []byte
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	t.Logf("%d refusals of a recognised workload: %d audit files, %d bytes kept", n, len(files), len(all))
	if !bytes.Contains(all, []byte(`"released":["demo-key"]`)) {
		t.Fatalf("the record of the release was rotated out of the audit by %d refusals of the workload that received it", n)
	}
}

// TestAttack_OneRequestReadsTwoSecretsFileSnapshots: a release is all or
// nothing and the policy is one snapshot per request, but the secrets of
// one request are read from the file store one Get at a time: a reload
// between them (the operator rotates a key pair, or a key and its id, in
// one edit) hands the workload the old value of one and the new value of
// the other — a pair that never existed in any version of the file. One
// request must read one version of the secrets file.
func TestAttack_OneRequestReadsTwoSecretsFileSnapshots(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.yaml")
	version := func(g int) []byte {
		return fmt.Appendf(nil, "demo-key: {hex: \"%064x\"}\ndb-password: generation-%d\n", g, g)
	}
	if err := os.WriteFile(path, version(0), 0o600); err != nil {
		t.Fatal(err)
	}
	fs, err := store.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := startHardened(t, func(o *server.Options) { o.Store = fs })
	c := h.client(t, simOpts{TEE: claims.SGX, Identity: devmode.DemoIdentity(claims.SGX)})

	// The operator edits the file again and again (atomically: write a
	// new file, rename it over the old one), and the server reloads.
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for g := 1; !stop.Load(); g++ {
			tmp := path + ".new"
			if err := os.WriteFile(tmp, version(g), 0o600); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Error(err)
				return
			}
			if err := fs.Reload(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	mixed, n := 0, 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && mixed == 0; n++ {
		s, err := c.GetSecrets(context.Background(), "demo-key", "db-password")
		if err != nil {
			t.Fatal(err)
		}
		var key, pw int
		fmt.Sscanf(fmt.Sprintf("%x", s[0].Value), "%x", &key)
		fmt.Sscanf(string(s[1].Value), "generation-%d", &pw)
		if key != pw {
			mixed++
			t.Logf("request %d: demo-key of version %d, db-password of version %d", n, key, pw)
		}
	}
	stop.Store(true)
	<-done
	if mixed > 0 {
		t.Fatalf("a request received secrets from two versions of the secrets file (after %d requests)", n)
	}
}

// TestAttack_AuditCannotTellWhichCodeOrPolicyReleased: the audit record
// of a release is the only lasting account of who received a secret. For
// a TD it keeps mr_td and rtmr0 — the cloud's firmware and its
// configuration, shared by every tenant — but not rtmr1/rtmr2, the kernel
// and command line that the policy matched on; and no record names the
// policy version (Policy.Digest, "for audit records") that allowed it. After
// a reload, or for a TD app pinned by rtmr1, the audit cannot say which
// code received the secret under which rules.
func TestAttack_AuditCannotTellWhichCodeOrPolicyReleased(t *testing.T) {
	h := startHardened(t, nil)
	c := h.client(t, simOpts{TEE: claims.TDX, Identity: devmode.DemoIdentity(claims.TDX)})
	if _, err := c.GetSecrets(context.Background(), "tdx-token"); err != nil {
		t.Fatal(err)
	}
	var rec []byte
	for _, r := range h.audit.records(t) {
		if len(r.Released) > 0 {
			rec, _ = json.Marshal(r)
		}
	}
	if rec == nil {
		t.Fatal("no release recorded")
	}
	rtmr1 := fmt.Sprintf("%x", devmode.DemoRtmr1)
	if !bytes.Contains(rec, []byte(rtmr1)) {
		t.Errorf("the release to a TD matched on rtmr1 does not record rtmr1 (%s…): %s", rtmr1[:16], rec)
	}
	if d := h.env.Policy.Policy().Digest; !bytes.Contains(rec, []byte(d)) {
		t.Errorf("the release does not record the policy version (sha256 %s…) it was allowed by", d[:16])
	}
}

// TestAttack_HealthWatchLocksOutSessionNonceAppsBehindReplicas: with
// several replicas (or a dns:/// target) the client balances with gRPC
// health checking, whose Watch stream is the first call on each new
// connection; the server serves Watch only to a connection it recognises,
// judging the certificate's claims alone. An app with "binding: tcg-nonce"
// is recognised only with session evidence, which Watch never carries, so
// every replica stays unhealthy and the workload can never fetch: a policy
// hardening (or a stranger's Watch refusals) turns into a lock-out.
func TestAttack_HealthWatchLocksOutSessionNonceAppsBehindReplicas(t *testing.T) {
	env, err := devmode.Start(context.Background(), devmode.Options{Policy: sessionPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	a, err := devmode.Attester(env.PKI, claims.SGX, devmode.DemoIdentity(claims.SGX))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// One replica, named twice: balanced, health-checked.
	c, err := client.Dial(ctx, client.Config{Server: env.Addr + "," + env.Addr, Attester: a,
		ServerAuth: ratls.ServerByPin(env.ServerPin), SessionEvidence: true, Retry: client.Retry{MaxAttempts: 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetSecrets(ctx, "db-password"); err != nil {
		t.Fatalf("a workload with fresh session evidence, through the replica balancer: %v", err)
	}
}
