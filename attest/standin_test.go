package attest_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/asps-project/asps/attest"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
)

// The simulator's attesters, made once: the stand-ins return their
// quotes, so every quote a test sees is real-shaped.
var (
	simOnce        sync.Once
	simSGX, simTDX *sim.Attester
	simErr         error
)

func simAttesters(t *testing.T) (sgx, tdx *sim.Attester) {
	t.Helper()
	simOnce.Do(func() {
		if simSGX, simErr = sim.NewAttester(sim.Options{TEE: claims.SGX}); simErr != nil {
			return
		}
		simTDX, simErr = sim.NewAttester(sim.Options{TEE: claims.TDX})
	})
	if simErr != nil {
		t.Fatalf("simulator: %v", simErr)
	}
	return simSGX, simTDX
}

// standIn is a temporary tree standing in for the real system, with the
// behaviour of Gramine's /dev/attestation, the kernel's configfs-tsm and
// Occlum's /dev/sgx behind it. It implements attest.FileSystem.
type standIn struct {
	t    *testing.T
	root string
	sgx  *sim.Attester
	tdx  *sim.Attester

	mu sync.Mutex

	// Gramine: the process-wide user report data, as Gramine keeps it.
	userReportData []byte
	staleQuote     bool          // ignore the written report data
	writeDelay     time.Duration // widen the write-then-read window

	// configfs-tsm.
	provider    string
	providerErr error // reading provider fails so (ENXIO: no provider)
	mkdirErr    error
	rmdirErr    error
	interfere   int // outblob reads during which another writer writes inblob first
	entries     map[string]*tsmEntry
	made        []string
	removed     []string

	// Occlum.
	dev     *fakeSGX
	openErr error
	opened  []string
}

type tsmEntry struct {
	inblob     []byte
	generation uint64
}

func newStandIn(t *testing.T) *standIn {
	t.Helper()
	sgx, tdx := simAttesters(t)
	return &standIn{t: t, root: t.TempDir(), sgx: sgx, tdx: tdx, entries: map[string]*tsmEntry{}}
}

func (s *standIn) opts() attest.Options {
	return attest.WithFS(attest.Options{Root: s.root, OpenSGXDevice: s.openSGX}, s)
}

func (s *standIn) p(rel string) string { return filepath.Join(s.root, rel) }

func (s *standIn) mkfile(rel, content string) {
	s.t.Helper()
	p := s.p(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// withGramine lays out /dev/attestation with the given attestation type.
func (s *standIn) withGramine(attestationType string) *standIn {
	s.mkfile(attest.GramineAttestationType, attestationType)
	s.mkfile(attest.GramineUserReportData, "")
	s.mkfile(attest.GramineQuote, "")
	return s
}

// withTSM lays out /sys/kernel/config/tsm/report with the given provider.
func (s *standIn) withTSM(provider string) *standIn {
	if err := os.MkdirAll(s.p(attest.TSMReportDir), 0o755); err != nil {
		s.t.Fatal(err)
	}
	s.provider = provider
	return s
}

// withOcclum puts a file at /dev/sgx and a fake device behind it.
func (s *standIn) withOcclum() *standIn {
	s.mkfile(attest.OcclumDevice, "")
	s.dev = newFakeSGX(s.t, s.sgx)
	return s
}

func (s *standIn) openSGX(path string) (attest.SGXDevice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opened = append(s.opened, path)
	if s.openErr != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: s.openErr}
	}
	if s.dev == nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ENODEV}
	}
	return s.dev, nil
}

// entryOf returns the configfs-tsm entry a path is in, and the attribute.
func (s *standIn) entryOf(name string) (dir, attr string, ok bool) {
	rd := s.p(attest.TSMReportDir)
	rel, err := filepath.Rel(rd, name)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", "", false
	}
	dir, attr, _ = strings.Cut(rel, string(filepath.Separator))
	return filepath.Join(rd, dir), attr, true
}

func (s *standIn) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

func (s *standIn) Mkdir(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dir, attr, ok := s.entryOf(name); ok && attr == "" {
		if s.mkdirErr != nil {
			return &fs.PathError{Op: "mkdir", Path: name, Err: s.mkdirErr}
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		// The kernel fills a new entry with its attributes.
		for attr, v := range map[string]string{"provider": s.provider + "\n", "generation": "0\n", "inblob": "", "outblob": "", "auxblob": "", "privlevel_floor": "0\n"} {
			if err := os.WriteFile(filepath.Join(dir, attr), []byte(v), 0o644); err != nil {
				return err
			}
		}
		s.entries[dir] = &tsmEntry{}
		s.made = append(s.made, dir)
		return nil
	}
	return os.Mkdir(name, 0o755)
}

func (s *standIn) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dir, attr, ok := s.entryOf(name); ok && attr == "" {
		if _, ok := s.entries[dir]; !ok {
			return &fs.PathError{Op: "rmdir", Path: name, Err: syscall.ENOENT}
		}
		if s.rmdirErr != nil {
			return &fs.PathError{Op: "rmdir", Path: name, Err: s.rmdirErr}
		}
		// configfs removes an item's attributes with it.
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		delete(s.entries, dir)
		s.removed = append(s.removed, dir)
		return nil
	}
	return os.Remove(name)
}

func (s *standIn) WriteFile(name string, b []byte) error {
	if name == s.p(attest.GramineUserReportData) {
		if len(b) != 64 {
			return &fs.PathError{Op: "write", Path: name, Err: syscall.EINVAL}
		}
		s.mu.Lock()
		s.userReportData = append([]byte(nil), b...)
		d := s.writeDelay
		s.mu.Unlock()
		time.Sleep(d)
		return os.WriteFile(name, b, 0o644)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if dir, attr, ok := s.entryOf(name); ok && attr == "inblob" {
		return s.writeInblobLocked(dir, b)
	}
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeInblobLocked does what the kernel does on a write to inblob: keep
// the data and count the write in generation.
func (s *standIn) writeInblobLocked(dir string, b []byte) error {
	e, ok := s.entries[dir]
	if !ok {
		return &fs.PathError{Op: "write", Path: dir, Err: syscall.ENOENT}
	}
	if len(b) > 64 {
		return &fs.PathError{Op: "write", Path: dir, Err: syscall.EINVAL}
	}
	e.inblob = append([]byte(nil), b...)
	e.generation++
	if err := os.WriteFile(filepath.Join(dir, "inblob"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "generation"), []byte(strconv.FormatUint(e.generation, 10)+"\n"), 0o644)
}

func (s *standIn) ReadFile(name string) ([]byte, error) {
	if name == s.p(attest.GramineQuote) {
		s.mu.Lock()
		var rd [64]byte
		if !s.staleQuote {
			copy(rd[:], s.userReportData)
		}
		s.mu.Unlock()
		// Gramine makes the quote when the file is opened, from the
		// report data written last.
		q, err := s.sgx.Quote(context.Background(), rd)
		if err != nil {
			return nil, err
		}
		return q, os.WriteFile(name, q, 0o644)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if dir, attr, ok := s.entryOf(name); ok {
		switch attr {
		case "provider":
			if s.providerErr != nil {
				return nil, &fs.PathError{Op: "read", Path: name, Err: s.providerErr}
			}
		case "outblob":
			e, ok := s.entries[dir]
			if !ok {
				return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.ENOENT}
			}
			if s.interfere > 0 {
				// Another process writes its own report data to the
				// same entry between our write and our read.
				s.interfere--
				other := make([]byte, 64)
				copy(other, "another writer")
				if err := s.writeInblobLocked(dir, other); err != nil {
					return nil, err
				}
			}
			if len(e.inblob) != 64 {
				// tdx_guest wants exactly 64 bytes of report data.
				return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EINVAL}
			}
			q, err := s.tdx.Quote(context.Background(), [64]byte(e.inblob))
			if err != nil {
				return nil, err
			}
			return q, os.WriteFile(name, q, 0o644)
		}
	}
	return os.ReadFile(name)
}

// leftEntries lists the entries still in the report directory.
func (s *standIn) leftEntries() []string {
	des, err := os.ReadDir(s.p(attest.TSMReportDir))
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}

// fakeSGX stands in for Occlum's /dev/sgx: it decodes each ioctl's
// argument from raw memory with the published C layout (offsets written
// out here, independent of the attester's Go struct), as Occlum's LibOS
// does, and answers with simulator quotes.
type fakeSGX struct {
	t   *testing.T
	sim *sim.Attester

	mu        sync.Mutex
	quoteSize uint32 // what SGXIOC_GET_DCAP_QUOTE_SIZE answers
	pad       int    // zero bytes after the quote, as a fixed-size buffer has
	busy      int    // EBUSY for this many calls
	sizeErr   error  // SGXIOC_GET_DCAP_QUOTE_SIZE fails so
	genErr    error  // SGXIOC_GEN_DCAP_QUOTE fails so
	wrongRD   bool   // quote a different report data
	setLen    uint32 // if non-zero, write this to *quote_len
	reqs      []uint32
	closed    int
}

// The published request numbers (occlum/occlum,
// tools/toolchains/dcap_lib/src/occlum_dcap.rs).
const (
	occlumGetDCAPQuoteSize = 0x80047307
	occlumGenDCAPQuote     = 0xc0187308
)

func newFakeSGX(t *testing.T, a *sim.Attester) *fakeSGX {
	q, err := a.Quote(context.Background(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	const pad = 32
	return &fakeSGX{t: t, sim: a, quoteSize: uint32(len(q) + pad), pad: pad}
}

func (f *fakeSGX) Ioctl(req uint32, arg unsafe.Pointer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if arg == nil {
		return syscall.EFAULT
	}
	if f.busy > 0 {
		f.busy--
		return syscall.EBUSY
	}
	switch req {
	case occlumGetDCAPQuoteSize:
		if f.sizeErr != nil {
			return f.sizeErr
		}
		*(*uint32)(arg) = f.quoteSize
		return nil
	case occlumGenDCAPQuote:
		if f.genErr != nil {
			return f.genErr
		}
		// struct { sgx_report_data_t *report_data; uint32_t *quote_len;
		// uint8_t *quote_buf; }: pointers at offsets 0, 8 and 16.
		rdp := *(*unsafe.Pointer)(arg)
		lenp := *(*unsafe.Pointer)(unsafe.Add(arg, 8))
		bufp := *(*unsafe.Pointer)(unsafe.Add(arg, 16))
		if rdp == nil || lenp == nil || bufp == nil {
			return syscall.EFAULT
		}
		rd := *(*[64]byte)(rdp)
		n := *(*uint32)(lenp)
		if n < f.quoteSize {
			return syscall.EINVAL // Occlum: "provided quote is too small"
		}
		if f.wrongRD {
			rd[0] ^= 0xff
		}
		q, err := f.sim.Quote(context.Background(), rd)
		if err != nil {
			return syscall.EIO
		}
		if len(q)+f.pad != int(f.quoteSize) {
			f.t.Errorf("fake /dev/sgx: quote of %d bytes, size said %d", len(q)+f.pad, f.quoteSize)
			return syscall.EIO
		}
		buf := unsafe.Slice((*byte)(bufp), f.quoteSize)
		copy(buf, q)
		clear(buf[len(q):])
		if f.setLen != 0 {
			*(*uint32)(lenp) = f.setLen
		}
		return nil
	}
	return syscall.ENOTTY
}

func (f *fakeSGX) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

// reportData makes distinct report data for a test.
func reportData(s string) [64]byte {
	var rd [64]byte
	copy(rd[:], s)
	rd[63] = byte(len(s))
	return rd
}

// checkQuote parses a quote and checks its TEE and report data.
func checkQuote(t *testing.T, q []byte, tee string, want [64]byte) *dcap.Quote {
	t.Helper()
	pq, err := dcap.ParseQuote(q)
	if err != nil {
		t.Fatalf("quote does not parse: %v", err)
	}
	if pq.TEE() != tee {
		t.Errorf("quote TEE %s, want %s", pq.TEE(), tee)
	}
	if pq.ReportData() != want {
		t.Errorf("quote report data %x, want %x", pq.ReportData(), want)
	}
	if pq.Trailing != 0 {
		t.Errorf("quote has %d trailing bytes, want none", pq.Trailing)
	}
	return pq
}

// wantErr checks that err is non-nil and mentions every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q\ndoes not mention %q", err, p)
		}
	}
}
