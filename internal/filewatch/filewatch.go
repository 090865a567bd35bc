// Package filewatch reloads a value that lives in a file (the policy, the
// secrets file) when the file changes, by polling.
//
// A file is put in force only once it is complete. A file rewritten in
// place passes through prefixes of its new content, and a prefix can be a
// valid policy or secrets file (one that lacks an app's SVN floor, or that
// ends in the middle of a value). So a change is loaded only when
//
//   - the same content (size, modification time and SHA-256) was read on
//     two consecutive polls, and
//   - on Linux, no writer has the file open (a read lease is refused
//     while one has: where the server may take a lease, i.e. owns the
//     file) and none is between writes: the file, by its inode and by its
//     name in its directory (a file deleted and written anew), was not
//     modified since a writer last closed it (inotify IN_MODIFY,
//     IN_CREATE and IN_CLOSE_WRITE). A writer that stalls with the file
//     open — a slow or full disk, a tool writing in chunks — holds the
//     reload back for as long as it stalls.
//
// An atomic replacement (write a new file, rename it over the old one) is
// always complete and is the way to update these files; a writer that
// closes the file between chunks, or gives up half-way, is beyond what a
// reader can tell, and its file is loaded once it is stable. SIGHUP (the
// callers' Reload) loads what is on disk at once: the operator says it is
// complete.
package filewatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"time"
)

// ErrChanged is what Target.Reload returns when the file no longer holds
// the content the watcher found stable: it changed again in between, and
// the watcher waits for it to settle.
var ErrChanged = errors.New("file changed since it was found stable")

// Target is a file-backed value.
type Target struct {
	// Path is the file.
	Path string
	// Unreadable and ReloadFailed are the log messages of a file that
	// cannot be read and of content that does not load.
	Unreadable, ReloadFailed string
	// Read reads the file as a load would (size-bounded, regular only).
	Read func(path string) ([]byte, error)
	// Digest is the hex SHA-256 of the content in force.
	Digest func() string
	// Reload loads the file again and puts it in force if its content has
	// the hex SHA-256 digest (else it returns ErrChanged and keeps the
	// value in force), or keeps the value in force and says why. It reads
	// the file under its own lock, so a concurrent SIGHUP reload and this
	// one cannot apply an older content last.
	Reload func(digest string) error
	// Reloaded logs what a reload that took put in force.
	Reloaded func(logger *slog.Logger)
}

// Digest returns the hex SHA-256 of data, as Target.Digest and
// Target.Reload spell it.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// seen is what one poll read.
type seen struct {
	size   int64
	mod    time.Time
	digest string
	// settled: this content needs nothing more (it is in force, or it
	// failed to load and is logged).
	settled bool
}

// same reports whether two polls read the same file: size, modification
// time and content.
func (s *seen) same(o *seen) bool {
	return s.size == o.size && s.mod.Equal(o.mod) && s.digest == o.digest
}

// Watch polls t.Path every interval until ctx ends and loads a changed
// file once it is complete (see the package comment). Content that fails
// to reload leaves the value in force and is logged once, with the reason;
// so is an unreadable file (once per error), a file held back because a
// writer has it open (once per content), and a reload that took.
func Watch(ctx context.Context, interval time.Duration, logger *slog.Logger, t Target) {
	if t.Path == "" {
		return
	}
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := newWriters(t.Path)
	defer w.close()
	if w.err != nil {
		logger.Warn("file watch cannot see writers; a changed file is loaded once stable over two polls",
			"path", t.Path, "err", w.err)
	}
	var last *seen
	var failed, statErr, waiting string
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.poll()
		fi, err := os.Stat(t.Path)
		if err != nil {
			if err.Error() != statErr {
				statErr = err.Error()
				logger.Warn(t.Unreadable, "path", t.Path, "err", err)
			}
			last = nil
			continue
		}
		statErr = ""
		if last != nil && last.settled && fi.Size() == last.size && fi.ModTime().Equal(last.mod) {
			continue
		}
		data, err := t.Read(t.Path)
		if err != nil {
			logger.Warn(t.Unreadable, "path", t.Path, "err", err)
			last = nil
			continue
		}
		now := &seen{size: fi.Size(), mod: fi.ModTime(), digest: Digest(data)}
		if now.digest == t.Digest() || now.digest == failed {
			now.settled = true
			last = now
			continue
		}
		stable := last != nil && !last.settled && last.same(now)
		last = now
		if !stable {
			continue // read it again on the next poll
		}
		if w.writing() {
			if waiting != now.digest {
				waiting = now.digest
				logger.Info("file changed but a writer has it open; waiting for the write to finish",
					"path", t.Path, "pending_sha256", now.digest)
			}
			continue
		}
		if err := t.Reload(now.digest); err != nil {
			if errors.Is(err, ErrChanged) {
				last = nil
				continue
			}
			failed = now.digest
			now.settled = true
			logger.Error(t.ReloadFailed, "path", t.Path, "err", err)
			continue
		}
		failed, waiting = "", ""
		now.settled = true
		t.Reloaded(logger)
	}
}
