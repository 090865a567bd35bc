package attest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The Linux configfs-tsm report interface (kernel 6.7 and later;
// Documentation/ABI/testing/configfs-tsm): mkdir an entry under
// TSMReportDir, write up to 64 bytes to its inblob, read the report from
// its outblob. provider names the report's format, generation counts the
// writes to the entry.
const (
	TSMReportDir = "/sys/kernel/config/tsm/report"
	// TSMProviderTDX is the provider of Intel TDX guests: its outblob is
	// a TDX DCAP quote.
	TSMProviderTDX = "tdx_guest"
	// RuntimeTDXGuest is the runtime name of evidence from a TDX guest.
	RuntimeTDXGuest = "tdx-guest"
)

const tsmNeeds = "needs Linux 6.7 or later with CONFIG_TSM_REPORTS, configfs mounted on /sys/kernel/config and the tdx_guest module loaded"

// TSM obtains Intel TDX quotes in a TDX guest through Linux configfs-tsm.
// Each Quote makes its own report entry (a directory under
// /sys/kernel/config/tsm/report) and removes it afterwards; it checks the
// entry's generation before writing inblob and after reading outblob, and
// asks again, a bounded number of times, when another writer changed the
// entry meanwhile. It is safe for concurrent use. Creating an entry needs
// root (or write access to the report directory).
type TSM struct {
	opts Options
}

var _ Attester = (*TSM)(nil)

// NewTSM returns the configfs-tsm attester. It touches nothing until
// Quote.
func NewTSM(o Options) *TSM { return &TSM{opts: o} }

// Name returns "tsm".
func (t *TSM) Name() string { return NameTSM }

// Runtime returns "tdx-guest": this attester accepts only the tdx_guest
// provider.
func (t *TSM) Runtime() string { return RuntimeTDXGuest }

func (t *TSM) attempts() int {
	if t.opts.TSMAttempts > 0 {
		return t.opts.TSMAttempts
	}
	return 3
}

// newEntry makes a report entry with a name no other process uses.
func (t *TSM) newEntry() (string, error) {
	dir := t.opts.path(TSMReportDir)
	var err error
	for i := 0; i < 3; i++ {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("tsm: entry name: %w", err)
		}
		p := filepath.Join(dir, fmt.Sprintf("asps-%d-%s", os.Getpid(), hex.EncodeToString(b[:])))
		if err = t.opts.files().Mkdir(p); err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	hint := ""
	if errors.Is(err, fs.ErrPermission) {
		hint = " (creating a configfs-tsm report entry needs root)"
	}
	return "", fmt.Errorf("tsm: create a report entry in %s: %s%s", dir, describe(err), hint)
}

func (t *TSM) removeEntry(p string) error {
	if err := t.opts.files().Remove(p); err != nil {
		return fmt.Errorf("tsm: remove report entry %s: %s", p, describe(err))
	}
	return nil
}

// provider reads and checks an entry's provider.
func (t *TSM) provider(entry string) (string, error) {
	p := filepath.Join(entry, "provider")
	b, err := t.opts.files().ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("tsm: read %s: %s (no TSM provider registered? load the tdx_guest module)", p, describe(err))
	}
	v := strings.TrimSpace(string(b))
	if v != TSMProviderTDX {
		return v, fmt.Errorf("tsm: %s is %q, want %q: asps verifies Intel TDX quotes only", p, v, TSMProviderTDX)
	}
	return v, nil
}

func (t *TSM) generation(entry string) (uint64, error) {
	p := filepath.Join(entry, "generation")
	b, err := t.opts.files().ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("tsm: read %s: %s", p, describe(err))
	}
	g, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("tsm: %s is %q, want a decimal number", p, strings.TrimSpace(string(b)))
	}
	return g, nil
}

// Quote makes a report entry, checks that its provider is tdx_guest,
// writes reportData to inblob, reads outblob, and checks that the entry's
// generation went up by exactly the one write and that the quote is a TDX
// quote carrying reportData. The entry is removed in every case; failing
// to remove it is an error too.
func (t *TSM) Quote(ctx context.Context, reportData [64]byte) (quote []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tsm: quote: %w", err)
	}
	entry, err := t.newEntry()
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := t.removeEntry(entry); rerr != nil {
			if err == nil {
				quote, err = nil, rerr
			} else {
				err = fmt.Errorf("%w; and %v", err, rerr)
			}
		}
	}()
	if _, err := t.provider(entry); err != nil {
		return nil, err
	}
	fsys := t.opts.files()
	inblob := filepath.Join(entry, "inblob")
	outblob := filepath.Join(entry, "outblob")
	var last string
	for i := 0; i < t.attempts(); i++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("tsm: quote: %w", err)
		}
		g0, err := t.generation(entry)
		if err != nil {
			return nil, err
		}
		if err := fsys.WriteFile(inblob, reportData[:]); err != nil {
			return nil, fmt.Errorf("tsm: write 64 bytes to %s: %s", inblob, describe(err))
		}
		out, err := fsys.ReadFile(outblob)
		if err != nil {
			return nil, fmt.Errorf("tsm: read %s: %s (the tdx_guest driver asks the host's Quote Generation Service through the VMM: is QGS running on the host and quote generation configured for this TD?)", outblob, describe(err))
		}
		g1, err := t.generation(entry)
		if err != nil {
			return nil, err
		}
		if g1 != g0+1 {
			last = fmt.Sprintf("generation %d before writing inblob, %d after reading outblob, want %d", g0, g1, g0+1)
			continue
		}
		return checkQuote("tsm", outblob, out, "tdx", reportData)
	}
	return nil, fmt.Errorf("tsm: %s: another writer changed the entry during each of %d attempts (last: %s); gave up", entry, t.attempts(), last)
}

// probe checks that configfs-tsm is there and that its provider is
// tdx_guest, with a throw-away entry.
func (t *TSM) probe() (seen string, err error) {
	dir := t.opts.path(TSMReportDir)
	st, err := t.opts.files().Stat(dir)
	if err != nil {
		return describe(err), fmt.Errorf("tsm: %s: %s (configfs-tsm %s)", dir, describe(err), tsmNeeds)
	}
	if !st.IsDir() {
		return "not a directory", fmt.Errorf("tsm: %s is not a directory", dir)
	}
	entry, err := t.newEntry()
	if err != nil {
		return "present, but no entry can be created", err
	}
	p, perr := t.provider(entry)
	rerr := t.removeEntry(entry)
	switch {
	case perr != nil && p != "":
		return fmt.Sprintf("provider %q", p), perr
	case perr != nil:
		return "present, but no provider", perr
	case rerr != nil:
		return "present, but its entries cannot be removed", rerr
	}
	return fmt.Sprintf("provider %q", p), nil
}
