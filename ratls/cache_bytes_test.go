package ratls

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
)

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// sampleClaims returns distinct claims shaped like the verifier's: SGX
// (i even) or TDX, with a few advisories.
func sampleClaims(i int) *claims.Claims {
	b := func(n int) claims.Hex {
		h := make(claims.Hex, n)
		h[0] = byte(i)
		return h
	}
	c := &claims.Claims{TEE: claims.SGX, QuoteVersion: 3, ReportData: b(64), TCBStatus: claims.StatusSWHardeningNeeded,
		AdvisoryIDs: []string{"INTEL-SA-00334", "INTEL-SA-00615"}, FMSPC: "00906ED50000", CollateralExpiry: time.Now().Add(time.Hour),
		TCBDate: time.Now(), Binding: claims.BindingTCG, Runtime: "gramine"}
	if i%2 == 0 {
		c.SGX = &claims.SGXIdentity{MrEnclave: b(32), MrSigner: b(32), ConfigID: b(64), IsvExtProdID: b(16), IsvFamilyID: b(16), Attributes: b(16), CPUSvn: b(16)}
	} else {
		c.TEE, c.QuoteVersion = claims.TDX, 4
		c.TDX = &claims.TDXIdentity{TeeTcbSvn: b(16), MrSeam: b(48), MrSignerSeam: b(48), SeamAttributes: b(8), TdAttributes: b(8), Xfam: b(8),
			MrTd: b(48), MrConfigID: b(48), MrOwner: b(48), MrOwnerConfig: b(48), Rtmr0: b(48), Rtmr1: b(48), Rtmr2: b(48), Rtmr3: b(48)}
	}
	return c
}

// TestVerdictCacheEntryBytes measures what one cached verdict (SGX and
// TDX claims) and one remembered failure hold on the heap, and checks
// that the estimates the byte bounds count are not below them. The
// figures are logged (go test -v -run TestVerdictCacheEntryBytes).
func TestVerdictCacheEntryBytes(t *testing.T) {
	const n = 2000
	now := time.Now()
	key := func(i int) (k [32]byte) { k[0], k[1], k[2] = byte(i), byte(i>>8), 0x5a; return k }
	for _, tee := range []string{"sgx", "tdx"} {
		c := newResultCache(1<<40, 0)
		h0 := heapInUse()
		func() {
			for i := range n {
				ci := i * 2
				if tee == "tdx" {
					ci++
				}
				c.put(key(i), sampleClaims(ci), now.Add(time.Hour), 0)
			}
		}()
		measured := (heapInUse() - h0) / n
		st := c.stats()
		est := st.Bytes / int64(st.Entries)
		t.Logf("per cached %s verdict: %d bytes measured, %d estimated", tee, measured, est)
		if st.Entries != n {
			t.Fatalf("%d entries, want %d", st.Entries, n)
		}
		if measured > est {
			t.Errorf("a cached %s verdict holds %d bytes, more than the %d the bound counts", tee, measured, est)
		}
		runtime.KeepAlive(c)
	}

	f := newFailureCache(1<<40, 0)
	h0 := heapInUse()
	func() {
		for i := range n {
			e := failWith("verify quote", ErrQuoteRejected, fmt.Errorf("quote signature: %w", errors.New("ecdsa: verification failure")),
				"quote in extension %s, certificate %d", OIDTCGDICETaggedEvidence, i)
			f.put(key(i), compactError(e), now.Add(time.Hour), 0)
		}
	}()
	measured := (heapInUse() - h0) / n
	st := f.stats()
	est := st.Bytes / int64(st.Entries)
	t.Logf("per remembered failure: %d bytes measured, %d estimated", measured, est)
	if measured > est {
		t.Errorf("a remembered failure holds %d bytes, more than the %d the bound counts", measured, est)
	}
	runtime.KeepAlive(f)
}

// TestVerdictCacheBytes: the verdict cache evicts by bytes, least
// recently used first, and counts hits, misses and evictions.
func TestVerdictCacheBytes(t *testing.T) {
	ctx := context.Background()
	tee := newFakeTEE(t, false)
	qv := verifierFor(tee)
	one := entryOverhead + claimsCost(sampleClaims(0)) // about one SGX verdict
	v := NewVerifier(qv, VerifyOptions{CacheBytes: 3 * one})
	var certs []*x509.Certificate
	for range 5 {
		c, err := NewCertificate(ctx, tee, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c.Leaf)
	}
	for _, c := range certs {
		if _, err := v.Verify(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	st := v.Stats()
	if st.Verdicts.Bytes > st.Verdicts.MaxBytes || st.Verdicts.Entries < 1 || st.Verdicts.Entries > 3 {
		t.Fatalf("verdict cache: %+v, want at most 3 entries within %d bytes", st.Verdicts, 3*one)
	}
	if st.Verdicts.Evictions != uint64(5-st.Verdicts.Entries) || st.Verdicts.Misses != 5 || st.Verdicts.Hits != 0 || st.Verifications != 5 {
		t.Fatalf("after 5 new certificates: %+v", st)
	}
	if _, err := v.Verify(ctx, certs[4]); err != nil { // the most recent: a hit
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, certs[0]); err != nil { // the oldest: evicted
		t.Fatal(err)
	}
	st = v.Stats()
	if st.Verdicts.Hits != 1 || st.Verdicts.Misses != 6 || st.Verifications != 6 || qv.calls.Load() != 6 {
		t.Fatalf("after a hit and a miss: %+v, %d quote verifications", st, qv.calls.Load())
	}
	// Known is a look, not a lookup that answers a request.
	v.Known(certs[4])
	if got := v.Stats().Verdicts.Hits; got != 1 {
		t.Fatalf("Known counted as a hit: %d hits", got)
	}
}

// largeAdvisories returns a quote verifier whose claims carry n advisory
// IDs: every quote of a platform whose TCB level lists many advisories
// gets them all.
func largeAdvisories(qv QuoteVerifier, n int) QuoteVerifier {
	return QuoteVerifierFunc(func(ctx context.Context, q []byte) (*claims.Claims, error) {
		c, err := qv.Verify(ctx, q)
		if err != nil {
			return nil, err
		}
		c.AdvisoryIDs = make([]string, n)
		for i := range c.AdvisoryIDs {
			c.AdvisoryIDs[i] = fmt.Sprintf("INTEL-SA-%05d-PADDING-TO-MAKE-IT-LONGER", i)
		}
		return c, nil
	})
}

// TestAttack_LargeClaimsFillVerdictCache: the verdict cache was bounded
// by count (1,024 entries) whatever each entry held, so certificates
// whose claims are large (here: 2,000 advisory IDs each, about 130 KB on
// the heap, with a 30 KB padding extension in every certificate) made the
// server hold about 130 MB for 10 minutes (60 certificates: +7.8 MB before
// the fix, +1.0 MB after). Bounded by bytes, the cache holds at
// most its budget, whatever the certificates and claims.
func TestAttack_LargeClaimsFillVerdictCache(t *testing.T) {
	ctx := context.Background()
	tee := newFakeTEE(t, false)
	const budget = 1 << 20
	const certs = 60
	qv := largeAdvisories(verifierFor(tee), 2000)
	v := NewVerifier(qv, VerifyOptions{CacheBytes: budget})
	pad := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: make([]byte, 30<<10)}
	var list []*x509.Certificate
	for range certs {
		c, err := NewCertificate(ctx, tee, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A padding extension, non-critical: the certificate is re-made with
		// it (same key and evidence) so the binding still holds.
		tmpl := &x509.Certificate{SerialNumber: c.Leaf.SerialNumber, Subject: c.Leaf.Subject, NotBefore: c.Leaf.NotBefore, NotAfter: c.Leaf.NotAfter}
		for _, e := range c.Leaf.Extensions {
			if !e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 14}) && !e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 19}) && !e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 15}) && !e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 37}) {
				tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, e)
			}
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pad)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, c.Leaf.PublicKey, c.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, leaf)
	}
	h0 := heapInUse()
	for _, c := range list {
		got, err := v.Verify(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.AdvisoryIDs) != 2000 {
			t.Fatalf("claims have %d advisories", len(got.AdvisoryIDs))
		}
	}
	grown := heapInUse() - h0
	st := v.Stats().Verdicts
	t.Logf("%d certificates with %d-byte claims: verdict cache %d entries, %d bytes counted (bound %d), heap +%d bytes; %d evictions",
		certs, claimsCost(sampleClaims(0))+100_000, st.Entries, st.Bytes, st.MaxBytes, grown, st.Evictions)
	if st.Bytes > budget {
		t.Fatalf("the verdict cache counts %d bytes, over its %d-byte bound", st.Bytes, budget)
	}
	// Before the fix: +7.8 MB; the margin is for the test's own garbage.
	if grown > 2*budget {
		t.Fatalf("the heap grew by %d bytes for a %d-byte verdict cache", grown, budget)
	}
	if st.Evictions == 0 {
		t.Fatal("no eviction: the large verdicts were all kept")
	}
	// One verdict larger than the whole bound is not kept at all.
	small := NewVerifier(largeAdvisories(verifierFor(tee), 2000), VerifyOptions{CacheBytes: 64 << 10})
	if _, err := small.Verify(ctx, list[0]); err != nil {
		t.Fatal(err)
	}
	if s := small.Stats().Verdicts; s.Entries != 0 || s.TooLarge != 1 {
		t.Fatalf("a verdict over the bound: %+v, want not kept and counted too large", s)
	}
	runtime.KeepAlive(list)
}

// TestAttack_LargeRefusalsFillNegativeCache: a refused certificate's
// error, kept in the negative cache for 30 s, repeated what the
// certificate chose — here 1,500 unknown critical extensions, a 45 KB
// error text, about 49 KB on the heap — for up to 4,096 certificates
// (about 200 MB; 80 certificates: +3.9 MB before the fix, about +0.1 MB
// after). The cache is
// bounded by bytes and keeps a compact copy (texts cut to 512 bytes),
// with the same check and reason.
func TestAttack_LargeRefusalsFillNegativeCache(t *testing.T) {
	ctx := context.Background()
	const budget = 256 << 10
	const certs = 80
	v := NewVerifier(verifierFor(), VerifyOptions{NegativeCacheBytes: budget})
	var list []*x509.Certificate
	for i := range certs {
		exts := make([]pkix.Extension, 1500)
		for j := range exts {
			exts[j] = pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 2, i, 1000000 + j}, Critical: true, Value: []byte{5, 0}}
		}
		list = append(list, buildCert(t, certSpec{exts: exts}).Leaf)
	}
	h0 := heapInUse()
	var first error
	for _, c := range list {
		_, err := v.Verify(ctx, c)
		if !errors.Is(err, ErrUnknownCriticalExtension) {
			t.Fatalf("certificate with unknown critical extensions: %v", err)
		}
		if first == nil {
			first = err
		}
	}
	grown := heapInUse() - h0
	st := v.Stats().Failures
	t.Logf("%d refused certificates, first error %d bytes: negative cache %d entries, %d bytes counted (bound %d), heap +%d bytes",
		certs, len(first.Error()), st.Entries, st.Bytes, st.MaxBytes, grown)
	if len(first.Error()) < 20_000 {
		t.Fatalf("the test's error is only %d bytes", len(first.Error()))
	}
	// Before the fix: +3.9 MB; the margin is for the test's own garbage.
	if st.Bytes > budget || grown > 4*budget {
		t.Fatalf("negative cache: %d bytes counted, heap +%d, for a %d-byte bound", st.Bytes, grown, budget)
	}
	// Presented again, the last one is refused from memory for the same
	// reason, in a cut text.
	last := list[certs-1]
	_, err := v.Verify(ctx, last)
	var re *Error
	if !errors.As(err, &re) || re.Reason != ErrUnknownCriticalExtension || len(re.Detail) > maxCachedText+4 {
		t.Fatalf("remembered refusal: %v", err)
	}
	if s := v.Stats(); s.Failures.Hits != 1 || s.Verifications != certs {
		t.Fatalf("remembered refusal not answered from the negative cache: %+v", s)
	}
	runtime.KeepAlive(list)
}
