// Package attest obtains evidence inside a TEE: a quote whose report data
// is chosen by the caller. Each attester is a small type behind one
// interface; the client picks one (see Detect in later work) or is told
// which. The simulator's attester lives in dcap/sim and is used only when
// asked for explicitly.
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
