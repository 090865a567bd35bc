package collateral

import (
	"context"
	"testing"
	"time"
)

// TestAttack_NewerCRLDoesNotReachCachedVerdicts: Generation is what the
// RA-TLS verdict cache keys its verdicts by. It must move when a document
// in force is replaced by a different one (a newer PCK CRL listing a
// revoked platform, a newer TCB info), and only then: not on a refetch of
// the same document (that would drop every verdict at each refresh), not
// on a refused rollback (an older copy never comes into force), not on a
// first fetch (no verdict rests on a document not yet held).
func TestAttack_NewerCRLDoesNotReachCachedVerdicts(t *testing.T) {
	for _, k := range []Key{PCKCRLKey(CAProcessor), RootCACRLKey(), TCBInfoKey(TEESGX, fmspcA), QEIdentityKey(TEETDX)} {
		t.Run(k.String(), func(t *testing.T) {
			e := newEnv(t, Options{})
			ctx := context.Background()
			refresh := func(at time.Time) {
				t.Helper()
				e.clock.Set(at)
				if err := e.cache.RefreshDue(ctx); err != nil {
					t.Fatalf("refresh: %v", err)
				}
			}
			e.serveVersion(t, k, version{t0, t0.Add(month), 17})
			if _, err := e.cache.Document(ctx, k); err != nil {
				t.Fatal(err)
			}
			if g := e.cache.Generation(); g != 0 {
				t.Fatalf("generation %d after a first fetch, want 0", g)
			}
			// The same document again at its refresh.
			refresh(t0.Add(month - 30*time.Minute))
			if g := e.cache.Generation(); g != 0 {
				t.Fatalf("generation %d after refetching the same document, want 0", g)
			}
			// A newer one replaces it.
			e.serveVersion(t, k, version{t0.Add(24 * time.Hour), t0.Add(2 * month), 18})
			refresh(t0.Add(month - 10*time.Minute))
			if d, _, err := e.cache.document(ctx, k, e.clock.Now(), false); err != nil || docNumber(d) != 18 {
				t.Fatalf("the newer document is not in force: %v (number %d)", err, docNumber(d))
			}
			if g := e.cache.Generation(); g != 1 {
				t.Fatalf("generation %d after a newer document replaced the one in force, want 1", g)
			}
			// An older one is refused and changes nothing.
			e.serveVersion(t, k, version{t0.Add(12 * time.Hour), t0.Add(3 * month), 16})
			refresh(t0.Add(2*month - 30*time.Minute))
			if g := e.cache.Generation(); g != 1 {
				t.Fatalf("generation %d after a refused rollback, want 1", g)
			}
		})
	}
}
