package attest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/asps-project/asps/dcap"
)

// Options say where the attesters look. The zero Options is the real
// system.
type Options struct {
	// Root is put in front of every path the attesters use
	// (/dev/attestation, /dev/sgx, /sys/kernel/config/tsm/report); empty
	// means "/". Tests point it at a temporary tree.
	Root string
	// OpenSGXDevice opens Occlum's SGX device at path; nil opens it with
	// open(2) and drives it with ioctl(2). Tests substitute a fake.
	OpenSGXDevice func(path string) (SGXDevice, error)
	// TSMAttempts bounds how many times a configfs-tsm report is asked for
	// again when another writer changed the entry meanwhile; zero means 3.
	TSMAttempts int

	// fs is the file access of the file-based attesters; nil is the
	// operating system's. Tests substitute stand-ins of Gramine's and
	// the kernel's pseudo-files (see export_test.go).
	fs fileSystem
}

func (o Options) path(p string) string {
	if o.Root == "" {
		return p
	}
	return filepath.Join(o.Root, p)
}

func (o Options) files() fileSystem {
	if o.fs == nil {
		return osFS{}
	}
	return o.fs
}

// fileSystem is what the file-based attesters (Gramine, configfs-tsm) do
// with files. Pseudo-files act on close, so WriteFile writes all of b in
// one write(2) to an existing file and closes it, reporting the close.
type fileSystem interface {
	Stat(name string) (fs.FileInfo, error)
	ReadFile(name string) ([]byte, error)
	WriteFile(name string, b []byte) error
	Mkdir(name string) error
	Remove(name string) error
}

type osFS struct{}

func (osFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }
func (osFS) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (osFS) Mkdir(name string) error               { return os.Mkdir(name, 0o700) }
func (osFS) Remove(name string) error              { return os.Remove(name) }

func (osFS) WriteFile(name string, b []byte) error {
	// No O_CREATE, no O_TRUNC: these are pseudo-files that exist already.
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	n, err := f.Write(b)
	if err == nil && n != len(b) {
		err = fmt.Errorf("short write: %d of %d bytes", n, len(b))
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// checkQuote checks that quote, read from source, is a DCAP quote of tee
// ("sgx" or "tdx") whose report data is want, and returns it without any
// unsigned bytes after its signature data (buffers are often padded).
func checkQuote(who, source string, quote []byte, tee string, want [64]byte) ([]byte, error) {
	if len(quote) == 0 {
		return nil, fmt.Errorf("%s: %s: empty quote", who, source)
	}
	q, err := dcap.ParseQuote(quote)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %d bytes that are not a DCAP quote: %w", who, source, len(quote), err)
	}
	if got := q.TEE(); got != tee {
		return nil, fmt.Errorf("%s: %s: a %s quote (version %d), want %s", who, source, got, q.Header.Version, tee)
	}
	if got := q.ReportData(); got != want {
		return nil, fmt.Errorf("%s: %s: the quote carries report data %x, want %x (another writer changed the report data meanwhile?)", who, source, got[:], want[:])
	}
	return quote[:len(quote)-q.Trailing], nil
}

// describe says what is at path, for messages: "not found", "permission
// denied", or the error.
func describe(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "not found"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
