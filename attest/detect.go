package attest

import (
	"errors"
	"fmt"
)

// ErrNoTEE is returned when no TEE interface is found.
var ErrNoTEE = errors.New("no TEE found")

// Detect finds the TEE this process runs in. No hardware attester is built
// into this version yet (Gramine, Occlum and configfs-tsm are the next
// work); the simulator is never chosen silently.
func Detect() (Attester, error) {
	return nil, fmt.Errorf("%w: looked for Gramine (/dev/attestation/quote), Occlum (/dev/sgx) and Linux configfs-tsm (/sys/kernel/config/tsm/report): this build has no hardware attester yet; for dev mode use --dev-dir DIR (asps dev)", ErrNoTEE)
}

// ByName returns the named attester.
func ByName(name string) (Attester, error) {
	return nil, fmt.Errorf("%w: attester %q is not available in this build (sim: dev mode only, with --dev-dir)", ErrNoTEE, name)
}
