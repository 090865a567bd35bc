package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/asps-project/asps/claims"
)

// Measurements used across the tests.
const (
	hexE1 = "88e2b4e857484d7ae982ab5cfd96f2600ac665b3abf9da2c4ea2f805d5b071cf" // doc example mr_enclave
	hexS1 = "19b4d48ff0331cb5e14e6870c8205c12cf55b9308b518e3002574b57fc109b27" // doc example mr_signer
	hexE2 = "2222222222222222222222222222222222222222222222222222222222222222"
	hexE3 = "3333333333333333333333333333333333333333333333333333333333333333"
	hexEx = "33d8000000000000000000000000000000000000000000000000000000000001" // an enclave no app names
	hexT1 = "bac70e641d1b61e5f673f1c72ea1ab1a4e3f7393764d6711875d1ed348ca2c49d727404eb37b25cd993c56a1eda6856b"
	hexR1 = "e4339a8cf732eb80f73fce42e60da65d6b1d4f00a4bf8183b82ae7cb3095a5926e6ac0a0d9d4540dce4132429a684789"
	hexZ  = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	hexO1 = "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e" // a TD owner
	hexK2 = "2b6c7e81c3a0d5f4e9b1a2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607" // a kernel command line and initrd (RTMR2)
	hexZ2 = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

	exampleToken = "hvs.CAESIexample" // the store_token of the doc example
)

func mustHex(t testing.TB, s string) claims.Hex {
	t.Helper()
	h, err := claims.ParseHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// sgxClaims returns up-to-date, non-debug claims of an SGX enclave.
func sgxClaims(t testing.TB, mrEnclave, mrSigner string, prodID, svn uint16) *claims.Claims {
	return &claims.Claims{
		TEE: claims.SGX, Runtime: "gramine", QuoteVersion: 3, TCBStatus: claims.StatusUpToDate,
		SGX: &claims.SGXIdentity{
			MrEnclave: mustHex(t, mrEnclave), MrSigner: mustHex(t, mrSigner),
			IsvProdID: prodID, IsvSvn: svn, ConfigID: make(claims.Hex, 64),
		},
	}
}

// tdxClaims returns up-to-date, non-debug claims of a TD.
func tdxClaims(t testing.TB, mrTd, rtmr1 string) *claims.Claims {
	z := mustHex(t, hexZ)
	return &claims.Claims{
		TEE: claims.TDX, Runtime: "tdx-guest", QuoteVersion: 4, TCBStatus: claims.StatusUpToDate,
		TDX: &claims.TDXIdentity{
			MrTd: mustHex(t, mrTd), Rtmr0: z, Rtmr1: mustHex(t, rtmr1), Rtmr2: mustHex(t, hexK2), Rtmr3: z,
			MrConfigID: z, MrOwner: z, MrOwnerConfig: z,
			TdAttributes: claims.Hex{0, 0, 0, 0x10, 0, 0, 0, 0}, // SEPT_VE_DISABLE, as production Linux TDs
		},
	}
}

// docExample returns the YAML example of the package documentation, so the
// documentation cannot drift from what Parse accepts.
func docExample(t testing.TB) []byte {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "// # File format\n")
	if !ok {
		t.Fatal("doc.go: no File format section")
	}
	var out bytes.Buffer
	started := false
	for _, line := range strings.Split(rest, "\n") {
		code, isCode := strings.CutPrefix(line, "//\t")
		if !isCode {
			if started {
				break
			}
			continue
		}
		started = true
		out.WriteString(code + "\n")
	}
	return out.Bytes()
}

// compatDir returns the directory of the other systems' config files, or
// skips the test when the shared test data is not there.
func compatDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "testdata", "compat")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("compat test data not found at %s (it lives in ../shared/testdata next to the repository): %v", dir, err)
	}
	return dir
}

func readCompat(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(compatDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustParse(t testing.TB, doc, format string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc), format)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// wantReasons fails unless err wraps every one of reasons.
func wantReasons(t testing.TB, err error, reasons ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v", reasons)
	}
	for _, r := range reasons {
		if !errors.Is(err, r) {
			t.Errorf("error does not wrap %q:\n%v", r, err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger in another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
