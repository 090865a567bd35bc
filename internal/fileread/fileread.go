// Package fileread reads the files asps is given (policies, secrets,
// collateral bundles, keys and certificates) as a service must: regular
// files only, refused before they are read — a FIFO without blocking on
// it, a device such as /dev/zero, a directory — and never more than a
// limit, so a sparse or growing file costs at most that much memory.
package fileread

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Errors of Read, besides those of os.Stat and os.Open (fs.ErrNotExist, …).
var (
	// ErrNotRegular: the path is a FIFO, a device, a socket or a
	// directory (a symlink is followed; its target must be a regular
	// file).
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file exceeds the limit for what it should hold.
	ErrTooLarge = errors.New("file too large")
)

// Read reads a regular file of at most limit bytes. It refuses
// anything else before reading it — a FIFO (without blocking on it), a
// device such as /dev/zero, a directory — and never reads more than
// limit+1 bytes, so a sparse or growing file costs at most limit bytes of
// memory. Errors are *fs.PathError wrapping ErrNotRegular,
// ErrTooLarge or the error of the system.
func Read(path string, limit int64) ([]byte, error) {
	fail := func(err error) error { return &fs.PathError{Op: "read", Path: path, Err: err} }
	// Refuse by the path first, so that opening has no side effect (a
	// FIFO's writer is not released, a device not touched) …
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := regular(fi, limit); err != nil {
		return nil, fail(err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openNonBlocking, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// … and by what was opened, which may have been swapped meanwhile.
	if fi, err = f.Stat(); err != nil {
		return nil, fail(err)
	}
	if err := regular(fi, limit); err != nil {
		return nil, fail(err)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fail(err)
	}
	if int64(len(b)) > limit {
		return nil, fail(fmt.Errorf("%w: grew past %d bytes while read", ErrTooLarge, limit))
	}
	return b, nil
}

func regular(fi fs.FileInfo, limit int64) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s", ErrNotRegular, fileType(fi.Mode()))
	}
	if fi.Size() > limit {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, fi.Size(), limit)
	}
	return nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "irregular (" + m.Type().String() + ")"
}
