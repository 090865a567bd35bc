package attest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asps-project/asps/attest"
)

func TestGramineQuote(t *testing.T) {
	for _, typ := range []string{"dcap", "dcap\n"} {
		s := newStandIn(t).withGramine(typ)
		g := attest.NewGramine(s.opts())
		if g.Name() != "gramine" || attest.Runtime(g) != "gramine" {
			t.Errorf("name %q runtime %q, want gramine", g.Name(), attest.Runtime(g))
		}
		rd := reportData("gramine " + typ)
		q, err := g.Quote(context.Background(), rd)
		if err != nil {
			t.Fatalf("attestation_type %q: %v", typ, err)
		}
		checkQuote(t, q, "sgx", rd)
		if string(s.userReportData) != string(rd[:]) {
			t.Errorf("user_report_data holds %x, want %x", s.userReportData, rd)
		}
	}
}

func TestGramineAttestationType(t *testing.T) {
	tests := []struct {
		typ   string
		parts []string
	}{
		{"none", []string{"/dev/attestation/attestation_type", `is "none", want "dcap"`, `sgx.remote_attestation = "dcap"`, "manifest"}},
		{"epid", []string{`is "epid", want "dcap"`, "EPID", `sgx.remote_attestation = "dcap"`}},
		{"sgx-something", []string{`is "sgx-something", want "dcap"`, `sgx.remote_attestation = "dcap"`}},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			s := newStandIn(t).withGramine(tc.typ)
			_, err := attest.NewGramine(s.opts()).Quote(context.Background(), reportData("x"))
			wantErr(t, err, tc.parts...)
			if s.userReportData != nil {
				t.Error("report data was written although attestation is off")
			}
		})
	}
}

func TestGramineMissing(t *testing.T) {
	s := newStandIn(t)
	_, err := attest.NewGramine(s.opts()).Quote(context.Background(), reportData("x"))
	wantErr(t, err, s.p("/dev/attestation/attestation_type"), "not found", "not inside a Gramine enclave")
}

// TestGramineStaleQuote: a quote that does not carry the report data
// asked for is refused, naming both.
func TestGramineStaleQuote(t *testing.T) {
	s := newStandIn(t).withGramine("dcap")
	s.staleQuote = true
	rd := reportData("fresh")
	_, err := attest.NewGramine(s.opts()).Quote(context.Background(), rd)
	wantErr(t, err, s.p("/dev/attestation/quote"), "carries report data", fmt.Sprintf("want %x", rd))
}

// TestGramineConcurrent: Gramine keeps one user_report_data per process,
// so concurrent quotes must not interleave their write and read.
func TestGramineConcurrent(t *testing.T) {
	s := newStandIn(t).withGramine("dcap")
	s.writeDelay = time.Millisecond
	g := attest.NewGramine(s.opts())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd := reportData(fmt.Sprintf("goroutine %d", i))
			q, err := g.Quote(context.Background(), rd)
			if err != nil {
				errs <- err
				return
			}
			checkQuote(t, q, "sgx", rd)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestGramineCanceled(t *testing.T) {
	s := newStandIn(t).withGramine("dcap")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := attest.NewGramine(s.opts()).Quote(ctx, reportData("x"))
	wantErr(t, err, "context canceled")
}
