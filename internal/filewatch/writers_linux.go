package filewatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// writers tells, by inotify, whether the watched file was modified since a
// writer last closed it. Two watches: the file's current inode (through a
// symlink, as the file is read), and the directory that names it, for the
// events of whatever file comes to bear the name (a file deleted and
// written anew; the directory's watch is in place before it is created).
type writers struct {
	path, dir, name string
	fd              int
	wd, dirWd       int32
	// dirty: the inode watched, or the file of that name, was modified
	// (or created) since a writer last closed it.
	dirty, nameDirty bool
	err              error // inotify unavailable: writing relies on the lease probe alone
	buf              []byte
}

func newWriters(path string) *writers {
	w := &writers{path: path, dir: filepath.Dir(path), name: filepath.Base(path), fd: -1, wd: -1, dirWd: -1,
		buf: make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		w.err = fmt.Errorf("inotify: %w", err)
		return w
	}
	w.fd = fd
	if wd, err := unix.InotifyAddWatch(fd, w.dir, unix.IN_CREATE|unix.IN_MODIFY|unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_DELETE); err == nil {
		w.dirWd = int32(wd)
	}
	w.track()
	return w
}

// track watches the inode now at path; a new inode (the file was replaced)
// starts clean as far as its own watch goes: it was complete when it was
// renamed into place, and the directory's watch saw it if it was written
// there under its name.
func (w *writers) track() {
	wd, err := unix.InotifyAddWatch(w.fd, w.path, unix.IN_MODIFY|unix.IN_CLOSE_WRITE)
	if err != nil {
		return // no file now: the poll logs it; a new one is watched when it appears
	}
	if int32(wd) != w.wd {
		if w.wd >= 0 && w.wd != w.dirWd {
			_, _ = unix.InotifyRmWatch(w.fd, uint32(w.wd))
		}
		w.wd, w.dirty = int32(wd), false
	}
}

// poll drains the events queued since the last poll and re-arms the watch
// on the file's current inode.
func (w *writers) poll() {
	if w.fd < 0 {
		return
	}
	for {
		n, err := unix.Read(w.fd, w.buf)
		if err != nil || n <= 0 {
			if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				w.dirty = true // events lost: wait for the next close
			}
			break
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int32(binary.NativeEndian.Uint32(w.buf[off:]))
			mask := binary.NativeEndian.Uint32(w.buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(w.buf[off+12:]))
			name := w.buf[off+unix.SizeofInotifyEvent : min(n, off+unix.SizeofInotifyEvent+nameLen)]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			off += unix.SizeofInotifyEvent + nameLen
			switch {
			case mask&unix.IN_Q_OVERFLOW != 0:
				w.dirty = true // events lost: wait for the next close
			case wd == w.dirWd && wd >= 0:
				if string(name) != w.name {
					continue
				}
				switch {
				case mask&(unix.IN_CREATE|unix.IN_MODIFY) != 0:
					w.nameDirty = true
				case mask&(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_DELETE) != 0:
					w.nameDirty = false
				}
			case wd != w.wd:
			case mask&unix.IN_CLOSE_WRITE != 0:
				w.dirty = false
			case mask&unix.IN_MODIFY != 0:
				w.dirty = true
			}
		}
	}
	w.track()
}

// writing reports whether a writer has the file open now (where a read
// lease can tell), or modified it since a writer last closed it (as of
// the last poll; inotify).
func (w *writers) writing() bool {
	return leaseProbe(w.path) || (w.fd >= 0 && (w.dirty || w.nameDirty))
}

// leaseProbe is openForWriting (a variable: the tests see inotify alone).
var leaseProbe = openForWriting

// openForWriting asks the kernel whether any process has the file open for
// writing: a read lease is refused (EAGAIN) exactly then. The lease is
// released at once. Where a lease cannot be taken (the file is another
// user's and the process lacks CAP_LEASE, leases are disabled, a network
// file system) it reports false and inotify alone decides.
func openForWriting(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_RDLCK); err != nil {
		return errors.Is(err, unix.EAGAIN)
	}
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
	return false
}

func (w *writers) close() {
	if w.fd >= 0 {
		_ = unix.Close(w.fd)
		w.fd = -1
	}
}
