package attest

import (
	"testing"
	"unsafe"
)

// TestOcclumIoctlNumbers checks the request numbers against the values
// Occlum publishes (written out here, not computed): 0x80047307 and
// 0xc0187308 in tools/toolchains/dcap_lib/src/occlum_dcap.rs, i.e.
// _IOR('s', 7, uint32_t) and _IOWR('s', 8, sgxioc_gen_dcap_quote_arg_t)
// in test/ioctl/main.c, and that each decodes to the published direction,
// magic, number and argument size.
func TestOcclumIoctlNumbers(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("Occlum runs on x86-64 only; its argument struct has 8-byte pointers")
	}
	tests := []struct {
		name string
		got  uint32
		want uint32
		dir  uint32 // 2 = _IOR (output), 3 = _IOWR (input and output)
		typ  byte
		nr   uint32
		size uint32
	}{
		{"SGXIOC_GET_DCAP_QUOTE_SIZE", SGXIOCGetDCAPQuoteSize, 0x80047307, 2, 's', 7, 4},
		{"SGXIOC_GEN_DCAP_QUOTE", SGXIOCGenDCAPQuote, 0xc0187308, 3, 's', 8, 24},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("request 0x%08x, want 0x%08x", tc.got, tc.want)
			}
			if d := tc.got >> 30; d != tc.dir {
				t.Errorf("direction %d, want %d", d, tc.dir)
			}
			if s := tc.got >> 16 & 0x3fff; s != tc.size {
				t.Errorf("argument size %d, want %d", s, tc.size)
			}
			if m := byte(tc.got >> 8); m != tc.typ {
				t.Errorf("magic %q, want %q", m, tc.typ)
			}
			if n := tc.got & 0xff; n != tc.nr {
				t.Errorf("number %d, want %d", n, tc.nr)
			}
		})
	}
}

// TestOcclumArgLayout checks genDCAPQuoteArg against Occlum's
// #[repr(C)] IoctlGenDCAPQuoteArg { report_data: *const sgx_report_data_t,
// quote_size: *mut u32, quote_buf: *mut u8 } on x86-64: three 8-byte
// pointers in that order, no padding, 24 bytes.
func TestOcclumArgLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("Occlum runs on x86-64 only")
	}
	var a genDCAPQuoteArg
	fields := []struct {
		name           string
		offset, size   uintptr
		wantOff, wantN uintptr
	}{
		{"report_data", unsafe.Offsetof(a.reportData), unsafe.Sizeof(a.reportData), 0, 8},
		{"quote_len", unsafe.Offsetof(a.quoteLen), unsafe.Sizeof(a.quoteLen), 8, 8},
		{"quote_buf", unsafe.Offsetof(a.quoteBuf), unsafe.Sizeof(a.quoteBuf), 16, 8},
	}
	for _, f := range fields {
		if f.offset != f.wantOff || f.size != f.wantN {
			t.Errorf("%s at offset %d, %d bytes; want offset %d, %d bytes", f.name, f.offset, f.size, f.wantOff, f.wantN)
		}
	}
	if s := unsafe.Sizeof(a); s != 24 {
		t.Errorf("struct is %d bytes, want 24", s)
	}
	if al := unsafe.Alignof(a); al != 8 {
		t.Errorf("struct alignment %d, want 8", al)
	}
	if s := unsafe.Sizeof(*a.reportData); s != 64 {
		t.Errorf("sgx_report_data_t is %d bytes, want 64", s)
	}
	if s := unsafe.Sizeof(*a.quoteLen); s != 4 {
		t.Errorf("quote_len points to %d bytes, want 4 (uint32_t)", s)
	}
}
