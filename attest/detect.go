package attest

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrNoTEE is returned when no usable TEE interface is found, or when the
// one asked for by name is not usable here.
var ErrNoTEE = errors.New("no TEE found")

// ErrUnknownTEE is returned by ByName for a name it does not know.
var ErrUnknownTEE = errors.New("unknown TEE")

// ErrSimulator is returned by ByName("sim"): the simulator's attester
// needs the simulator PKI, so this package never builds it.
var ErrSimulator = errors.New(`the simulator attester ("sim") is dev mode only and is not built by package attest: it needs the simulator PKI; run "asps dev" and pass its directory with --dev-dir (or use dcap/sim.NewAttester in Go)`)

// Finding is what detection saw at one TEE interface.
type Finding struct {
	// Attester is the attester's name: "tsm", "gramine", "occlum".
	Attester string
	// Path is where it looked.
	Path string
	// Seen says what was there: "not found", "attestation type \"none\"",
	// "provider \"sev_guest\"", "a directory", …
	Seen string
	// Err says why the interface is not usable, with what was expected;
	// nil when it is.
	Err error
}

// Usable reports whether the interface can produce quotes.
func (f Finding) Usable() bool { return f.Err == nil }

// NoTEEError is Detect's error when no TEE interface is usable: it lists
// what was looked for, in order, and what was found at each path. It
// wraps ErrNoTEE.
type NoTEEError struct {
	Findings []Finding
}

func (e *NoTEEError) Error() string {
	var b strings.Builder
	b.WriteString("no TEE found (looked for, in order, ")
	for i, f := range e.Findings {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s at %s", f.Attester, f.Path)
	}
	b.WriteString(")")
	for _, f := range e.Findings {
		b.WriteString("; ")
		if f.Err != nil {
			b.WriteString(f.Err.Error())
		} else {
			fmt.Fprintf(&b, "%s: %s: %s", f.Attester, f.Path, f.Seen)
		}
	}
	b.WriteString("; the simulator is never chosen automatically: for dev mode, ask for it (asps fetch --dev-dir DIR)")
	return b.String()
}

func (e *NoTEEError) Unwrap() error { return ErrNoTEE }

// order is the detection order; see Detect.
var order = []string{NameTSM, NameGramine, NameOcclum}

// probe checks one interface.
func probe(name string, o Options) Finding {
	switch name {
	case NameTSM:
		seen, err := NewTSM(o).probe()
		return Finding{Attester: name, Path: o.path(TSMReportDir), Seen: seen, Err: err}
	case NameGramine:
		seen, err := NewGramine(o).check()
		return Finding{Attester: name, Path: o.path(GramineAttestationType), Seen: seen, Err: err}
	case NameOcclum:
		seen, err := NewOcclum(o).probe(context.Background())
		return Finding{Attester: name, Path: o.path(OcclumDevice), Seen: seen, Err: err}
	}
	return Finding{Attester: name, Err: fmt.Errorf("%w %q", ErrUnknownTEE, name)}
}

func build(name string, o Options) Attester {
	switch name {
	case NameTSM:
		return NewTSM(o)
	case NameGramine:
		return NewGramine(o)
	case NameOcclum:
		return NewOcclum(o)
	}
	return nil
}

// Probe checks every TEE interface in detection order and says what it
// saw at each; it stops at the first usable one, as Detect does. Checking
// configfs-tsm creates and removes a report entry; checking Occlum asks
// /dev/sgx for the quote size.
func Probe(o Options) []Finding {
	var out []Finding
	for _, name := range order {
		f := probe(name, o)
		out = append(out, f)
		if f.Usable() {
			break
		}
	}
	return out
}

// Detect finds the TEE this process runs in: DetectWith(Options{}).
func Detect() (Attester, error) { return DetectWith(Options{}) }

// DetectWith finds the TEE this process runs in by looking, in this
// fixed order, for
//
//  1. configfs-tsm with provider tdx_guest (/sys/kernel/config/tsm/report):
//     a kernel interface, so it is found only by a process running
//     directly in a TDX guest (Gramine and Occlum do not show the host's
//     or guest's configfs to the enclave);
//  2. Gramine (/dev/attestation/attestation_type saying "dcap");
//  3. Occlum (/dev/sgx, a device answering SGXIOC_GET_DCAP_QUOTE_SIZE);
//     last, because a host's SGX driver may also sit at /dev/sgx (as a
//     directory, or an old driver's device), and only the ioctl tells.
//
// and returns the first usable one. When none is, the error is a
// *NoTEEError (wrapping ErrNoTEE) that lists what was looked for and what
// was found at each path. The simulator is never chosen here.
func DetectWith(o Options) (Attester, error) {
	found := Probe(o)
	if last := found[len(found)-1]; last.Usable() {
		return build(last.Attester, o), nil
	}
	return nil, &NoTEEError{Findings: found}
}

// ByName returns the named attester: ByNameWith(name, Options{}).
func ByName(name string) (Attester, error) { return ByNameWith(name, Options{}) }

// ByNameWith returns the named attester after checking that its interface
// is usable here: "gramine", "occlum", "tsm" (also "tdx" or
// "configfs-tsm"); "auto" or "" detect (see DetectWith). "sim" is an
// error (ErrSimulator): the simulator needs its PKI and is built by dev
// mode only. An interface that is not usable gives an error wrapping
// ErrNoTEE that says what was found and what was expected.
func ByNameWith(name string, o Options) (Attester, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	switch n {
	case "", "auto":
		return DetectWith(o)
	case NameSim:
		return nil, ErrSimulator
	case "tdx", "configfs-tsm":
		n = NameTSM
	}
	if build(n, o) == nil {
		return nil, fmt.Errorf("%w %q: want auto, %s, %s or %s (sim: dev mode only)", ErrUnknownTEE, name, NameGramine, NameOcclum, NameTSM)
	}
	if f := probe(n, o); !f.Usable() {
		return nil, fmt.Errorf("%w (asked for %s): %w", ErrNoTEE, n, f.Err)
	}
	return build(n, o), nil
}
