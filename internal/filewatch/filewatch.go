// Package filewatch reloads a value that lives in a file (the policy, the
// secrets file) when the file changes, by polling: a change of size or
// time is read, and only a change of content is reloaded.
package filewatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"time"
)

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
	// Reload loads the file again and puts it in force, or keeps the
	// value in force and says why.
	Reload func() error
	// Reloaded logs what a reload that took put in force.
	Reloaded func(logger *slog.Logger)
}

// Watch polls t.Path every interval until ctx ends. Content that fails to
// reload leaves the value in force and is logged once, with the reason;
// so is an unreadable file (once per error), and a reload that took.
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
	var lastSize int64 = -1 // the first tick compares content
	var lastMod time.Time
	var failed, statErr string
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fi, err := os.Stat(t.Path)
		if err != nil {
			if err.Error() != statErr {
				statErr = err.Error()
				logger.Warn(t.Unreadable, "path", t.Path, "err", err)
			}
			continue
		}
		statErr = ""
		if fi.Size() == lastSize && fi.ModTime().Equal(lastMod) {
			continue
		}
		lastSize, lastMod = fi.Size(), fi.ModTime()
		data, err := t.Read(t.Path)
		if err != nil {
			logger.Warn(t.Unreadable, "path", t.Path, "err", err)
			continue
		}
		sum := sha256.Sum256(data)
		digest := hex.EncodeToString(sum[:])
		if digest == t.Digest() || digest == failed {
			continue
		}
		// Reload reads the file again under its own lock, so a concurrent
		// SIGHUP reload and this one cannot apply an older content last.
		if err := t.Reload(); err != nil {
			failed = digest
			logger.Error(t.ReloadFailed, "path", t.Path, "err", err)
			continue
		}
		failed = ""
		t.Reloaded(logger)
	}
}
