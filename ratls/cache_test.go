package ratls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
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
	t.Run("transient failures are not cached", func(t *testing.T) {
		for name, qerr := range map[string]error{
			"collateral unavailable": errors.New("dcap adapter: collateral: PCCS unreachable"),
			"collateral missing":     &dcap.Rejection{Check: dcap.CheckTCBInfo, Reason: dcap.ErrCollateralMissing},
			"timed out":              context.DeadlineExceeded,
		} {
			var calls atomic.Int32
			qv := QuoteVerifierFunc(func(context.Context, []byte) (*claims.Claims, error) { calls.Add(1); return nil, qerr })
			v := NewVerifier(qv, VerifyOptions{})
			cert := newCert()
			for range 2 {
				if _, err := v.Verify(ctx, cert.Leaf); !errors.Is(err, ErrQuoteRejected) {
					t.Fatalf("%s: %v", name, err)
				}
			}
			if n := calls.Load(); n != 2 {
				t.Fatalf("%s: %d quote verifications, want 2 (not remembered)", name, n)
			}
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

// TestAttack_ForgedCertificateReverifiedEveryTime: a forged certificate
// (here: a quote under an attestation key no root vouches for) cost a full
// quote verification on every presentation (issue 11.9). Failures are
// remembered by certificate hash for NegativeCacheTTL, in a bounded cache:
// N presentations cost one verification, with the same reason each time.
func TestAttack_ForgedCertificateReverifiedEveryTime(t *testing.T) {
	forger := newFakeTEE(t, false)
	base := time.Now()
	var offset atomic.Int64
	clock := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	ctx := context.Background()
	forged := func() *x509.Certificate {
		c, err := NewCertificate(ctx, forger, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	t.Run("N presentations, one verification", func(t *testing.T) {
		qv := verifierFor() // trusts no key
		v := NewVerifier(qv, VerifyOptions{Now: clock})
		cert := forged()
		const n = 50
		for range n {
			_, err := v.Verify(ctx, cert)
			if !errors.Is(err, ErrQuoteRejected) || !errors.Is(err, dcap.ErrUntrustedRoot) {
				t.Fatalf("forged certificate: %v", err)
			}
		}
		if c := qv.calls.Load(); c != 1 {
			t.Fatalf("%d quote verifications for %d presentations of one forged certificate, want 1", c, n)
		}
		// After the TTL it is verified again.
		offset.Store(int64(31 * time.Second))
		v.Verify(ctx, cert)
		if c := qv.calls.Load(); c != 2 {
			t.Fatalf("%d quote verifications after the negative TTL, want 2", c)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		offset.Store(0)
		v := NewVerifier(verifierFor(), VerifyOptions{Now: clock, NegativeCacheSize: 3})
		for range 10 {
			v.Verify(ctx, forged())
		}
		if n := v.neg.len(); n != 3 {
			t.Fatalf("negative cache holds %d entries, bound 3", n)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		qv := verifierFor()
		v := NewVerifier(qv, VerifyOptions{NegativeCacheSize: -1})
		cert := forged()
		v.Verify(ctx, cert)
		v.Verify(ctx, cert)
		if c := qv.calls.Load(); c != 2 {
			t.Fatalf("%d quote verifications with the negative cache off, want 2", c)
		}
	})
	t.Run("a good certificate is not shadowed", func(t *testing.T) {
		good := newFakeTEE(t, false)
		v := NewVerifier(verifierFor(good), VerifyOptions{})
		c, err := NewCertificate(ctx, good, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v.Verify(ctx, forged())
		if _, err := v.Verify(ctx, c.Leaf); err != nil {
			t.Fatal(err)
		}
		if !v.Known(c.Leaf) {
			t.Fatal("a verified certificate is not known")
		}
	})
}

// unsupportedQuoter returns quotes of an attestation key type this
// package does not verify (ECDSA P-384).
type unsupportedQuoter struct{ *fakeTEE }

func (u unsupportedQuoter) Quote(ctx context.Context, rd [64]byte) ([]byte, error) {
	q, err := u.fakeTEE.Quote(ctx, rd)
	if err == nil {
		q[2] = 3
	}
	return q, err
}

// TestAttack_UnsupportedQuoteReportedAsMalformed: every quote parse error
// used to be wrapped as malformed evidence, so an unsupported quote (a
// kind a future version may verify) and a corrupt one could not be told
// apart (issue 11.14).
func TestAttack_UnsupportedQuoteReportedAsMalformed(t *testing.T) {
	ctx := context.Background()
	tee := newFakeTEE(t, false)
	v := NewVerifier(verifierFor(tee), VerifyOptions{})
	c, err := NewCertificate(ctx, unsupportedQuoter{tee}, CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(ctx, c.Leaf)
	if !errors.Is(err, ErrUnsupportedEvidence) || errors.Is(err, ErrMalformedEvidence) || !errors.Is(err, dcap.ErrUnsupported) {
		t.Fatalf("unsupported quote: %v", err)
	}
}

// TestScreen: the handshake's structural screen refuses what is not an
// RA-TLS certificate without verifying anything.
func TestScreen(t *testing.T) {
	ctx := context.Background()
	tee := newFakeTEE(t, false)
	var calls atomic.Int32
	v := NewVerifier(QuoteVerifierFunc(func(context.Context, []byte) (*claims.Claims, error) { calls.Add(1); return nil, errors.New("x") }), VerifyOptions{})
	good, err := NewCertificate(ctx, tee, CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plain := buildCert(t, certSpec{}).Leaf
	for _, tc := range []struct {
		name string
		peer []*x509.Certificate
		want error
	}{
		{"no certificate", nil, ErrNoCertificate},
		{"no evidence", []*x509.Certificate{plain}, ErrNoEvidence},
		{"RA-TLS certificate", []*x509.Certificate{good.Leaf}, nil},
	} {
		err := v.Screen(tc.peer)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if calls.Load() != 0 {
		t.Fatal("the screen verified a quote")
	}
}
