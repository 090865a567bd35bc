package collateral

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/internal/testdata"
)

type corpusCase struct {
	name  string
	dir   string
	quote []byte
	col   *dcap.Collateral
	exp   testdata.DCAPExpected
}

func loadCorpus(t *testing.T) []corpusCase {
	t.Helper()
	var out []corpusCase
	for _, tc := range testdata.DCAPCases(t) {
		col, err := dcap.ParseCollateralJSON(tc.CollateralJSON)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, corpusCase{name: tc.Name, dir: tc.Dir, quote: tc.Quote, col: col, exp: tc.Expected})
	}
	return out
}

// checkVerdict verifies the quote against col at the case's time and
// compares with expected.json.
func (c *corpusCase) checkVerdict(t *testing.T, col *dcap.Collateral, at time.Time) {
	t.Helper()
	res, err := dcap.NewVerifier().Verify(c.quote, col, at)
	if !c.exp.Accepted {
		if err == nil {
			t.Fatalf("accepted with %s; want rejection %q", res.TCBStatus, c.exp.Error)
		}
		if strings.Contains(c.exp.Error, "No matching TCB level") && !errors.Is(err, dcap.ErrNoMatchingTCBLevel) {
			t.Fatalf("rejected with %v; want ErrNoMatchingTCBLevel", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("rejected: %v", err)
	}
	if res.TCBStatus != c.exp.Status {
		t.Errorf("status %s, want %s", res.TCBStatus, c.exp.Status)
	}
	got, want := slices.Clone(res.AdvisoryIDs), slices.Clone(c.exp.AdvisoryIDs)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("advisories %v, want %v", got, want)
	}
	if !res.RevocationChecked {
		t.Error("revocation not checked")
	}
}

// sameDocuments compares what two collaterals hold, document by document.
func sameDocuments(t *testing.T, got, want *dcap.Collateral) {
	t.Helper()
	eq := func(what string, a, b []byte) {
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from the corpus", what)
		}
	}
	eq("TCB info body", got.TCBInfoBody, want.TCBInfoBody)
	eq("TCB info signature", got.TCBInfoSignature, want.TCBInfoSignature)
	eq("QE identity body", got.QEIdentityBody, want.QEIdentityBody)
	eq("QE identity signature", got.QEIdentitySignature, want.QEIdentitySignature)
	eq("PCK CRL", got.PCKCRL.Raw, want.PCKCRL.Raw)
	eq("root CA CRL", got.RootCACRL.Raw, want.RootCACRL.Raw)
	eq("TCB info chain", dcap.EncodeChainPEM(got.TCBInfoIssuerChain), dcap.EncodeChainPEM(want.TCBInfoIssuerChain))
	eq("QE identity chain", dcap.EncodeChainPEM(got.QEIdentityIssuerChain), dcap.EncodeChainPEM(want.QEIdentityIssuerChain))
	eq("PCK CRL chain", dcap.EncodeChainPEM(got.PCKCRLIssuerChain), dcap.EncodeChainPEM(want.PCKCRLIssuerChain))
}

// TestCorpusThroughMirror: each real case, imported into its own bundle,
// served by the mirror handler on a 127.0.0.1 listener, fetched by the
// client into a cache at the case's time, reaches its expected verdict.
func TestCorpusThroughMirror(t *testing.T) {
	ctx := context.Background()
	for _, c := range loadCorpus(t) {
		t.Run(c.name, func(t *testing.T) {
			at := c.exp.VerifyAt
			now := func() time.Time { return at }
			bundleDir := t.TempDir()
			written, err := ImportCollateral(bundleDir, c.col, nil, at)
			if err != nil {
				t.Fatal(err)
			}
			if len(written) != 4 {
				t.Fatalf("import wrote %v, want 4 documents", written)
			}
			b, err := OpenBundle(bundleDir, Options{Now: now, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(NewHandler(b))
			defer srv.Close()
			if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
				t.Fatalf("listener %s", srv.URL)
			}

			q, err := dcap.ParseQuote(c.quote)
			if err != nil {
				t.Fatal(err)
			}
			tee, fmspc, ca, err := ForQuote(q)
			if err != nil {
				t.Fatal(err)
			}
			if tee != c.exp.TEE || fmspc != c.exp.FMSPC {
				t.Fatalf("ForQuote = %s %s, want %s %s", tee, fmspc, c.exp.TEE, c.exp.FMSPC)
			}
			if want := dcap.PCKCAKind(c.col.PCKCRL.Issuer.CommonName); ca != want {
				t.Fatalf("ForQuote CA %s, want %s", ca, want)
			}

			cache, err := NewCache(Options{Client: testClient(t, srv.URL), Dir: t.TempDir(), Now: now, RefreshInterval: -1, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer cache.Close()
			col, info, err := cache.Get(ctx, tee, fmspc, ca)
			if err != nil {
				t.Fatal(err)
			}
			if info.FromCache || info.Grace || !info.VerifyAt.Equal(at) {
				t.Errorf("first fetch info %+v", info)
			}
			sameDocuments(t, col, c.col)
			c.checkVerdict(t, col, info.VerifyAt)

			col2, info2, err := cache.Get(ctx, strings.ToUpper(tee), strings.ToLower(fmspc), ca)
			if err != nil {
				t.Fatal(err)
			}
			if col2 != col || !info2.FromCache {
				t.Errorf("second Get: same pointer %v, from cache %v", col2 == col, info2.FromCache)
			}

			// The bundle itself is a Source too.
			bcol, _, err := GetForQuote(ctx, b, q)
			if err != nil {
				t.Fatal(err)
			}
			c.checkVerdict(t, bcol, at)
		})
	}
}

// TestMirrorWire: the mirror speaks the PCS v4 wire format: URL-encoded
// PEM chains in both TCB info headers, PEM or DER PCK CRLs, hex root CRL.
func TestMirrorWire(t *testing.T) {
	cases := loadCorpus(t)
	c := cases[0]
	dir := t.TempDir()
	if _, err := ImportCollateral(dir, c.col, nil, c.exp.VerifyAt); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBundle(dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(b))
	defer srv.Close()
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	tee := strings.ToLower(c.col.TCBInfo.ID)
	resp, body := get("/" + tee + "/certification/v4/tcb?fmspc=" + strings.ToLower(c.col.TCBInfo.FMSPC))
	if resp.StatusCode != 200 {
		t.Fatalf("tcb: %d %s", resp.StatusCode, body)
	}
	for _, h := range []string{HeaderTCBInfoIssuerChain, HeaderSGXTCBInfoIssuerChain} {
		v := resp.Header.Get(h)
		if strings.ContainsAny(v, " \n+") || !strings.HasPrefix(v, "-----BEGIN%20CERTIFICATE-----%0A") {
			t.Errorf("%s is not URL-encoded PEM: %.60q", h, v)
		}
		if got := DecodeChainHeader(v); !bytes.Equal(got, dcap.EncodeChainPEM(c.col.TCBInfoIssuerChain)) {
			t.Errorf("%s does not decode to the chain", h)
		}
	}
	d, err := dcap.NewCollateral(dcap.RawCollateral{TCBInfo: body})
	if err != nil || !bytes.Equal(d.TCBInfoBody, c.col.TCBInfoBody) {
		t.Errorf("tcb body does not hold the signed TCB info: %v", err)
	}

	ca := dcap.PCKCAKind(c.col.PCKCRL.Issuer.CommonName)
	resp, body = get("/sgx/certification/v4/pckcrl?ca=" + strings.ToUpper(ca))
	if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("-----BEGIN X509 CRL-----")) {
		t.Errorf("pckcrl default encoding: %d %.40q", resp.StatusCode, body)
	}
	if resp.Header.Get(HeaderPCKCRLIssuerChain) == "" {
		t.Error("no PCK CRL issuer chain header")
	}
	_, body = get("/sgx/certification/v4/pckcrl?ca=" + ca + "&encoding=der")
	if !bytes.Equal(body, c.col.PCKCRL.Raw) {
		t.Error("pckcrl encoding=der is not the DER CRL")
	}
	_, body = get("/sgx/certification/v4/rootcacrl")
	if string(body) != hex.EncodeToString(c.col.RootCACRL.Raw) {
		t.Error("rootcacrl is not hex DER")
	}
	_, body = get("/sgx/certification/v4/rootcacrl?encoding=der")
	if !bytes.Equal(body, c.col.RootCACRL.Raw) {
		t.Error("rootcacrl encoding=der is not DER")
	}
	resp, _ = get("/" + tee + "/certification/v4/qe/identity/")
	if resp.StatusCode != 200 || resp.Header.Get(HeaderEnclaveIdentityChain) == "" {
		t.Errorf("qe identity: %d, chain header %q", resp.StatusCode, resp.Header.Get(HeaderEnclaveIdentityChain))
	}

	for path, want := range map[string]int{
		"/sgx/certification/v4/tcb?fmspc=000000000000":              404,
		"/sgx/certification/v4/tcb?fmspc=xyz":                       400,
		"/sgx/certification/v4/tcb":                                 400,
		"/sgx/certification/v4/pckcrl?ca=other":                     400,
		"/sgx/certification/v4/pckcrl?ca=processor&encoding=base64": 400,
		"/sgx/certification/v4/pckcert":                             404,
		"/":                                                         404,
	} {
		if resp, _ := get(path); resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err = http.Post(srv.URL+"/sgx/certification/v4/rootcacrl", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

// TestImportKeepsNewer: importing an older document over a newer one
// keeps the newer; the bundle files sit at the documented paths.
func TestImportKeepsNewer(t *testing.T) {
	var newest, oldest *corpusCase
	cases := loadCorpus(t)
	for i := range cases {
		c := &cases[i]
		if c.col.QEIdentity.ID != "TD_QE" {
			continue
		}
		if newest == nil || c.col.QEIdentity.IssueDate.After(newest.col.QEIdentity.IssueDate) {
			newest = c
		}
		if oldest == nil || c.col.QEIdentity.IssueDate.Before(oldest.col.QEIdentity.IssueDate) {
			oldest = c
		}
	}
	if newest == nil || newest == oldest {
		t.Skip("the corpus needs two TDX cases of different dates")
	}
	dir := t.TempDir()
	if _, err := ImportCollateral(dir, newest.col, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	written, err := ImportCollateral(dir, oldest.col, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range written {
		if k.Kind == KindQEIdentity {
			t.Errorf("the older QE identity replaced the newer one")
		}
	}
	d, err := readDocument(dir, QEIdentityKey(TEETDX))
	if err != nil {
		t.Fatal(err)
	}
	if !d.IssueDate.Equal(newest.col.QEIdentity.IssueDate) {
		t.Errorf("qe/tdx.json issued %s, want the newest %s", d.IssueDate, newest.col.QEIdentity.IssueDate)
	}
	for _, p := range []string{"qe/tdx.json", "crl/platform.json", "crl/root.json",
		"tcb/tdx/" + newest.col.TCBInfo.FMSPC + ".json", "tcb/tdx/" + oldest.col.TCBInfo.FMSPC + ".json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("bundle: %v", err)
		}
	}
}

// TestForQuote reads TEE, FMSPC and CA of every corpus quote.
func TestForQuote(t *testing.T) {
	for _, c := range loadCorpus(t) {
		q, err := dcap.ParseQuote(c.quote)
		if err != nil {
			t.Fatal(err)
		}
		tee, fmspc, ca, err := ForQuote(q)
		if err != nil || tee != c.exp.TEE || fmspc != c.exp.FMSPC || (ca != CAProcessor && ca != CAPlatform) {
			t.Errorf("%s: ForQuote = %q %q %q %v", c.name, tee, fmspc, ca, err)
		}
	}
	if _, _, _, err := ForQuote(nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("ForQuote(nil) = %v", err)
	}
	if _, _, _, err := ForQuote(&dcap.Quote{}); !errors.Is(err, dcap.ErrMalformed) {
		t.Errorf("ForQuote(empty) = %v", err)
	}
}

// TestStatic returns one collateral for everything.
func TestStatic(t *testing.T) {
	c := loadCorpus(t)[0]
	s := NewStatic(c.col)
	col, info, err := s.Get(context.Background(), "tdx", "000000000000", "platform")
	if err != nil || col != c.col || !info.FromCache || info.NextUpdate.IsZero() {
		t.Fatalf("Static.Get = %p %+v %v", col, info, err)
	}
	if _, _, err := NewStatic(nil).Get(context.Background(), "sgx", "", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty Static: %v", err)
	}
	p := testdata.Path(t, "dcap", c.name, "collateral.json")
	ls, err := LoadStatic(p)
	if err != nil {
		t.Fatal(err)
	}
	col, _, _ = ls.Get(context.Background(), "", "", "")
	c.checkVerdict(t, col, c.exp.VerifyAt)
}

// TestImportRejects: import verifies what it writes.
func TestImportRejects(t *testing.T) {
	c := loadCorpus(t)[0]
	bad := *c.col
	bad.TCBInfoSignature = bytes.Clone(c.col.TCBInfoSignature)
	bad.TCBInfoSignature[3] ^= 0x40
	dir := t.TempDir()
	if _, err := ImportCollateral(dir, &bad, nil, time.Time{}); !errors.Is(err, dcap.ErrTCBInfoSignature) {
		t.Fatalf("tampered TCB info imported: %v", err)
	}
	if _, err := ImportCollateral(dir, nil, nil, time.Time{}); !errors.Is(err, dcap.ErrCollateralMissing) {
		t.Fatalf("nil collateral: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed import wrote %d entries", len(entries))
	}
}
