package flood

import (
	"context"
	"strings"
	"testing"
)

// TestBounded: the flood runs on loopback only and within its caps.
func TestBounded(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Addr: "10.0.0.1:7443", Idle: 1}, "loopback"},
		{Config{Addr: "example.com:7443"}, "loopback"},
		{Config{Addr: "127.0.0.1:7443", Idle: MaxIdle + 1}, "capped"},
		{Config{Addr: "127.0.0.1:7443", Amplify: MaxAmplify + 1}, "capped"},
		{Config{Addr: "127.0.0.1:7443", NoCert: -1}, "capped"},
		{Config{Addr: "127.0.0.1:7443", Sources: MaxSources + 1}, "source addresses"},
	} {
		_, err := Run(context.Background(), tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error about %s", tc.c, err, tc.want)
		}
	}
}
