package ratls

import (
	"context"
	"crypto/tls"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestVerifierCache(t *testing.T) {
	tee := newFakeTEE(t, false)
	newCert := func() tls.Certificate {
		c, err := NewCertificate(context.Background(), tee, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := time.Now()
	var offset atomic.Int64
	clock := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	ctx := context.Background()

	t.Run("hit until collateral expiry", func(t *testing.T) {
		offset.Store(0)
		qv := verifierFor(tee)
		qv.expiry = base.Add(time.Minute)
		v := NewVerifier(qv, VerifyOptions{Now: clock})
		cert := newCert()
		for range 3 {
			if _, err := v.Verify(ctx, cert.Leaf); err != nil {
				t.Fatal(err)
			}
		}
		if n := qv.calls.Load(); n != 1 {
			t.Fatalf("%d quote verifications for one certificate, want 1", n)
		}
		offset.Store(int64(2 * time.Minute))
		if _, err := v.Verify(ctx, cert.Leaf); err != nil {
			t.Fatal(err)
		}
		if n := qv.calls.Load(); n != 2 {
			t.Fatalf("%d quote verifications after the collateral expired, want 2", n)
		}
	})
	t.Run("TTL bounds reuse", func(t *testing.T) {
		offset.Store(0)
		qv := verifierFor(tee)
		v := NewVerifier(qv, VerifyOptions{Now: clock, CacheTTL: time.Second})
		cert := newCert()
		v.Verify(ctx, cert.Leaf)
		offset.Store(int64(2 * time.Second))
		v.Verify(ctx, cert.Leaf)
		if n := qv.calls.Load(); n != 2 {
			t.Fatalf("%d quote verifications, want 2", n)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		offset.Store(0)
		qv := verifierFor(tee)
		v := NewVerifier(qv, VerifyOptions{Now: clock, CacheSize: 2})
		certs := []tls.Certificate{newCert(), newCert(), newCert()}
		for _, c := range certs {
			v.Verify(ctx, c.Leaf)
		}
		if n := v.cache.len(); n != 2 {
			t.Errorf("cache holds %d entries, want 2", n)
		}
		v.Verify(ctx, certs[2].Leaf) // most recent: a hit
		v.Verify(ctx, certs[0].Leaf) // evicted: a miss
		if n := qv.calls.Load(); n != 4 {
			t.Fatalf("%d quote verifications, want 4", n)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		qv := verifierFor(tee)
		v := NewVerifier(qv, VerifyOptions{CacheSize: -1})
		cert := newCert()
		v.Verify(ctx, cert.Leaf)
		v.Verify(ctx, cert.Leaf)
		if n := qv.calls.Load(); n != 2 {
			t.Fatalf("%d quote verifications, want 2", n)
		}
	})
	t.Run("failures are not cached", func(t *testing.T) {
		qv := verifierFor() // trusts nothing
		v := NewVerifier(qv, VerifyOptions{})
		cert := newCert()
		for range 2 {
			if _, err := v.Verify(ctx, cert.Leaf); !errors.Is(err, ErrQuoteRejected) {
				t.Fatalf("%v", err)
			}
		}
		if n := qv.calls.Load(); n != 2 {
			t.Fatalf("%d quote verifications, want 2", n)
		}
	})
	t.Run("copies", func(t *testing.T) {
		v := NewVerifier(verifierFor(tee), VerifyOptions{})
		cert := newCert()
		c1, _ := v.Verify(ctx, cert.Leaf)
		c1.SGX.MrEnclave[0] ^= 0xff
		c1.AdvisoryIDs = append(c1.AdvisoryIDs, "INTEL-SA-X")
		c2, _ := v.Verify(ctx, cert.Leaf)
		if c2.SGX.MrEnclave[0] != tee.mrEnclave[0] || len(c2.AdvisoryIDs) != 0 {
			t.Fatalf("cached claims were changed through a returned copy")
		}
	})
}

// TestVerifierConcurrent: one Verifier, many goroutines, some certificates
// repeating (run with -race).
func TestVerifierConcurrent(t *testing.T) {
	tee := newFakeTEE(t, false)
	qv := verifierFor(tee)
	v := NewVerifier(qv, VerifyOptions{CacheSize: 4})
	var certs []tls.Certificate
	for range 6 {
		c, err := NewCertificate(context.Background(), tee, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	errs := make(chan error, 60)
	for i := range 60 {
		go func() {
			c, err := v.Verify(context.Background(), certs[i%len(certs)].Leaf)
			if err == nil && c.SGX == nil {
				err = errors.New("no SGX identity")
			}
			errs <- err
		}()
	}
	for range 60 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.len(); n > 4 {
		t.Errorf("cache holds %d entries, bound 4", n)
	}
}
