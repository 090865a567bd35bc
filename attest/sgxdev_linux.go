package attest

import (
	"fmt"
	"io/fs"
	"syscall"
	"unsafe"
)

// sysSGXDevice is a device driven with raw open(2) and ioctl(2): no cgo,
// and no os.File, whose poller registration a LibOS's device need not
// support.
type sysSGXDevice struct {
	fd int
}

func openSGXDevice(path string) (SGXDevice, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFCHR {
		syscall.Close(fd)
		return nil, fmt.Errorf("%s is not a character device (file type 0%o), want Occlum's SGX device", path, st.Mode&syscall.S_IFMT)
	}
	return &sysSGXDevice{fd: fd}, nil
}

func (d *sysSGXDevice) Ioctl(req uint32, arg unsafe.Pointer) error {
	for {
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(d.fd), uintptr(req), uintptr(arg))
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return errno
	}
}

func (d *sysSGXDevice) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := syscall.Close(d.fd)
	d.fd = -1
	return err
}
