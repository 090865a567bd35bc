package devmode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/attest"
	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/ratls"
)

// BenchOptions configure a provisioning load run.
type BenchOptions struct {
	Addr       string           // the server
	ServerAuth ratls.ServerAuth // how to trust it
	Attester   attest.Attester  // the simulated enclave every client is
	Names      []string         // the secrets each provision asks for
	Clients    int              // concurrent clients
	Duration   time.Duration    // how long to run (bounded)
	// FreshEvidence makes every provision use a new key pair and a new
	// quote; otherwise each client makes its RA-TLS certificate once, as
	// a workload process does, and every provision is a new TLS
	// connection (full handshake) and a GetSecrets call.
	FreshEvidence bool
	// MaxProvisions bounds the run's request count (default 1,000,000).
	MaxProvisions int
}

// BenchResult is what a run measured.
type BenchResult struct {
	Provisions       int     `json:"provisions"`
	Errors           int     `json:"errors"`
	Seconds          float64 `json:"seconds"`
	ProvisionsPerSec float64 `json:"provisions_per_sec"`
	P50ms            float64 `json:"p50_ms"`
	P99ms            float64 `json:"p99_ms"`
	Clients          int     `json:"clients"`
	FreshEvidence    bool    `json:"fresh_evidence"`
	FirstError       string  `json:"first_error,omitempty"`
}

// RunBench runs N concurrent simulated enclaves against a server, each
// provision a full RA-TLS handshake and a GetSecrets call.
func RunBench(ctx context.Context, o BenchOptions) (*BenchResult, error) {
	if o.Clients <= 0 {
		o.Clients = 1
	}
	if o.MaxProvisions <= 0 {
		o.MaxProvisions = 1_000_000
	}
	if len(o.Names) == 0 {
		o.Names = []string{"demo-key"}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()

	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		firstErr error
		budget   = o.MaxProvisions
		wg       sync.WaitGroup
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if budget == 0 {
			return false
		}
		budget--
		return true
	}
	// Certificates made before the clock starts (unless fresh per call).
	certs := make([]*ratlsCert, o.Clients)
	if !o.FreshEvidence {
		for i := range certs {
			c, err := newRATLSCert(ctx, o.Attester)
			if err != nil {
				return nil, err
			}
			certs[i] = c
		}
	}
	start := time.Now()
	for i := range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && take() {
				t0 := time.Now()
				err := provisionOnce(ctx, o, certs[i])
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					if ctx.Err() == nil {
						errs++
						if firstErr == nil {
							firstErr = err
						}
					}
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	r := &BenchResult{Provisions: len(lat), Errors: errs, Seconds: el.Seconds(), Clients: o.Clients, FreshEvidence: o.FreshEvidence}
	if firstErr != nil {
		r.FirstError = firstErr.Error()
	}
	if len(lat) == 0 {
		if firstErr != nil {
			return r, fmt.Errorf("no provision succeeded: %w", firstErr)
		}
		return r, errors.New("no provision completed")
	}
	slices.Sort(lat)
	r.ProvisionsPerSec = float64(len(lat)) / el.Seconds()
	r.P50ms = ms(lat[len(lat)/2])
	r.P99ms = ms(lat[min(len(lat)-1, len(lat)*99/100)])
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type ratlsCert struct{ cert tls.Certificate }

func newRATLSCert(ctx context.Context, a attest.Attester) (*ratlsCert, error) {
	cert, err := ratls.NewCertificate(ctx, a, ratls.CertOptions{})
	if err != nil {
		return nil, fmt.Errorf("RA-TLS certificate: %w", err)
	}
	return &ratlsCert{cert: cert}, nil
}

func provisionOnce(ctx context.Context, o BenchOptions, c *ratlsCert) error {
	if c == nil {
		var err error
		if c, err = newRATLSCert(ctx, o.Attester); err != nil {
			return err
		}
	}
	creds := credentials.NewTLS(ratls.ClientConfig(c.cert, o.ServerAuth))
	// o.Addr may list several replicas (client.Target).
	tgt, topts, err := client.Target(o.Addr)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(tgt, append(topts, grpc.WithTransportCredentials(creds))...)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := aspsv1.NewSecretsClient(conn).GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: o.Names})
	if err != nil {
		return err
	}
	if len(resp.GetSecrets()) != len(o.Names) {
		return fmt.Errorf("asked for %d secrets, got %d", len(o.Names), len(resp.GetSecrets()))
	}
	return nil
}
