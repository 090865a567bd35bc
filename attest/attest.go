// Package attest obtains evidence inside a TEE: a quote whose report data
// is chosen by the caller. Each attester is a small type behind one
// interface, written in pure Go (no Intel SDK library, no cgo), so one
// static binary works in Occlum, in Gramine and in an Intel TDX guest:
//
//   - Gramine: the /dev/attestation pseudo-files (Gramine with
//     sgx.remote_attestation = "dcap" in its manifest);
//   - Occlum: ioctl(2) on Occlum's /dev/sgx device
//     (SGXIOC_GET_DCAP_QUOTE_SIZE, SGXIOC_GEN_DCAP_QUOTE);
//   - an Intel TDX guest: Linux configfs-tsm
//     (/sys/kernel/config/tsm/report, kernel 6.7 or later, provider
//     tdx_guest).
//
// Detect finds the TEE this process runs in, in a fixed order (see
// Detect); ByName forces one. The simulator's attester lives in dcap/sim:
// it needs the simulator PKI, so it is never built here and never chosen
// silently.
//
// Every attester checks what it hands back: the quote must parse as a
// DCAP quote of the expected TEE (SGX for Gramine and Occlum, TDX for
// configfs-tsm) and carry exactly the report data that was asked for.
package attest

import "context"

// Attester produces a quote that commits to reportData.
type Attester interface {
	// Quote returns a raw DCAP quote whose report data equals reportData.
	Quote(ctx context.Context, reportData [64]byte) ([]byte, error)
	// Name says which TEE interface produced it: "sim", "gramine",
	// "occlum", "tsm".
	Name() string
}

// Names of the attesters of this package, as Attester.Name returns them
// and ByName accepts them.
const (
	NameGramine = "gramine"
	NameOcclum  = "occlum"
	NameTSM     = "tsm"
	// NameSim is the simulator's attester (dcap/sim): dev mode only, never
	// built by this package.
	NameSim = "sim"
)

// Runtime returns the name of the runtime that produced a's evidence, as
// claims.Claims.Runtime spells it: "gramine", "occlum", "tdx-guest"
// (configfs-tsm with provider tdx_guest), "sim". An attester that has a
// Runtime() string method says it itself; otherwise its Name is used.
func Runtime(a Attester) string {
	if a == nil {
		return ""
	}
	if r, ok := a.(interface{ Runtime() string }); ok {
		return r.Runtime()
	}
	return a.Name()
}
