package dcap

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// The encoding/asn1 reader the SGX extension was parsed with before: the
// reference FuzzSGXExtensionMatchesASN1 compares the DER reader with.

type oidValue struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

func parseSGXExtensionASN1(der []byte) (*PCKExtensions, error) {
	bad := func(field, msg string) error {
		return &FormatError{Field: "pck_certificate.sgx_extension." + field, Msg: msg}
	}
	var items []oidValue
	rest, err := asn1.Unmarshal(der, &items)
	if err != nil {
		return nil, bad("", err.Error())
	}
	if len(rest) != 0 {
		return nil, bad("", "trailing bytes")
	}
	e := &PCKExtensions{}
	var seen = map[string]bool{}
	octets := func(v asn1.RawValue, field string, n int) ([]byte, error) {
		var b []byte
		if _, err := asn1.Unmarshal(v.FullBytes, &b); err != nil {
			return nil, bad(field, err.Error())
		}
		if n > 0 && len(b) != n {
			return nil, bad(field, fmt.Sprintf("%d bytes, want %d", len(b), n))
		}
		return b, nil
	}
	for _, it := range items {
		key := it.ID.String()
		if seen[key] {
			return nil, bad(key, "appears twice")
		}
		seen[key] = true
		switch {
		case it.ID.Equal(oidPPID):
			if e.PPID, err = octets(it.Value, "ppid", 16); err != nil {
				return nil, err
			}
		case it.ID.Equal(oidTCB):
			if err := parseTCBExtASN1(it.Value.FullBytes, e); err != nil {
				return nil, err
			}
		case it.ID.Equal(oidPCEID):
			b, err := octets(it.Value, "pceid", 2)
			if err != nil {
				return nil, err
			}
			copy(e.PCEID[:], b)
		case it.ID.Equal(oidFMSPC):
			b, err := octets(it.Value, "fmspc", 6)
			if err != nil {
				return nil, err
			}
			copy(e.FMSPC[:], b)
		case it.ID.Equal(oidSGXType):
			var t asn1.Enumerated
			if _, err := asn1.Unmarshal(it.Value.FullBytes, &t); err != nil {
				return nil, bad("sgx_type", err.Error())
			}
			e.SGXType = int(t)
		case it.ID.Equal(oidPlatformID):
			if e.PlatformInstanceID, err = octets(it.Value, "platform_instance_id", 0); err != nil {
				return nil, err
			}
		case it.ID.Equal(oidConfig):
			// Configuration (dynamic platform, cached keys, SMT): not
			// used by verification.
		}
	}
	for _, need := range []struct {
		oid  asn1.ObjectIdentifier
		name string
	}{{oidTCB, "tcb"}, {oidPCEID, "pceid"}, {oidFMSPC, "fmspc"}} {
		if !seen[need.oid.String()] {
			return nil, bad(need.name, "missing")
		}
	}
	return e, nil
}

func parseTCBExtASN1(der []byte, e *PCKExtensions) error {
	bad := func(msg string) error {
		return &FormatError{Field: "pck_certificate.sgx_extension.tcb", Msg: msg}
	}
	var items []oidValue
	if _, err := asn1.Unmarshal(der, &items); err != nil {
		return bad(err.Error())
	}
	var seen [19]bool
	for _, it := range items {
		if len(it.ID) != len(oidTCB)+1 || !asn1.ObjectIdentifier(it.ID[:len(oidTCB)]).Equal(oidTCB) {
			return bad("unexpected component " + it.ID.String())
		}
		n := it.ID[len(oidTCB)]
		if n < 1 || n > 18 {
			return bad(fmt.Sprintf("unexpected component %d", n))
		}
		if seen[n] {
			return bad(fmt.Sprintf("component %d appears twice", n))
		}
		seen[n] = true
		switch {
		case n <= 16:
			var v int
			if _, err := asn1.Unmarshal(it.Value.FullBytes, &v); err != nil || v < 0 || v > 255 {
				return bad(fmt.Sprintf("component %d SVN is not an integer 0..255", n))
			}
			e.CompSVN[n-1] = uint8(v)
		case n == 17:
			var v int
			if _, err := asn1.Unmarshal(it.Value.FullBytes, &v); err != nil || v < 0 || v > 65535 {
				return bad("PCESVN is not an integer 0..65535")
			}
			e.PCESVN = uint16(v)
		case n == 18:
			var b []byte
			if _, err := asn1.Unmarshal(it.Value.FullBytes, &b); err != nil || len(b) != 16 {
				return bad("CPUSVN is not 16 bytes")
			}
			e.CPUSVN = b
		}
	}
	for n := 1; n <= 17; n++ {
		if !seen[n] {
			return bad(fmt.Sprintf("component %d missing", n))
		}
	}
	return nil
}

func sgxExtensionSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, c := range loadCorpus(t) {
		q, err := ParseQuote(c.quote)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := ParseChainPEM(q.CertData.PCKCertChain, "x")
		if err != nil {
			t.Fatal(err)
		}
		for _, ext := range certs[0].Extensions {
			if ext.Id.Equal(OIDSGXExtensions) {
				out = append(out, ext.Value)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no SGX extension in the corpus")
	}
	return out
}

// TestSGXExtensionMatchesASN1: Intel's PCK certificates (Processor and
// Platform CA) read the same with the DER reader as with encoding/asn1.
func TestSGXExtensionMatchesASN1(t *testing.T) {
	for _, b := range sgxExtensionSeeds(t) {
		checkSGXExtensionParsers(t, b)
		got, err := parseSGXExtension(b)
		if err != nil || got.FMSPC == [6]byte{} {
			t.Fatalf("a real extension: %v", err)
		}
	}
}

func checkSGXExtensionParsers(t *testing.T, b []byte) {
	t.Helper()
	got, err := parseSGXExtension(b)
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("not malformed: %v", err)
		}
		return
	}
	want, err := parseSGXExtensionASN1(b)
	if err != nil {
		t.Fatalf("the DER reader accepts what encoding/asn1 refuses (%v)", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DER reader %+v, encoding/asn1 %+v", got, want)
	}
}

// FuzzSGXExtensionMatchesASN1: whatever the DER reader accepts,
// encoding/asn1 accepts with the same values.
func FuzzSGXExtensionMatchesASN1(f *testing.F) {
	for _, b := range sgxExtensionSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkSGXExtensionParsers(t, b) })
}
