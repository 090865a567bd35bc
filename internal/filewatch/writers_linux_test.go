package filewatch

import (
	"os"
	"testing"
)

// TestAttack_TornFileNeverInForceWithoutLease: where the server cannot
// take a lease on the file (it is root's, the server is not), inotify
// alone holds back a file being written in place, or deleted and written
// anew under its name, while the writer stalls with it open.
func TestAttack_TornFileNeverInForceWithoutLease(t *testing.T) {
	saved := leaseProbe
	leaseProbe = func(string) bool { return false }
	t.Cleanup(func() { leaseProbe = saved })
	for _, tc := range []struct {
		name string
		open func(path string) (*os.File, error)
	}{
		{"in place", func(path string) (*os.File, error) { return os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0) }},
		{"deleted and written anew", func(path string) (*os.File, error) {
			if err := os.Remove(path); err != nil {
				return nil, err
			}
			return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { stalledWriterNeverInForce(t, tc.open) })
	}
}
