package server

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	intelaspspb "github.com/asps-project/asps/api/intelasps"
	occlumpb "github.com/asps-project/asps/api/occlum"
)

// Retry hints a shedding server sends with RESOURCE_EXHAUSTED (trailers):
// RetryAfterKey is asps's own, in milliseconds; gRPC clients with a retry
// policy honour RetryPushbackKey (gRPC's server pushback) by themselves.
const (
	RetryAfterKey    = "asps-retry-after-ms"
	RetryPushbackKey = "grpc-retry-pushback-ms"
)

// ReasonOverloaded is the reason code of a request shed under load.
const ReasonOverloaded = "server: overloaded"

// ReasonShuttingDown is the reason code of a request that arrived while
// the server drains.
const ReasonShuttingDown = "server: shutting down"

// shedder bounds the provisioning requests in progress (attestation,
// policy, store, audit) to maxInFlight, with at most maxQueue more waiting
// up to queueWait for a slot. Requests beyond that are refused at once
// with RESOURCE_EXHAUSTED and a retry hint, so that a crowd far larger
// than the machine can serve gets bounded latency (each admitted request
// waits at most queueWait) rather than a collapse in which every request
// times out.
type shedder struct {
	slots      chan struct{}
	queue      chan struct{}
	queueWait  time.Duration
	retryAfter time.Duration
}

func newShedder(maxInFlight, maxQueue int, queueWait, retryAfter time.Duration) *shedder {
	if maxInFlight < 0 {
		return nil
	}
	return &shedder{slots: make(chan struct{}, maxInFlight), queue: make(chan struct{}, max(maxQueue, 0)),
		queueWait: queueWait, retryAfter: retryAfter}
}

// acquire takes a slot, or says that the request is shed.
func (s *shedder) acquire(ctx context.Context) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	select {
	case s.queue <- struct{}{}:
	default:
		return false
	}
	defer func() { <-s.queue }()
	t := time.NewTimer(s.queueWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (s *shedder) release() { <-s.slots }

// shedMethods are the provisioning methods that pass through the shedder;
// health checks and reflection are never shed.
var shedMethods = map[string]bool{
	aspsv1.Secrets_GetSecrets_FullMethodName:          true,
	aspsv1.Secrets_GetSecret_FullMethodName:           true,
	aspsv1.Secrets_WhoAmI_FullMethodName:              true,
	occlumpb.GrSecret_GetSecret_FullMethodName:        true,
	intelaspspb.SecretManger_GetSecret_FullMethodName: true,
}

// admit is the unary interceptor that sheds load and refuses requests
// once the server drains.
func (s *Server) admit(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !shedMethods[info.FullMethod] {
		return h(ctx, req)
	}
	if s.shed == nil {
		return h(ctx, req)
	}
	if !s.shed.acquire(ctx) {
		ms := strconv.FormatInt(s.shed.retryAfter.Milliseconds(), 10)
		grpc.SetTrailer(ctx, metadata.Pairs(RetryAfterKey, ms, RetryPushbackKey, ms))
		return nil, status.Errorf(codes.ResourceExhausted, "%s: too many requests in progress; retry after %sms (with jitter)", ReasonOverloaded, ms)
	}
	defer s.shed.release()
	return h(ctx, req)
}
