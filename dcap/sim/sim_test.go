package sim_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/internal/testdata"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newCase(t *testing.T, o sim.Options) *sim.Case {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = now
	}
	c, err := sim.NewCase(o)
	if err != nil {
		t.Fatalf("NewCase: %v", err)
	}
	return c
}

func fill(b []byte, seed byte) {
	for i := range b {
		b[i] = seed + byte(i)
	}
}

func sgxIdentity(debug bool) sim.Identity {
	var id sim.Identity
	fill(id.MrEnclave[:], 0x10)
	fill(id.MrSigner[:], 0x40)
	id.IsvProdID, id.IsvSVN, id.ConfigSVN = 7, 3, 2
	fill(id.ConfigID[:], 0x80)
	fill(id.IsvExtProdID[:], 0xa0)
	fill(id.IsvFamilyID[:], 0xb0)
	id.MiscSelect = 0x01020304
	id.Debug = debug
	return id
}

func tdxIdentity(debug bool) sim.Identity {
	var id sim.Identity
	fill(id.MrTD[:], 0x11)
	for i := range 4 {
		fill(id.Rtmr[i][:], byte(0x20*(i+2)))
	}
	fill(id.MrConfigID[:], 0x31)
	fill(id.MrOwner[:], 0x51)
	fill(id.MrOwnerConfig[:], 0x71)
	fill(id.MrSeam[:], 0x91)
	id.TdAttributes = [8]byte{3: 0x50} // SEPT_VE_DISABLE, PKS
	id.Xfam = [8]byte{0xe7, 0x02}
	fill(id.MrServiceTD[:], 0xc1)
	id.Debug = debug
	return id
}

func reportData(tag string) [64]byte {
	var rd [64]byte
	h := sha256.Sum256([]byte(tag))
	copy(rd[:], h[:])
	copy(rd[32:], "report data")
	return rd
}

// TestQuoteRoundTrip parses every kind of simulated quote with
// dcap.ParseQuote and checks every field against what was asked for, and
// the signatures and bindings against the keys in the certificates.
func TestQuoteRoundTrip(t *testing.T) {
	type tc struct {
		name     string
		tee      claims.TEE
		version  int
		bodyType int
		wantBody uint16
		debug    bool
		pckCA    sim.PCKCA
	}
	cases := []tc{
		{"sgx-v3", claims.SGX, 3, 0, dcap.BodyTypeSGX, false, ""},
		{"sgx-v3-debug", claims.SGX, 3, 0, dcap.BodyTypeSGX, true, ""},
		{"sgx-v3-platform-ca", claims.SGX, 3, 0, dcap.BodyTypeSGX, false, sim.CAPlatform},
		{"sgx-v4", claims.SGX, 4, 0, dcap.BodyTypeSGX, false, ""},
		{"sgx-v5", claims.SGX, 5, 1, dcap.BodyTypeSGX, true, ""},
		{"tdx-v4", claims.TDX, 4, 0, dcap.BodyTypeTD10, false, ""},
		{"tdx-v4-debug", claims.TDX, 4, 0, dcap.BodyTypeTD10, true, ""},
		{"tdx-v4-processor-ca", claims.TDX, 4, 0, dcap.BodyTypeTD10, false, sim.CAProcessor},
		{"tdx-v5-td10", claims.TDX, 5, 2, dcap.BodyTypeTD10, false, ""},
		{"tdx-v5-td15", claims.TDX, 5, 3, dcap.BodyTypeTD15, false, ""},
		{"tdx-v5-default", claims.TDX, 5, 0, dcap.BodyTypeTD15, true, ""},
	}
	for _, k := range cases {
		t.Run(k.name, func(t *testing.T) {
			id := sgxIdentity(k.debug)
			if k.tee == claims.TDX {
				id = tdxIdentity(k.debug)
			}
			rd := reportData(k.name)
			c := newCase(t, sim.Options{TEE: k.tee, QuoteVersion: k.version, BodyType: k.bodyType, Identity: id, ReportData: rd, PCKCA: k.pckCA})
			q, err := dcap.ParseQuote(c.Quote)
			if err != nil {
				t.Fatalf("ParseQuote: %v", err)
			}
			h := q.Header
			wantTEE := dcap.TEETypeSGX
			if k.tee == claims.TDX {
				wantTEE = dcap.TEETypeTDX
			}
			if int(h.Version) != k.version || h.AttKeyType != dcap.AttKeyECDSAP256 || h.TEEType != wantTEE || h.QEVendorID != dcap.IntelQEVendorID {
				t.Errorf("header %+v", h)
			}
			if q.BodyType != k.wantBody {
				t.Errorf("body type %d, want %d", q.BodyType, k.wantBody)
			}
			if q.Trailing != 0 {
				t.Errorf("%d trailing bytes", q.Trailing)
			}
			if q.ReportData() != rd {
				t.Errorf("report data %x, want %x", q.ReportData(), rd)
			}
			if q.Debug() != k.debug {
				t.Errorf("debug %v, want %v", q.Debug(), k.debug)
			}
			if q.TEE() != string(k.tee) {
				t.Errorf("TEE %s", q.TEE())
			}

			// The PCK chain, and its SGX extension.
			chain, err := dcap.ParseChainPEM(q.CertData.PCKCertChain, "chain")
			if err != nil {
				t.Fatalf("PCK chain: %v", err)
			}
			if len(chain) != 3 || !chain[2].Equal(c.Root) {
				t.Fatalf("chain of %d, root %v", len(chain), chain[len(chain)-1].Subject)
			}
			for i := range 2 {
				if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
					t.Errorf("chain[%d] not signed by chain[%d]: %v", i, i+1, err)
				}
			}
			ext, err := dcap.ParsePCKExtensions(chain[0])
			if err != nil {
				t.Fatalf("ParsePCKExtensions: %v", err)
			}
			if ext.FMSPCHex() != c.Options.FMSPC || ext.PCEIDHex() != "0000" || len(ext.PPID) != 16 {
				t.Errorf("extension FMSPC %s PCEID %s PPID %x", ext.FMSPCHex(), ext.PCEIDHex(), ext.PPID)
			}
			if !bytes.Equal(ext.CPUSVN, ext.CompSVN[:]) {
				t.Errorf("CPUSVN %x, components %v", ext.CPUSVN, ext.CompSVN)
			}
			if h.PCESVN != ext.PCESVN {
				t.Errorf("header PCESVN %d, PCK certificate %d", h.PCESVN, ext.PCESVN)
			}
			platformCA := chain[1].Subject.CommonName == sim.PlatformCACN
			if wantPlatform := c.Options.PCKCA == sim.CAPlatform; platformCA != wantPlatform {
				t.Errorf("issuer %q for PCK CA %q", chain[1].Subject.CommonName, c.Options.PCKCA)
			}
			if platformCA != (len(ext.PlatformInstanceID) == 16) || platformCA != (ext.SGXType == 1) {
				t.Errorf("platform CA %v: instance ID %x, SGX type %d", platformCA, ext.PlatformInstanceID, ext.SGXType)
			}

			// Signatures and the attestation key binding.
			cd := &q.CertData
			pck := chain[0].PublicKey.(*ecdsa.PublicKey)
			d := sha256.Sum256(cd.QEReport.Raw())
			if !ecdsa.Verify(pck, d[:], new(big.Int).SetBytes(cd.QEReportSignature[:32]), new(big.Int).SetBytes(cd.QEReportSignature[32:])) {
				t.Error("QE report signature does not verify with the PCK key")
			}
			bind := sha256.Sum256(append(append([]byte{}, q.AttestationKey[:]...), cd.QEAuthData...))
			if !bytes.Equal(cd.QEReport.ReportData[:32], bind[:]) || [32]byte(cd.QEReport.ReportData[32:]) != [32]byte{} {
				t.Error("QE report data does not bind the attestation key")
			}
			ak, err := q.AttestationPublicKey()
			if err != nil {
				t.Fatal(err)
			}
			d = sha256.Sum256(q.SignedData)
			if !ecdsa.Verify(ak, d[:], new(big.Int).SetBytes(q.Signature[:32]), new(big.Int).SetBytes(q.Signature[32:])) {
				t.Error("quote signature does not verify with the attestation key")
			}
			wantSigned := dcap.HeaderLen + dcap.SGXReportLen
			if q.TD != nil {
				wantSigned = dcap.HeaderLen + dcap.TD10ReportLen
				if q.TD.TD15 {
					wantSigned = dcap.HeaderLen + dcap.TD15ReportLen
				}
			}
			if k.version == 5 {
				wantSigned += 6
			}
			if len(q.SignedData) != wantSigned {
				t.Errorf("signed region %d bytes, want %d", len(q.SignedData), wantSigned)
			}

			// The QE: its identity as the QE identity document says.
			qe := &cd.QEReport
			qi := c.Collateral.QEIdentity
			if !bytes.Equal(qe.MrSigner[:], qi.MrSigner) || qe.IsvProdID != qi.IsvProdID || qe.IsvSVN != h.QESVN {
				t.Errorf("QE report mrsigner %x prodid %d svn %d (header %d)", qe.MrSigner, qe.IsvProdID, qe.IsvSVN, h.QESVN)
			}
			if qe.Debug() {
				t.Error("QE is a debug enclave")
			}

			// The identity.
			if k.tee == claims.SGX {
				r := q.SGX
				if r.MrEnclave != id.MrEnclave || r.MrSigner != id.MrSigner || r.IsvProdID != id.IsvProdID || r.IsvSVN != id.IsvSVN ||
					r.ConfigID != id.ConfigID || r.ConfigSVN != id.ConfigSVN || r.IsvExtProdID != id.IsvExtProdID ||
					r.IsvFamilyID != id.IsvFamilyID || r.MiscSelect != id.MiscSelect {
					t.Errorf("SGX report %+v", r)
				}
				if !bytes.Equal(r.CPUSVN[:], ext.CPUSVN) {
					t.Errorf("enclave CPUSVN %x, platform %x", r.CPUSVN, ext.CPUSVN)
				}
				wantAttr := byte(dcap.AttrInit | dcap.AttrMode64)
				if k.debug {
					wantAttr |= dcap.AttrDebug
				}
				if r.Attributes[0] != wantAttr {
					t.Errorf("attributes %x", r.Attributes)
				}
				return
			}
			r := q.TD
			if r.MrTd != id.MrTD || r.Rtmr != id.Rtmr || r.MrConfigID != id.MrConfigID || r.MrOwner != id.MrOwner ||
				r.MrOwnerConfig != id.MrOwnerConfig || r.MrSeam != id.MrSeam || r.MrSignerSeam != id.MrSignerSeam ||
				r.SeamAttributes != id.SeamAttributes || r.Xfam != id.Xfam {
				t.Errorf("TD report %+v", r)
			}
			wantAttrs := id.TdAttributes
			if k.debug {
				wantAttrs[0] |= 1
			}
			if r.TdAttributes != wantAttrs {
				t.Errorf("TD attributes %x, want %x", r.TdAttributes, wantAttrs)
			}
			if r.TeeTcbSvn[1] != 1 || r.TeeTcbSvn[0] == 0 {
				t.Errorf("TEE_TCB_SVN %x: want module major version 1 and an SVN", r.TeeTcbSvn)
			}
			if r.TD15 != (k.wantBody == dcap.BodyTypeTD15) {
				t.Errorf("TD15 %v", r.TD15)
			}
			if r.TD15 && (r.MrServiceTd != id.MrServiceTD || r.TeeTcbSvn2 != r.TeeTcbSvn) {
				t.Errorf("TD 1.5 fields: servicetd %x svn2 %x", r.MrServiceTd, r.TeeTcbSvn2)
			}
		})
	}
}

// TestIdentityDefaults checks what zero identity fields stand for.
func TestIdentityDefaults(t *testing.T) {
	c := newCase(t, sim.Options{TEE: claims.TDX})
	q, err := dcap.ParseQuote(c.Quote)
	if err != nil {
		t.Fatal(err)
	}
	if q.TD.TdAttributes != [8]byte{3: 0x10} || q.TD.Xfam != [8]byte{0xe7, 0x1a, 0x06} {
		t.Errorf("TD attributes %x xfam %x", q.TD.TdAttributes, q.TD.Xfam)
	}
	var id sim.Identity
	id.TeeTcbSvn = [16]byte{9, 9, 9}
	id.Attributes = [16]byte{0x07}
	c = newCase(t, sim.Options{TEE: claims.TDX, Identity: id})
	if q, err = dcap.ParseQuote(c.Quote); err != nil {
		t.Fatal(err)
	}
	if q.TD.TeeTcbSvn != id.TeeTcbSvn {
		t.Errorf("explicit TEE_TCB_SVN %x, got %x", id.TeeTcbSvn, q.TD.TeeTcbSvn)
	}
	c = newCase(t, sim.Options{Identity: id})
	if q, err = dcap.ParseQuote(c.Quote); err != nil {
		t.Fatal(err)
	}
	if q.SGX.Attributes != id.Attributes || !q.SGX.Debug() {
		t.Errorf("explicit attributes %x, got %x", id.Attributes, q.SGX.Attributes)
	}
}

// realExtension returns the SGX extension value of the PCK certificate in
// a corpus quote.
func realPCK(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	q, err := dcap.ParseQuote(testdata.DCAPQuote(t, name))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := dcap.ParseChainPEM(q.CertData.PCKCertChain, "chain")
	if err != nil {
		t.Fatal(err)
	}
	return chain[0]
}

// configuration reads the Configuration (.7) of an SGX extension, which
// dcap.ParsePCKExtensions skips.
func configuration(t *testing.T, der []byte) (found bool, vals [3]bool) {
	t.Helper()
	type item struct {
		ID    asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	var items []item
	if _, err := asn1.Unmarshal(der, &items); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if !it.ID.Equal(append(append(asn1.ObjectIdentifier{}, dcap.OIDSGXExtensions...), 7)) {
			continue
		}
		var conf []struct {
			ID    asn1.ObjectIdentifier
			Value bool
		}
		if _, err := asn1.Unmarshal(it.Value.FullBytes, &conf); err != nil {
			t.Fatal(err)
		}
		for i, c := range conf {
			vals[i] = c.Value
		}
		return true, vals
	}
	return false, vals
}

func extensionValue(c *x509.Certificate) []byte {
	for _, e := range c.Extensions {
		if e.Id.Equal(dcap.OIDSGXExtensions) {
			return e.Value
		}
	}
	return nil
}

// TestPCKExtensionMatchesIntel re-encodes the values of real Intel PCK
// certificates (Processor CA and Platform CA) and expects Intel's bytes.
func TestPCKExtensionMatchesIntel(t *testing.T) {
	for _, name := range []string{"sgx-v3-config-sw-hardening", "tdx-v4-up-to-date", "tdx-v5-no-tcb-level", "tdx-v4-no-tcb-level"} {
		t.Run(name, func(t *testing.T) {
			cert := realPCK(t, name)
			want := extensionValue(cert)
			e, err := dcap.ParsePCKExtensions(cert)
			if err != nil {
				t.Fatal(err)
			}
			v := sim.PCKValues{PPID: [16]byte(e.PPID), CompSVN: e.CompSVN, PCESVN: e.PCESVN, CPUSVN: [16]byte(e.CPUSVN),
				PCEID: e.PCEID, FMSPC: e.FMSPC, SGXType: e.SGXType}
			if len(e.PlatformInstanceID) > 0 {
				v.Platform = true
				v.PlatformInstanceID = [16]byte(e.PlatformInstanceID)
				found, conf := configuration(t, want)
				if !found {
					t.Fatal("platform certificate without configuration")
				}
				v.DynamicPlatform, v.CachedKeys, v.SMTEnabled = conf[0], conf[1], conf[2]
			}
			got, err := sim.EncodePCKExtension(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("re-encoded extension differs from Intel's\n got %x\nwant %x", got, want)
			}
		})
	}
}

// TestPCKExtensionRoundTrip encodes arbitrary values into a certificate and
// reads them back with dcap.ParsePCKExtensions.
func TestPCKExtensionRoundTrip(t *testing.T) {
	for _, platform := range []bool{false, true} {
		v := sim.PCKValues{CompSVN: [16]uint8{255, 0, 1, 127, 128, 3}, PCESVN: 65535, PCEID: [2]byte{0x12, 0x34},
			FMSPC: [6]byte{0xab, 0xcd, 0xef, 1, 2, 3}, SGXType: 2, Platform: platform,
			DynamicPlatform: true, SMTEnabled: true}
		fill(v.PPID[:], 1)
		fill(v.CPUSVN[:], 2)
		fill(v.PlatformInstanceID[:], 3)
		der, err := sim.EncodePCKExtension(v)
		if err != nil {
			t.Fatal(err)
		}
		e, err := dcap.ParsePCKExtensions(&x509.Certificate{Extensions: []pkix.Extension{{Id: dcap.OIDSGXExtensions, Value: der}}})
		if err != nil {
			t.Fatalf("platform=%v: %v", platform, err)
		}
		if !bytes.Equal(e.PPID, v.PPID[:]) || e.CompSVN != v.CompSVN || e.PCESVN != v.PCESVN || !bytes.Equal(e.CPUSVN, v.CPUSVN[:]) ||
			e.PCEID != v.PCEID || e.FMSPC != v.FMSPC || e.SGXType != v.SGXType {
			t.Errorf("platform=%v: read back %+v", platform, e)
		}
		if platform != bytes.Equal(e.PlatformInstanceID, v.PlatformInstanceID[:]) {
			t.Errorf("platform=%v: instance ID %x", platform, e.PlatformInstanceID)
		}
		if found, conf := configuration(t, der); found != platform || (platform && conf != [3]bool{true, false, true}) {
			t.Errorf("platform=%v: configuration %v %v", platform, found, conf)
		}
	}
}

// TestTCBLevelsLand checks, independently of any verifier, that the PCK
// certificate of each status meets exactly that status's level first
// (Intel's rule: the first level, highest TCB first, whose every
// component the platform meets).
func TestTCBLevelsLand(t *testing.T) {
	for _, tee := range []claims.TEE{claims.SGX, claims.TDX} {
		for _, status := range append(sim.PlatformStatuses(), sim.NoMatchingLevel) {
			c := newCase(t, sim.Options{TEE: tee, TCBStatus: status})
			ext, err := dcap.ParsePCKExtensions(c.PCKChain[0])
			if err != nil {
				t.Fatal(err)
			}
			q, err := dcap.ParseQuote(c.Quote)
			if err != nil {
				t.Fatal(err)
			}
			got := sim.NoMatchingLevel
			var adv []string
			for _, l := range c.Collateral.TCBInfo.TCBLevels {
				ok := ext.PCESVN >= l.TCB.PCESVN
				for i := range 16 {
					ok = ok && ext.CompSVN[i] >= l.TCB.SGX[i]
				}
				if tee == claims.TDX {
					for i := 2; i < 16; i++ { // bytes 0 and 1 are the module's
						ok = ok && q.TD.TeeTcbSvn[i] >= l.TCB.TDX[i]
					}
				}
				if ok {
					got, adv = l.TCBStatus, l.AdvisoryIDs
					break
				}
			}
			if got != status {
				t.Errorf("%s %s: platform lands on %s", tee, status, got)
			}
			if status != sim.NoMatchingLevel && c.Expected.PlatformStatus != status {
				t.Errorf("%s %s: Expected.PlatformStatus %s", tee, status, c.Expected.PlatformStatus)
			}
			if status != sim.NoMatchingLevel && status != claims.StatusRevoked && strings.Join(adv, ",") != strings.Join(c.Expected.AdvisoryIDs, ",") {
				t.Errorf("%s %s: level advisories %v, Expected %v", tee, status, adv, c.Expected.AdvisoryIDs)
			}
		}
	}
}

// jsonKeys returns the member names of a JSON object in document order.
func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v", err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func member(t *testing.T, b []byte, path ...any) []byte {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			b = m[k]
		case int:
			var a []json.RawMessage
			if err := json.Unmarshal(b, &a); err != nil {
				t.Fatal(err)
			}
			b = a[k]
		}
	}
	return b
}

// TestCollateralShape compares the simulated documents with Intel's, member
// by member and in order, and checks that the collateral parses in every
// form it is offered in.
func TestCollateralShape(t *testing.T) {
	for _, k := range []struct {
		tee  claims.TEE
		real string
	}{{claims.SGX, "sgx-v3-config-sw-hardening"}, {claims.TDX, "tdx-v5-no-tcb-level"}} {
		t.Run(string(k.tee), func(t *testing.T) {
			real, err := dcap.ParseCollateralJSON(testdata.Read(t, "dcap", k.real, "collateral.json"))
			if err != nil {
				t.Fatal(err)
			}
			c := newCase(t, sim.Options{TEE: k.tee})
			col := c.Collateral
			// A level has advisoryIDs only when it names advisories, in
			// Intel's documents and ours; compare the other members.
			noAdvisories := func(keys []string) string {
				var out []string
				for _, k := range keys {
					if k != "advisoryIDs" {
						out = append(out, k)
					}
				}
				return strings.Join(out, ",")
			}
			for _, p := range [][]any{nil, {"tcbLevels", 0}, {"tcbLevels", 0, "tcb"}, {"tcbLevels", 1}, {"tdxModule"}, {"tdxModuleIdentities", 0}, {"tdxModuleIdentities", 1, "tcbLevels", 0}} {
				if k.tee == claims.SGX && len(p) > 0 && strings.HasPrefix(p[0].(string), "tdx") {
					continue
				}
				got, want := jsonKeys(t, member(t, col.TCBInfoBody, p...)), jsonKeys(t, member(t, real.TCBInfoBody, p...))
				if noAdvisories(got) != noAdvisories(want) {
					t.Errorf("TCB info %v members %v, Intel's %v", p, got, want)
				}
			}
			for _, p := range [][]any{nil, {"tcbLevels", 0}} {
				got, want := jsonKeys(t, member(t, col.QEIdentityBody, p...)), jsonKeys(t, member(t, real.QEIdentityBody, p...))
				if noAdvisories(got) != noAdvisories(want) {
					t.Errorf("QE identity %v members %v, Intel's %v", p, got, want)
				}
			}
			for i, l := range col.TCBInfo.TCBLevels {
				keys := jsonKeys(t, member(t, col.TCBInfoBody, "tcbLevels", i))
				if has := slices.Contains(keys, "advisoryIDs"); has != (l.TCBStatus != claims.StatusUpToDate) {
					t.Errorf("level %d (%s) members %v", i, l.TCBStatus, keys)
				}
			}
			ti, qi := col.TCBInfo, col.QEIdentity
			wantID, wantQE := "SGX", "QE"
			if k.tee == claims.TDX {
				wantID, wantQE = "TDX", "TD_QE"
				if ti.TDXModule == nil || len(ti.TDXModuleIdentities) == 0 {
					t.Error("TDX TCB info without module identities")
				}
			}
			if ti.ID != wantID || ti.Version != 3 || qi.ID != wantQE || qi.Version != 2 || ti.FMSPC != c.Options.FMSPC || ti.PCEID != "0000" {
				t.Errorf("TCB info %s v%d %s/%s, QE identity %s v%d", ti.ID, ti.Version, ti.FMSPC, ti.PCEID, qi.ID, qi.Version)
			}
			if !ti.IssueDate.Before(now) || !ti.NextUpdate.After(now) || !qi.IssueDate.Before(now) || !qi.NextUpdate.After(now) {
				t.Errorf("not valid now: %v..%v", ti.IssueDate, ti.NextUpdate)
			}
			statuses := map[string]bool{}
			for _, l := range ti.TCBLevels {
				statuses[l.TCBStatus] = true
			}
			for _, s := range []string{claims.StatusUpToDate, claims.StatusSWHardeningNeeded, claims.StatusConfigurationNeeded,
				claims.StatusConfigurationAndSWHardeningNeeded, claims.StatusOutOfDate, claims.StatusOutOfDateConfigurationNeeded, claims.StatusRevoked} {
				if !statuses[s] {
					t.Errorf("no %s level", s)
				}
			}

			// Signatures by the TCB signing certificate.
			signer := col.TCBInfoIssuerChain[0].PublicKey.(*ecdsa.PublicKey)
			for _, s := range []struct{ body, sig []byte }{{col.TCBInfoBody, col.TCBInfoSignature}, {col.QEIdentityBody, col.QEIdentitySignature}} {
				d := sha256.Sum256(s.body)
				if !ecdsa.Verify(signer, d[:], new(big.Int).SetBytes(s.sig[:32]), new(big.Int).SetBytes(s.sig[32:])) {
					t.Error("signature does not verify")
				}
			}
			if err := col.TCBInfoIssuerChain[0].CheckSignatureFrom(c.Root); err != nil || col.TCBInfoIssuerChain[0].Subject.CommonName != sim.TCBSigningCN {
				t.Errorf("TCB signing certificate: %v", err)
			}

			// dcap-qvl JSON layout, and the PCS responses.
			j, err := json.Marshal(col)
			if err != nil {
				t.Fatal(err)
			}
			again, err := dcap.ParseCollateralJSON(j)
			if err != nil {
				t.Fatalf("ParseCollateralJSON: %v", err)
			}
			if j2, err := json.Marshal(again); err != nil || !bytes.Equal(j, j2) {
				t.Errorf("collateral JSON round trip changes it: %v", err)
			}
			raw := c.Raw
			raw.TCBInfo, raw.TCBInfoSignature = c.TCBInfoResponse, nil
			raw.QEIdentity, raw.QEIdentitySignature = c.QEIdentityResponse, nil
			pcs, err := dcap.NewCollateral(raw)
			if err != nil {
				t.Fatalf("NewCollateral from PCS responses: %v", err)
			}
			if !bytes.Equal(pcs.TCBInfoBody, col.TCBInfoBody) || !bytes.Equal(pcs.TCBInfoSignature, col.TCBInfoSignature) ||
				!bytes.Equal(pcs.QEIdentityBody, col.QEIdentityBody) || !bytes.Equal(pcs.QEIdentitySignature, col.QEIdentitySignature) {
				t.Error("PCS responses carry other bodies or signatures")
			}
			if keys := jsonKeys(t, c.TCBInfoResponse); strings.Join(keys, ",") != "tcbInfo,signature" {
				t.Errorf("PCS TCB info response members %v", keys)
			}
			if keys := jsonKeys(t, c.QEIdentityResponse); strings.Join(keys, ",") != "enclaveIdentity,signature" {
				t.Errorf("PCS QE identity response members %v", keys)
			}
		})
	}
}

// TestCRLs checks the CRLs: issuers, signatures, revoked serials.
func TestCRLs(t *testing.T) {
	c := newCase(t, sim.Options{RevokePCK: true, RevokePCKCA: true, RevokeTCBSigning: true})
	col := c.Collateral
	pckCA := c.PCKChain[1]
	if err := col.PCKCRL.CheckSignatureFrom(pckCA); err != nil {
		t.Errorf("PCK CRL: %v", err)
	}
	if err := col.RootCACRL.CheckSignatureFrom(c.Root); err != nil {
		t.Errorf("root CA CRL: %v", err)
	}
	if !col.PCKCRLIssuerChain[0].Equal(pckCA) || !col.PCKCRLIssuerChain[1].Equal(c.Root) {
		t.Error("PCK CRL issuer chain is not PCK CA, root")
	}
	has := func(l *x509.RevocationList, s *big.Int) bool {
		for _, e := range l.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(s) == 0 {
				return e.ReasonCode == 1
			}
		}
		return false
	}
	if !has(col.PCKCRL, c.PCKChain[0].SerialNumber) || !has(col.RootCACRL, pckCA.SerialNumber) || !has(col.RootCACRL, col.TCBInfoIssuerChain[0].SerialNumber) {
		t.Error("a revoked serial is missing")
	}
	if !col.PCKCRL.ThisUpdate.Before(now) || !col.PCKCRL.NextUpdate.After(now) {
		t.Errorf("PCK CRL %v..%v", col.PCKCRL.ThisUpdate, col.PCKCRL.NextUpdate)
	}

	c = newCase(t, sim.Options{})
	if has(c.Collateral.PCKCRL, c.PCKChain[0].SerialNumber) || len(c.Collateral.RootCACRL.RevokedCertificateEntries) != 0 {
		t.Error("unrevoked case revokes something")
	}
	if len(c.Collateral.PCKCRL.RevokedCertificateEntries) == 0 {
		t.Error("PCK CRL lists no other platforms")
	}
	for _, which := range []sim.CRL{sim.CRLRoot, sim.CRLPCK} {
		c = newCase(t, sim.Options{CRLWrongKey: which})
		l, issuer := c.Collateral.RootCACRL, c.Root
		if which == sim.CRLPCK {
			l, issuer = c.Collateral.PCKCRL, c.PCKChain[1]
		}
		if l.CheckSignatureFrom(issuer) == nil {
			t.Errorf("%s CRL with the wrong key verifies", which)
		}
		if !bytes.Equal(l.RawIssuer, issuer.RawSubject) {
			t.Errorf("%s CRL with the wrong key names another issuer", which)
		}
	}
}

// TestPKIShape checks names, validity and constraints of the test PKI.
func TestPKIShape(t *testing.T) {
	p, err := sim.DefaultPKI()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		c    *x509.Certificate
		cn   string
		ca   bool
		path int
	}{{p.Root, sim.RootCN, true, 1}, {p.PlatformCA, sim.PlatformCACN, true, 0}, {p.ProcessorCA, sim.ProcessorCACN, true, 0}, {p.TCBSigning, sim.TCBSigningCN, false, -1}} {
		c := k.c
		if c.Subject.CommonName != k.cn || len(c.Subject.Organization) != 1 || !strings.Contains(c.Subject.Organization[0], "asps simulator") {
			t.Errorf("subject %v", c.Subject)
		}
		if c.IsCA != k.ca || (k.ca && c.MaxPathLen != k.path) || c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
			t.Errorf("%s: CA %v pathlen %d alg %v", k.cn, c.IsCA, c.MaxPathLen, c.SignatureAlgorithm)
		}
		if err := c.CheckSignatureFrom(p.Root); err != nil {
			t.Errorf("%s: %v", k.cn, err)
		}
		if len(c.SubjectKeyId) == 0 || len(c.AuthorityKeyId) == 0 || len(c.CRLDistributionPoints) != 1 {
			t.Errorf("%s: SKI %x AKI %x CRL DP %v", k.cn, c.SubjectKeyId, c.AuthorityKeyId, c.CRLDistributionPoints)
		}
		if strings.Contains(strings.ToLower(c.Subject.String()), "intel corporation") && !strings.Contains(c.Subject.String(), "not Intel") {
			t.Errorf("%s looks like Intel's", c.Subject)
		}
	}
	if p.Root.Subject.String() == dcap.IntelRootCA().Subject.String() {
		t.Error("simulator root has Intel's name")
	}
	c := newCase(t, sim.Options{})
	pck := c.PCKChain[0]
	if pck.IsCA || pck.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment || pck.Subject.CommonName != sim.PCKCN {
		t.Errorf("PCK certificate CA %v key usage %v CN %q", pck.IsCA, pck.KeyUsage, pck.Subject.CommonName)
	}
	if !strings.Contains(pck.CRLDistributionPoints[0], "ca=processor") {
		t.Errorf("PCK CRL DP %v", pck.CRLDistributionPoints)
	}
	// Extension order as Intel's: AKI, CRL DP, SKI, key usage, basic
	// constraints, SGX.
	var order []string
	for _, e := range pck.Extensions {
		order = append(order, e.Id.String())
	}
	if want := "2.5.29.35,2.5.29.31,2.5.29.14,2.5.29.15,2.5.29.19,1.2.840.113741.1.13.1"; strings.Join(order, ",") != want {
		t.Errorf("extension order %v, want %s", order, want)
	}
	real := realPCK(t, "tdx-v4-up-to-date")
	var realOrder []string
	for _, e := range real.Extensions {
		realOrder = append(realOrder, e.Id.String())
	}
	if strings.Join(realOrder, ",") != strings.Join(order, ",") {
		t.Errorf("extension order %v, Intel's %v", order, realOrder)
	}
}

// TestDeterministic: the same seed and options make the same bytes; another
// seed another root.
func TestDeterministic(t *testing.T) {
	a, err := sim.NewPKI([]byte("seed one"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := sim.NewPKI([]byte("seed one"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := sim.NewPKI([]byte("seed two"))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Root.Equal(b.Root) || !a.PlatformCA.Equal(b.PlatformCA) || !a.ProcessorCA.Equal(b.ProcessorCA) || !a.TCBSigning.Equal(b.TCBSigning) {
		t.Error("same seed, different certificates")
	}
	if a.Root.PublicKey.(*ecdsa.PublicKey).Equal(other.Root.PublicKey) {
		t.Error("different seeds, same root key")
	}
	if _, err := sim.NewPKI(nil); err == nil {
		t.Error("empty seed accepted")
	}
	for _, tee := range []claims.TEE{claims.SGX, claims.TDX} {
		o := sim.Options{TEE: tee, Identity: tdxIdentity(false), ReportData: reportData("x"), TCBStatus: claims.StatusOutOfDate}
		o.PKI = a
		c1 := newCase(t, o)
		o.PKI = b
		c2 := newCase(t, o)
		j1, _ := json.Marshal(c1.Collateral)
		j2, _ := json.Marshal(c2.Collateral)
		if !bytes.Equal(c1.Quote, c2.Quote) || !bytes.Equal(j1, j2) {
			t.Errorf("%s: same seed and options, different quote or collateral", tee)
		}
		o.PKI = other
		c3 := newCase(t, o)
		if bytes.Equal(c1.Quote, c3.Quote) {
			t.Errorf("%s: different seeds, same quote", tee)
		}
	}
}

// TestSaveLoadPKI: a saved and reloaded PKI is the same PKI and makes the
// same quotes.
func TestSaveLoadPKI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := sim.LoadOrCreatePKI(dir, []byte("dev server"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"root.pem", "root.key", "platform-ca.pem", "platform-ca.key", "processor-ca.pem", "processor-ca.key", "tcb-signing.pem", "tcb-signing.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".key") && st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", f, st.Mode())
		}
	}
	// A restart: the same root, whatever the seed says now.
	q, err := sim.LoadOrCreatePKI(dir, []byte("another seed"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := sim.LoadPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*sim.PKI{q, l} {
		if !x.Root.Equal(p.Root) || !x.PlatformCA.Equal(p.PlatformCA) || !x.ProcessorCA.Equal(p.ProcessorCA) || !x.TCBSigning.Equal(p.TCBSigning) {
			t.Error("reloaded PKI differs")
		}
	}
	for _, tee := range []claims.TEE{claims.SGX, claims.TDX} {
		c1 := newCase(t, sim.Options{PKI: p, TEE: tee})
		c2 := newCase(t, sim.Options{PKI: l, TEE: tee})
		if !bytes.Equal(c1.Quote, c2.Quote) {
			t.Errorf("%s: reloaded PKI makes other quotes", tee)
		}
	}
	// A random seed when none is given; and a broken directory is refused.
	r, err := sim.LoadOrCreatePKI(filepath.Join(t.TempDir(), "random"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Root.PublicKey.(*ecdsa.PublicKey).Equal(p.Root.PublicKey) {
		t.Error("random seed gave the same root")
	}
	other, err := sim.NewPKI([]byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	odir := filepath.Join(t.TempDir(), "other")
	if err := other.Save(odir); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(odir, "tcb-signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tcb-signing.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.LoadPKI(dir); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key: %v", err)
	}
	if _, err := sim.LoadPKI(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing directory loads")
	}
}

// TestAttester: the attester quotes what it is asked for, and its quotes are
// the quotes NewCase makes.
func TestAttester(t *testing.T) {
	for _, tee := range []claims.TEE{claims.SGX, claims.TDX} {
		id := sgxIdentity(false)
		if tee == claims.TDX {
			id = tdxIdentity(false)
		}
		a, err := sim.NewAttester(sim.Options{TEE: tee, Identity: id, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if a.Name() != "sim" {
			t.Errorf("name %q", a.Name())
		}
		rd := reportData(string(tee))
		b, err := a.Quote(context.Background(), rd)
		if err != nil {
			t.Fatal(err)
		}
		q, err := dcap.ParseQuote(b)
		if err != nil {
			t.Fatal(err)
		}
		if q.ReportData() != rd || q.TEE() != string(tee) {
			t.Errorf("%s: report data %x TEE %s", tee, q.ReportData(), q.TEE())
		}
		c := newCase(t, sim.Options{TEE: tee, Identity: id, ReportData: rd})
		if !bytes.Equal(b, c.Quote) {
			t.Errorf("%s: attester quote differs from NewCase's", tee)
		}
		col, err := a.Collateral(now)
		if err != nil {
			t.Fatal(err)
		}
		if col.Digest() != c.Collateral.Digest() {
			t.Errorf("%s: attester collateral differs from NewCase's", tee)
		}
		if !a.Root().Equal(c.Root) {
			t.Errorf("%s: attester root differs", tee)
		}
		// Concurrent use (run with -race).
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				rd := reportData(fmt.Sprint(i))
				b, err := a.Quote(context.Background(), rd)
				if err != nil {
					t.Error(err)
					return
				}
				if q, err := dcap.ParseQuote(b); err != nil || q.ReportData() != rd {
					t.Errorf("concurrent quote %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := a.Quote(ctx, rd); !errors.Is(err, context.Canceled) {
			t.Errorf("canceled context: %v", err)
		}
	}
}

// TestWriteCase writes cases and reads them back as the files they claim to
// be.
func TestWriteCase(t *testing.T) {
	for _, o := range []sim.Options{{}, {TEE: claims.TDX, QuoteVersion: 5, TCBStatus: claims.StatusSWHardeningNeeded}, {RevokePCK: true}} {
		o.Now = now
		dir := filepath.Join(t.TempDir(), "case")
		if err := sim.WriteCase(dir, o); err != nil {
			t.Fatal(err)
		}
		read := func(name string) []byte {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		q, err := dcap.ParseQuote(read("quote.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dcap.ParseCollateralJSON(read("collateral.json")); err != nil {
			t.Fatal(err)
		}
		roots, err := dcap.ParseChainPEM(read("root.pem"), "root")
		if err != nil || len(roots) != 1 {
			t.Fatalf("root.pem: %v", err)
		}
		chain, _ := dcap.ParseChainPEM(q.CertData.PCKCertChain, "chain")
		if !chain[2].Equal(roots[0]) {
			t.Error("root.pem is not the quote's root")
		}
		var raw dcap.RawCollateral
		raw.TCBInfo, raw.QEIdentity = read("tcb_info.json"), read("qe_identity.json")
		if _, err := dcap.NewCollateral(raw); err != nil {
			t.Errorf("PCS responses: %v", err)
		}
		var exp struct {
			VerifyAt    time.Time `json:"verify_at"`
			Accepted    bool      `json:"accepted"`
			Status      string    `json:"status"`
			AdvisoryIDs []string  `json:"advisory_ids"`
			TEE         string    `json:"tee"`
		}
		if err := json.Unmarshal(read("expected.json"), &exp); err != nil {
			t.Fatal(err)
		}
		wantStatus := o.TCBStatus
		if wantStatus == "" {
			wantStatus = claims.StatusUpToDate
		}
		if !exp.VerifyAt.Equal(now) || exp.Accepted == o.RevokePCK || exp.Status != wantStatus || exp.TEE != q.TEE() || exp.AdvisoryIDs == nil {
			t.Errorf("expected.json %+v", exp)
		}
	}
	if err := sim.WriteCase(t.TempDir(), sim.Options{TEE: "sev"}); err == nil {
		t.Error("bad options written")
	}
}

// TestOptionErrors: options that cannot describe a quote are refused.
func TestOptionErrors(t *testing.T) {
	for i, o := range []sim.Options{
		{TEE: "sev"},
		{QuoteVersion: 2},
		{TEE: claims.TDX, QuoteVersion: 3},
		{TEE: claims.TDX, QuoteVersion: 4, BodyType: 3},
		{TEE: claims.TDX, QuoteVersion: 5, BodyType: 1},
		{QuoteVersion: 5, BodyType: 2},
		{TCBStatus: "Fine"},
		{QETCBStatus: "SWHardeningNeeded"},
		{TDXModuleTCBStatus: claims.StatusOutOfDate},
		{TEE: claims.TDX, TDXModuleTCBStatus: "Revoked"},
		{FMSPC: "0011"},
		{PCKCA: "other"},
		{ExpiredCert: "leaf"},
		{CRLWrongKey: "tcb"},
		{QEIdentityMismatch: "mrenclave"},
		{Tamper: "everything"},
		{CertData: sim.CertDataLayout(9)},
	} {
		if _, err := sim.NewCase(o); err == nil {
			t.Errorf("%d: %+v accepted", i, o)
		}
		if _, err := sim.NewAttester(o); err == nil {
			t.Errorf("%d: attester for %+v", i, o)
		}
	}
}

// TestCertDataLayouts: the layouts that no version allows are refused by
// the parser; the allowed ones parse.
func TestCertDataLayouts(t *testing.T) {
	for _, k := range []struct {
		version int
		layout  sim.CertDataLayout
		ok      bool
	}{
		{3, sim.CertDataAuto, true}, {3, sim.CertDataInline, true}, {3, sim.CertDataQEReport, false}, {3, sim.CertDataPCKChainOnly, false},
		{4, sim.CertDataAuto, true}, {4, sim.CertDataQEReport, true}, {4, sim.CertDataInline, false}, {4, sim.CertDataPCKChainOnly, false},
		{5, sim.CertDataQEReport, true}, {5, sim.CertDataInline, false}, {5, sim.CertDataPCKChainOnly, false},
	} {
		c := newCase(t, sim.Options{QuoteVersion: k.version, CertData: k.layout})
		_, err := dcap.ParseQuote(c.Quote)
		if (err == nil) != k.ok {
			t.Errorf("v%d layout %d: parse error %v, want ok=%v", k.version, k.layout, err, k.ok)
		}
		if !k.ok && !errors.Is(err, dcap.ErrMalformed) {
			t.Errorf("v%d layout %d: %v is not ErrMalformed", k.version, k.layout, err)
		}
		if wantErr := map[bool]error{true: nil, false: dcap.ErrMalformed}[k.ok]; c.WantErr != wantErr {
			t.Errorf("v%d layout %d: WantErr %v", k.version, k.layout, c.WantErr)
		}
	}
}

func ExampleNewCase() {
	c, err := sim.NewCase(sim.Options{TEE: claims.TDX, TCBStatus: claims.StatusOutOfDate, Now: now})
	if err != nil {
		fmt.Println(err)
		return
	}
	v := dcap.NewVerifier(dcap.WithTrustAnchors(c.Root))
	res, err := v.Verify(c.Quote, c.Collateral, c.At)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.TCBStatus, res.AdvisoryIDs, res.Simulated)
	// Output: OutOfDate [INTEL-SA-00960 INTEL-SA-00615] true
}
