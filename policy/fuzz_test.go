package policy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/asps-project/asps/claims"
)

var loadReasons = []error{
	ErrSyntax, ErrUnknownField, ErrBadValue, ErrMissingField, ErrNoSelector, ErrBadMeasurement,
	ErrDuplicateID, ErrBadTCBStatus, ErrNoSecrets, ErrEmptySecretRef, ErrUnsupportedKMS, ErrNotPolicy, ErrUnknownFormat,
}

func typed(err error) bool {
	for _, r := range loadReasons {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// FuzzParse feeds the policy parser and the importers arbitrary bytes. None
// may panic; every error must carry a reason; a policy that parses must
// survive an Encode/Parse round trip unchanged, describe itself and decide.
func FuzzParse(f *testing.F) {
	f.Add(docExample(f), uint8(0))
	f.Add([]byte(matrixPolicy), uint8(1))
	var js bytes.Buffer
	if p, err := Parse(docExample(f), "yaml"); err == nil {
		_ = p.Encode(&js, "json")
		f.Add(js.Bytes(), uint8(2))
	}
	dir := filepath.Join("..", "..", "shared", "testdata", "compat")
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if data, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && !e.IsDir() {
				f.Add(data, uint8(0))
			}
		}
	}
	sgx := sgxClaims(f, hexE1, hexS1, 1, 2)
	sgx.AdvisoryIDs = []string{"INTEL-SA-00615"}
	tdx := tdxClaims(f, hexT1, hexR1)
	tdx.Debug, tdx.Simulated = true, true
	formats := []string{"", "json", "yaml"}

	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		p, err := Parse(data, formats[int(mode)%len(formats)])
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error: %v", err)
			}
		} else {
			for _, format := range []string{"json", "yaml"} {
				var a, b bytes.Buffer
				if err := p.Encode(&a, format); err != nil {
					t.Fatalf("Encode %s: %v", format, err)
				}
				again, err := Parse(a.Bytes(), format)
				if err != nil {
					t.Fatalf("round trip %s: %v\n%s", format, err, a.String())
				}
				_ = again.Encode(&b, format)
				if a.String() != b.String() {
					t.Fatalf("round trip %s changed the policy:\n%s\n%s", format, a.String(), b.String())
				}
			}
			for _, a := range p.Apps {
				if a.TDX != nil {
					checkTDXPinsCode(t, a)
				}
			}
			if err := p.Describe(io.Discard); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*claims.Claims{sgx, tdx, nil, {TEE: claims.SGX}} {
				if a, err := p.Match(c); (a == nil) == (err == nil) {
					t.Fatalf("Match: app %v, err %v", a, err)
				}
			}
			for _, a := range p.Apps {
				if refs, err := a.Authorize(a.SecretNames()); err != nil || len(refs) != len(a.SecretNames()) {
					t.Fatalf("Authorize own secrets: %v", err)
				}
			}
		}
		for _, imp := range []func() (*Imported, error){
			func() (*Imported, error) { return Import(data) },
			func() (*Imported, error) { return ImportIntelASPS(data, data) },
			func() (*Imported, error) { return ImportOcclum(data, data) },
		} {
			got, err := imp()
			if err != nil {
				if !typed(err) {
					t.Fatalf("untyped import error: %v", err)
				}
				continue
			}
			if got.Policy == nil || len(got.Policy.Apps) == 0 {
				t.Fatal("import succeeded without apps")
			}
			for _, a := range got.Policy.Apps {
				sgxOK := a.SGX != nil && (a.SGX.MrEnclave != nil || a.SGX.MrSigner != nil)
				tdxOK := a.TDX != nil && a.TDX.MrTd != nil
				if a.TDX != nil {
					checkTDXPinsCode(t, a)
				}
				if !sgxOK && !tdxOK {
					t.Fatalf("imported app %q without measurement", a.ID)
				}
			}
		}
	})
}

// checkTDXPinsCode: every TDX app that loads pins code (mr_td and one of
// rtmr0-2) and no TDX selector is all zeros.
func checkTDXPinsCode(t *testing.T, a *App) {
	t.Helper()
	s := a.TDX
	if s.MrTd == nil || s.Rtmr[1] == nil || s.Rtmr[2] == nil {
		t.Fatalf("tdx app %q loaded without mr_td, rtmr1 and rtmr2", a.ID)
	}
	for _, h := range []claims.Hex{s.MrTd, s.Rtmr[0], s.Rtmr[1], s.Rtmr[2], s.Rtmr[3], s.MrConfigID, s.MrOwner, s.MrOwnerConfig, s.MrServiceTd} {
		if h != nil && !bytes.ContainsFunc(h, func(r rune) bool { return r != 0 }) {
			t.Fatalf("tdx app %q loaded with an all-zero selector", a.ID)
		}
	}
}
