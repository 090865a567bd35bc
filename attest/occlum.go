package attest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"github.com/asps-project/asps/dcap"
)

// OcclumDevice is the path of Occlum's SGX device inside an Occlum
// instance.
const OcclumDevice = "/dev/sgx"

// Occlum's /dev/sgx ioctls for DCAP quotes, encoded as Linux's _IOR and
// _IOWR encode them (asm-generic/ioctl.h: number in bits 0-7, type in
// 8-15, argument size in 16-29, direction in 30-31), which is also how
// Occlum's StructuredIoctlNum encodes them. Sources, in occlum/occlum:
//
//   - src/libos/src/fs/dev_fs/dev_sgx/consts.rs:
//     SGX_CMD_NUM_GET_DCAP_QUOTE_SIZE = StructuredIoctlNum::new::<i32>(7, b's', Output),
//     SGX_CMD_NUM_GEN_DCAP_QUOTE = StructuredIoctlNum::new::<IoctlGenDCAPQuoteArg>(8, b's', InputOutput);
//   - src/libos/src/fs/dev_fs/dev_sgx/mod.rs: #[repr(C)] struct
//     IoctlGenDCAPQuoteArg { report_data: *const sgx_report_data_t,
//     quote_size: *mut u32, quote_buf: *mut u8 };
//   - test/ioctl/main.c: #define SGXIOC_GET_DCAP_QUOTE_SIZE _IOR('s', 7, uint32_t),
//     #define SGXIOC_GEN_DCAP_QUOTE _IOWR('s', 8, sgxioc_gen_dcap_quote_arg_t),
//     typedef struct { sgx_report_data_t *report_data; uint32_t *quote_len;
//     uint8_t *quote_buf; } sgxioc_gen_dcap_quote_arg_t;
//   - tools/toolchains/dcap_lib/src/occlum_dcap.rs, the numbers written
//     out: SGXIOC_GET_DCAP_QUOTE_SIZE = 0x80047307,
//     SGXIOC_GEN_DCAP_QUOTE = 0xc0187308.
//
// Occlum runs on x86-64 only, where the argument struct is three 8-byte
// pointers: 24 bytes, no padding. Occlum refuses an ioctl whose encoded
// size differs from its struct's size.
const (
	SGXIOCGetDCAPQuoteSize = iocRead<<iocDirShift | uint32(unsafe.Sizeof(uint32(0)))<<iocSizeShift | sgxIoctlMagic<<iocTypeShift | 7
	SGXIOCGenDCAPQuote     = (iocRead|iocWrite)<<iocDirShift | uint32(unsafe.Sizeof(genDCAPQuoteArg{}))<<iocSizeShift | sgxIoctlMagic<<iocTypeShift | 8
)

// Linux ioctl request encoding (include/uapi/asm-generic/ioctl.h).
const (
	iocWrite     uint32 = 1
	iocRead      uint32 = 2
	iocTypeShift        = 8
	iocSizeShift        = 16
	iocDirShift         = 30
	// sgxIoctlMagic is Occlum's SGX_MAGIC_CHAR.
	sgxIoctlMagic uint32 = 's'
)

// genDCAPQuoteArg is sgxioc_gen_dcap_quote_arg_t (Occlum's
// IoctlGenDCAPQuoteArg): field order, sizes and alignment as in C.
type genDCAPQuoteArg struct {
	reportData *[64]byte // input
	quoteLen   *uint32   // input: the buffer's size; output: the quote's
	quoteBuf   *byte     // output
}

// SGXDevice is an open SGX device: Occlum's /dev/sgx, or a test's fake.
type SGXDevice interface {
	// Ioctl calls ioctl(2) with request req and argument arg, which points
	// to memory laid out as the request's C argument. A failure is a
	// syscall.Errno where the device gave one.
	Ioctl(req uint32, arg unsafe.Pointer) error
	Close() error
}

// occlumAttempts bounds the retries of an ioctl that fails with EBUSY (as
// Occlum's own tests retry), and occlumBusyWait is the pause between them.
const (
	occlumAttempts = 5
	occlumBusyWait = 200 * time.Millisecond
)

// Occlum obtains SGX DCAP quotes inside an Occlum instance with ioctl(2)
// on /dev/sgx. It is safe for concurrent use: each Quote opens the device.
type Occlum struct {
	opts Options
}

var _ Attester = (*Occlum)(nil)

// NewOcclum returns the Occlum attester. It touches nothing until Quote.
func NewOcclum(o Options) *Occlum { return &Occlum{opts: o} }

// Name returns "occlum".
func (o *Occlum) Name() string { return NameOcclum }

// Runtime returns "occlum".
func (o *Occlum) Runtime() string { return NameOcclum }

// open stats and opens the device, saying what is there when it is not
// Occlum's device.
func (o *Occlum) open() (SGXDevice, string, error) {
	p := o.opts.path(OcclumDevice)
	st, err := o.opts.files().Stat(p)
	if err != nil {
		return nil, describe(err), fmt.Errorf("occlum: %s: %s (not inside an Occlum instance?)", p, describe(err))
	}
	if st.IsDir() {
		return nil, "a directory", fmt.Errorf("occlum: %s is a directory, want Occlum's SGX device: this is a host's SGX driver directory (/dev/sgx/enclave, /dev/sgx/provision), so this process runs outside any enclave", p)
	}
	openDev := o.opts.OpenSGXDevice
	if openDev == nil {
		openDev = openSGXDevice
	}
	d, err := openDev(p)
	if err != nil {
		return nil, fmt.Sprintf("cannot open (%s)", describe(err)), fmt.Errorf("occlum: open %s: %s", p, describe(err))
	}
	return d, "device", nil
}

// ioctl calls req, again while the device says EBUSY.
func (o *Occlum) ioctl(ctx context.Context, d SGXDevice, name string, req uint32, arg unsafe.Pointer) error {
	var err error
	for i := 0; i < occlumAttempts; i++ {
		if i > 0 {
			t := time.NewTimer(occlumBusyWait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("occlum: ioctl %s on %s: %w (after %v)", name, o.opts.path(OcclumDevice), ctx.Err(), err)
			case <-t.C:
			}
		}
		if err = d.Ioctl(req, arg); err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
	}
	return fmt.Errorf("occlum: ioctl %s (0x%08x) on %s: %w%s", name, req, o.opts.path(OcclumDevice), err, occlumHint(err))
}

// occlumHint explains the errors Occlum's /dev/sgx gives.
func occlumHint(err error) string {
	switch {
	case errors.Is(err, syscall.EBUSY):
		return fmt.Sprintf(" (still busy after %d attempts)", occlumAttempts)
	case errors.Is(err, syscall.EIO):
		return " (Occlum: \"DCAP device not ready\": the Intel DCAP quote library could not be loaded or initialized on the host; install libsgx-dcap-ql and a quote provider configured for a PCCS)"
	case errors.Is(err, syscall.ENOSYS):
		return " (Occlum does not know this ioctl: was it built without the dcap feature?)"
	case errors.Is(err, syscall.ENOTTY), errors.Is(err, syscall.EINVAL):
		return " (not Occlum's SGX device, or an Occlum whose ioctl layout differs)"
	}
	return ""
}

// quoteSize asks the device for the size of a quote.
func (o *Occlum) quoteSize(ctx context.Context, d SGXDevice) (uint32, error) {
	var size uint32
	var pin runtime.Pinner
	pin.Pin(&size)
	defer pin.Unpin()
	if err := o.ioctl(ctx, d, "SGXIOC_GET_DCAP_QUOTE_SIZE", SGXIOCGetDCAPQuoteSize, unsafe.Pointer(&size)); err != nil {
		return 0, err
	}
	if size == 0 || size > dcap.MaxQuoteLen {
		return 0, fmt.Errorf("occlum: ioctl SGXIOC_GET_DCAP_QUOTE_SIZE on %s: quote size %d, want 1 to %d", o.opts.path(OcclumDevice), size, dcap.MaxQuoteLen)
	}
	return size, nil
}

// Quote asks Occlum's /dev/sgx for the quote size, then for a quote
// carrying reportData, and checks that it is an SGX quote carrying
// reportData.
func (o *Occlum) Quote(ctx context.Context, reportData [64]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("occlum: quote: %w", err)
	}
	d, _, err := o.open()
	if err != nil {
		return nil, err
	}
	defer d.Close()
	size, err := o.quoteSize(ctx, d)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	rd := new([64]byte)
	*rd = reportData
	n := new(uint32)
	*n = size
	arg := &genDCAPQuoteArg{reportData: rd, quoteLen: n, quoteBuf: &buf[0]}
	// The device reads and writes through the pointers in arg: keep every
	// object in place until it returns.
	var pin runtime.Pinner
	pin.Pin(arg)
	pin.Pin(rd)
	pin.Pin(n)
	pin.Pin(&buf[0])
	err = o.ioctl(ctx, d, "SGXIOC_GEN_DCAP_QUOTE", SGXIOCGenDCAPQuote, unsafe.Pointer(arg))
	pin.Unpin()
	if err != nil {
		return nil, err
	}
	// quote_len is value-result: Occlum leaves it alone (the quote fills
	// the buffer), others may shorten it.
	if *n == 0 || *n > size {
		return nil, fmt.Errorf("occlum: ioctl SGXIOC_GEN_DCAP_QUOTE on %s: returned quote length %d, want 1 to the buffer's %d", o.opts.path(OcclumDevice), *n, size)
	}
	return checkQuote("occlum", o.opts.path(OcclumDevice), buf[:*n], "sgx", reportData)
}

// probe opens the device and asks for the quote size.
func (o *Occlum) probe(ctx context.Context) (seen string, err error) {
	d, seen, err := o.open()
	if err != nil {
		return seen, err
	}
	defer d.Close()
	size, err := o.quoteSize(ctx, d)
	if err != nil {
		return "device, but SGXIOC_GET_DCAP_QUOTE_SIZE fails", err
	}
	return fmt.Sprintf("device; DCAP quote size %d", size), nil
}
