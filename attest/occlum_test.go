package attest_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/asps-project/asps/attest"
)

func TestOcclumQuote(t *testing.T) {
	s := newStandIn(t).withOcclum()
	o := attest.NewOcclum(s.opts())
	if o.Name() != "occlum" || attest.Runtime(o) != "occlum" {
		t.Errorf("name %q runtime %q, want occlum", o.Name(), attest.Runtime(o))
	}
	rd := reportData("occlum")
	q, err := o.Quote(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	checkQuote(t, q, "sgx", rd)
	if len(q) != int(s.dev.quoteSize)-s.dev.pad {
		t.Errorf("quote is %d bytes, want the %d of the quote without the buffer's padding", len(q), int(s.dev.quoteSize)-s.dev.pad)
	}
	if want := []uint32{0x80047307, 0xc0187308}; len(s.dev.reqs) != 2 || s.dev.reqs[0] != want[0] || s.dev.reqs[1] != want[1] {
		t.Errorf("ioctl requests %#x, want %#x", s.dev.reqs, want)
	}
	if len(s.opened) != 1 || s.opened[0] != s.p("/dev/sgx") {
		t.Errorf("opened %q, want [%s]", s.opened, s.p("/dev/sgx"))
	}
	if s.dev.closed != 1 {
		t.Errorf("device closed %d times, want 1", s.dev.closed)
	}
}

// TestOcclumQuoteLen: quote_len is value-result; a device that shortens
// it gets the shorter quote, one that claims more than the buffer is
// refused.
func TestOcclumQuoteLen(t *testing.T) {
	s := newStandIn(t).withOcclum()
	rd := reportData("len")
	s.dev.setLen = s.dev.quoteSize - uint32(s.dev.pad)
	q, err := attest.NewOcclum(s.opts()).Quote(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	checkQuote(t, q, "sgx", rd)

	s.dev.setLen = s.dev.quoteSize + 1
	_, err = attest.NewOcclum(s.opts()).Quote(context.Background(), rd)
	wantErr(t, err, "SGXIOC_GEN_DCAP_QUOTE", s.p("/dev/sgx"), "quote length", "buffer's")
}

func TestOcclumBusy(t *testing.T) {
	s := newStandIn(t).withOcclum()
	s.dev.busy = 2
	rd := reportData("busy")
	q, err := attest.NewOcclum(s.opts()).Quote(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	checkQuote(t, q, "sgx", rd)

	s.dev.busy = 100
	_, err = attest.NewOcclum(s.opts()).Quote(context.Background(), rd)
	wantErr(t, err, "SGXIOC_GET_DCAP_QUOTE_SIZE", "0x80047307", "device or resource busy", "still busy after 5 attempts")
}

func TestOcclumErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *standIn)
		parts []string
	}{
		{"no device", func(s *standIn) { os.Remove(s.p("/dev/sgx")) }, []string{"/dev/sgx", "not found", "not inside an Occlum instance"}},
		{"host driver directory", func(s *standIn) {
			os.Remove(s.p("/dev/sgx"))
			os.MkdirAll(s.p("/dev/sgx/enclave"), 0o755)
		}, []string{"/dev/sgx is a directory", "outside any enclave"}},
		{"open fails", func(s *standIn) { s.openErr = syscall.EACCES }, []string{"open", "/dev/sgx", "permission denied"}},
		{"size: not occlum", func(s *standIn) { s.dev.sizeErr = syscall.ENOTTY }, []string{"SGXIOC_GET_DCAP_QUOTE_SIZE", "0x80047307", "not Occlum's SGX device"}},
		{"size: dcap not ready", func(s *standIn) { s.dev.sizeErr = syscall.EIO }, []string{"SGXIOC_GET_DCAP_QUOTE_SIZE", "DCAP device not ready"}},
		{"size: no dcap feature", func(s *standIn) { s.dev.sizeErr = syscall.ENOSYS }, []string{"SGXIOC_GET_DCAP_QUOTE_SIZE", "without the dcap feature"}},
		{"size zero", func(s *standIn) { s.dev.quoteSize = 0 }, []string{"quote size 0, want 1 to 65536"}},
		{"size huge", func(s *standIn) { s.dev.quoteSize = 1 << 20 }, []string{"quote size 1048576, want 1 to 65536"}},
		{"gen fails", func(s *standIn) { s.dev.genErr = syscall.EIO }, []string{"SGXIOC_GEN_DCAP_QUOTE", "0xc0187308", "DCAP device not ready"}},
		{"wrong report data", func(s *standIn) { s.dev.wrongRD = true }, []string{"occlum", "/dev/sgx", "carries report data"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStandIn(t).withOcclum()
			tc.setup(s)
			_, err := attest.NewOcclum(s.opts()).Quote(context.Background(), reportData("x"))
			wantErr(t, err, tc.parts...)
			if s.dev.closed != len(s.opened)-boolInt(s.openErr != nil) {
				t.Errorf("device opened %d times, closed %d", len(s.opened), s.dev.closed)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestOcclumRealDevice drives the real open(2)/ioctl(2) path against
// devices that are not Occlum's: /dev/null (a character device that knows
// no SGX ioctl) and a regular file.
func TestOcclumRealDevice(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the real device path is linux only")
	}
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Skip("no /dev/null")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	if err := os.Symlink("/dev/null", filepath.Join(root, "dev", "sgx")); err != nil {
		t.Fatal(err)
	}
	_, err := attest.NewOcclum(attest.Options{Root: root}).Quote(context.Background(), reportData("x"))
	wantErr(t, err, "SGXIOC_GET_DCAP_QUOTE_SIZE", "0x80047307", "inappropriate ioctl for device", "not Occlum's SGX device")

	root = t.TempDir()
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	os.WriteFile(filepath.Join(root, "dev", "sgx"), nil, 0o644)
	_, err = attest.NewOcclum(attest.Options{Root: root}).Quote(context.Background(), reportData("x"))
	wantErr(t, err, "not a character device", "want Occlum's SGX device")
}
