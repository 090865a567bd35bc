package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/audit"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/internal/storetest"
	"github.com/asps-project/asps/server"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func demo() simOpts { return simOpts{TEE: claims.SGX, Identity: devmode.DemoIdentity(claims.SGX)} }

// TestAttack_GracefulStopStillReadyWhileDraining: on SIGTERM the server
// went on reporting itself ready (/healthz, Ready) while it drained, so a
// load balancer kept sending workloads to a replica about to close
// (issue 15.4). Readiness now goes NOT_SERVING first, and the request in
// flight finishes, audited.
func TestAttack_GracefulStopStillReadyWhileDraining(t *testing.T) {
	var gs *storetest.Gate
	h := startHardened(t, func(o *server.Options) {
		gs = storetest.NewGate(o.Store)
		o.Store = gs
		o.Limits.DrainDelay = 100 * time.Millisecond
	})
	c := h.client(t, demo())
	hc := healthpb.NewHealthClient(c.Conn())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before: %v %v", r, err)
	}
	type res struct {
		s   []byte
		err error
	}
	done := make(chan res, 1)
	go func() {
		s, err := c.GetSecrets(ctx, "demo-key")
		if err != nil {
			done <- res{err: err}
			return
		}
		done <- res{s: s[0].Value}
	}()
	waitFor(t, "the request to reach the store", func() bool { return gs.Entered.Load() == 1 })
	stopped := make(chan struct{})
	go func() { h.srv.GracefulStop(); close(stopped) }()
	waitFor(t, "readiness to go NOT_SERVING while draining", func() bool { return h.srv.Ready() != nil })
	select {
	case <-stopped:
		t.Fatal("the server stopped with a request in flight")
	default:
	}
	close(gs.Open)
	r := <-done
	if r.err != nil || string(r.s) != string(devmode.DemoSecrets()["demo-key"]) {
		t.Fatalf("in-flight request during drain: %v", r.err)
	}
	<-stopped
	allows := 0
	for _, rec := range h.audit.records(t) {
		if rec.Decision == audit.Allow {
			allows++
		}
	}
	if allows != 1 {
		t.Fatalf("%d allow records for the drained request, want 1", allows)
	}
}

// TestAttack_OverloadQueuesEveryoneUntilTimeout: with no bound on the
// requests in progress, a crowd far beyond capacity queued inside the
// server until every request hit its deadline (issue 15.5). Beyond
// MaxInFlight (and the queue) a request is shed at once with
// RESOURCE_EXHAUSTED, the reason, and a retry hint in the trailers.
func TestAttack_OverloadQueuesEveryoneUntilTimeout(t *testing.T) {
	var gs *storetest.Gate
	h := startHardened(t, func(o *server.Options) {
		gs = storetest.NewGate(o.Store)
		o.Store = gs
		o.Limits.MaxInFlight, o.Limits.MaxQueue = 2, -1
		o.Limits.ShedRetryAfter = 300 * time.Millisecond
	})
	c := h.client(t, demo())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, err := c.GetSecrets(ctx, "demo-key"); errs <- err }()
	}
	waitFor(t, "two requests in the store", func() bool { return gs.Entered.Load() == 2 })
	var trailer metadata.MD
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	_, err := aspsv1.NewSecretsClient(c.Conn()).GetSecrets(sctx, &aspsv1.GetSecretsRequest{Names: []string{"demo-key"}}, grpc.Trailer(&trailer))
	st, _ := status.FromError(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("third request at capacity: %v, want ResourceExhausted", err)
	}
	if got := trailer.Get(server.RetryAfterKey); len(got) != 1 || got[0] != "300" {
		t.Fatalf("retry hint %v, want 300", got)
	}
	if got := trailer.Get(server.RetryPushbackKey); len(got) != 1 || got[0] != "300" {
		t.Fatalf("pushback %v, want 300", got)
	}
	if !strings.Contains(st.Message(), server.ReasonOverloaded) {
		t.Fatalf("message %q does not name the reason", st.Message())
	}
	// Health is never shed.
	if _, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health at capacity: %v", err)
	}
	close(gs.Open)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("admitted request: %v", err)
		}
	}
}
