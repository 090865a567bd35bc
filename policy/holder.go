package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/internal/filewatch"
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
func (h *Holder) Reload() error { return h.reload("") }

// reload is Reload; a want other than "" puts the file in force only if its
// content has that SHA-256 (else filewatch.ErrChanged: the watcher found
// that content complete, not this one).
func (h *Holder) reload(want string) error {
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
	if want != "" && filewatch.Digest(data) != want {
		return filewatch.ErrChanged
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
// done, and reloads it when its content changes and the change is
// complete: the same content on two polls and, on Linux, no writer between
// writes (see package filewatch; a half-written file is never put in
// force). Each reload, and each failure (once per distinct bad content), is logged;
// a nil logger discards. Run it in its own goroutine.
func (h *Holder) Watch(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	filewatch.Watch(ctx, interval, logger, filewatch.Target{
		Path: h.path, Read: readFile, Reload: h.reload,
		Unreadable:   "policy file unreadable; keeping the current policy",
		ReloadFailed: "policy reload failed; keeping the current policy",
		Digest: func() string {
			if p := h.Policy(); p != nil {
				return p.Digest
			}
			return ""
		},
		Reloaded: func(logger *slog.Logger) {
			p := h.Policy()
			logger.Info("policy reloaded", "path", h.path, "sha256", p.Digest, "apps", len(p.Apps))
		},
	})
}
