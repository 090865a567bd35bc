package ratls

import (
	"errors"
	"testing"
)

func TestRuntimeClaim(t *testing.T) {
	spki := []byte("spki")
	for _, tc := range []struct {
		runtime string
		ok      bool
	}{{"gramine", true}, {"tdx-guest", true}, {"sim", true}, {"", true}, {"Gramine", false}, {"a b", false}, {"0123456789012345678901234567890123", false}} {
		buf, err := encodeClaimsBuffer(spki, nil, tc.runtime)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseClaimsBuffer(buf)
		if tc.ok != (err == nil) {
			t.Fatalf("runtime %q: %v", tc.runtime, err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedEvidence) {
				t.Fatalf("runtime %q: %v, want ErrMalformedEvidence", tc.runtime, err)
			}
			continue
		}
		if c.Runtime != tc.runtime {
			t.Fatalf("runtime %q read back as %q", tc.runtime, c.Runtime)
		}
	}
}
