package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asps-project/asps/claims"
)

// Holder keeps the current policy of a file and replaces it on Reload.
// Readers never wait: Policy is one atomic load. A bad file never replaces a
// good policy.
type Holder struct {
	path  string
	parse func(data []byte) (*Policy, error)
	check func(*Policy) error
	cur   atomic.Pointer[Policy]
	mu    sync.Mutex // serialises reloads: read, parse, check, store
}

// NewHolder loads the policy at path. check, if not nil, is applied to every
// policy before it is put in place — at start and on each reload — and can
// refuse it; a production server passes one that refuses AllowSimulated.
func NewHolder(path string, check func(*Policy) error) (*Holder, error) {
	return NewHolderWith(path, nil, check)
}

// NewHolderWith is NewHolder with another reader of the file: parse turns
// its bytes into a policy (an importer of Intel ASPS's or Occlum's files,
// say). A nil parse reads this package's format.
func NewHolderWith(path string, parse func(data []byte) (*Policy, error), check func(*Policy) error) (*Holder, error) {
	h := &Holder{path: path, parse: parse, check: check}
	if err := h.Reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// NewFixedHolder holds a policy that has no policy file behind it, such as
// the result of an import: Reload refuses and Watch returns at once.
func NewFixedHolder(p *Policy) *Holder {
	h := &Holder{}
	h.cur.Store(p)
	return h
}

// Path returns the policy file's path ("" for a fixed holder).
func (h *Holder) Path() string { return h.path }

// Policy returns the current policy. Use the same *Policy (and the *App it
// matched) for the whole of one request.
func (h *Holder) Policy() *Policy { return h.cur.Load() }

// Match matches claims against the current policy.
func (h *Holder) Match(c *claims.Claims) (*App, error) { return h.Policy().Match(c) }

// Reload reads the file again. If the file cannot be read, does not
// validate, or is refused by the check, the current policy stays and the
// error says why. The server calls it on SIGHUP.
func (h *Holder) Reload() error {
	if h.path == "" && h.Policy() != nil {
		return h.keeping(errors.New("policy: this policy has no policy file to reload (it was imported?); " +
			"convert it to a policy file to make it reloadable"))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	data, err := readFile(h.path)
	if err != nil {
		return h.keeping(err)
	}
	var p *Policy
	if h.parse != nil {
		p, err = h.parse(data)
	} else {
		p, err = Parse(data, formatOf(h.path))
	}
	if err != nil {
		return h.keeping(fmt.Errorf("%s: %w", h.path, err))
	}
	p.Source = h.path
	if h.check != nil {
		if err := h.check(p); err != nil {
			return h.keeping(fmt.Errorf("%s: %w", h.path, err))
		}
	}
	h.cur.Store(p)
	return nil
}

func (h *Holder) keeping(err error) error {
	if old := h.Policy(); old != nil {
		return fmt.Errorf("policy not reloaded, keeping sha256 %s: %w", shortHex(old.Digest), err)
	}
	return err
}

// Watch polls the file every interval (5s if interval <= 0) until ctx is
// done, and reloads it when its content changes: a change of size or
// modification time triggers a read, and the content's SHA-256 decides.
// Each reload, and each failure (once per distinct bad content), is logged;
// a nil logger discards. Run it in its own goroutine.
func (h *Holder) Watch(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	if h.path == "" {
		return
	}
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	type stamp struct {
		size int64
		mod  time.Time
	}
	// The zero stamp makes the first tick compare content: the file may have
	// changed between the last load and this call.
	var last stamp
	var failed string  // digest of the last content that failed to load
	var statErr string // the last stat error logged
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fi, err := os.Stat(h.path)
		if err != nil {
			if err.Error() != statErr {
				statErr = err.Error()
				logger.Warn("policy file unreadable; keeping the current policy", "path", h.path, "err", err)
			}
			continue
		}
		statErr = ""
		now := stamp{fi.Size(), fi.ModTime()}
		if now.size == last.size && now.mod.Equal(last.mod) {
			continue
		}
		last = now
		data, err := readFile(h.path)
		if err != nil {
			logger.Warn("policy file unreadable; keeping the current policy", "path", h.path, "err", err)
			continue
		}
		sum := sha256.Sum256(data)
		digest := hex.EncodeToString(sum[:])
		if cur := h.Policy(); (cur != nil && digest == cur.Digest) || digest == failed {
			continue
		}
		// Reload reads the file again under the lock, so a concurrent
		// SIGHUP reload and this one cannot apply an older content last.
		if err := h.Reload(); err != nil {
			failed = digest
			logger.Error("policy reload failed; keeping the current policy", "path", h.path, "err", err)
			continue
		}
		failed = ""
		p := h.Policy()
		logger.Info("policy reloaded", "path", h.path, "sha256", p.Digest, "apps", len(p.Apps))
	}
}
