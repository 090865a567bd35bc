package collateral

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asps-project/asps/dcap"
)

// testPKI is a small PKI shaped like Intel's: a root, the TCB signing
// certificate, and the two PCK CAs.
type testPKI struct {
	root, signing, processor, platform             *x509.Certificate
	rootKey, signingKey, processorKey, platformKey *ecdsa.PrivateKey
}

var serial atomic.Int64

func newCert(t testing.TB, cn string, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000 + serial.Add(1)),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"asps test"}},
		NotBefore:             time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2049, 12, 31, 0, 0, 0, 0, time.UTC),
		BasicConstraintsValid: true,
		IsCA:                  ca,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestPKI(t testing.TB, name string) *testPKI {
	p := &testPKI{rootKey: newKey(t), signingKey: newKey(t), processorKey: newKey(t), platformKey: newKey(t)}
	p.root = newCert(t, name+" SGX Root CA", p.rootKey, nil, nil, true)
	p.signing = newCert(t, name+" SGX TCB Signing", p.signingKey, p.root, p.rootKey, false)
	p.processor = newCert(t, name+" SGX PCK Processor CA", p.processorKey, p.root, p.rootKey, true)
	p.platform = newCert(t, name+" SGX PCK Platform CA", p.platformKey, p.root, p.rootKey, true)
	return p
}

func (p *testPKI) signingChain() []byte {
	return dcap.EncodeChainPEM([]*x509.Certificate{p.signing, p.root})
}

func (p *testPKI) caChain(ca string) []byte {
	if ca == CAPlatform {
		return dcap.EncodeChainPEM([]*x509.Certificate{p.platform, p.root})
	}
	return dcap.EncodeChainPEM([]*x509.Certificate{p.processor, p.root})
}

func signRS(t testing.TB, k *ecdsa.PrivateKey, body []byte) []byte {
	d := sha256.Sum256(body)
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig
}

func jsonTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func comps(n int) []map[string]int {
	out := make([]map[string]int, 16)
	for i := range out {
		out[i] = map[string]int{"svn": n}
	}
	return out
}

// tcbInfoBody is a minimal valid TCB info (version 3).
func tcbInfoBody(t testing.TB, tee, fmspc string, issue, next time.Time) []byte {
	tcb := map[string]any{"sgxtcbcomponents": comps(0), "pcesvn": 0}
	if tee == TEETDX {
		tcb["tdxtcbcomponents"] = comps(0)
	}
	doc := map[string]any{
		"id": strings.ToUpper(tee), "version": 3, "issueDate": jsonTime(issue), "nextUpdate": jsonTime(next),
		"fmspc": fmspc, "pceId": "0000", "tcbType": 0, "tcbEvaluationDataNumber": 17,
		"tcbLevels": []any{map[string]any{"tcb": tcb, "tcbDate": jsonTime(issue), "tcbStatus": "UpToDate"}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func qeIdentityBody(t testing.TB, tee string, issue, next time.Time) []byte {
	id := "QE"
	if tee == TEETDX {
		id = "TD_QE"
	}
	doc := map[string]any{
		"id": id, "version": 2, "issueDate": jsonTime(issue), "nextUpdate": jsonTime(next), "tcbEvaluationDataNumber": 17,
		"miscselect": "00000000", "miscselectMask": "FFFFFFFF",
		"attributes": strings.Repeat("11", 16), "attributesMask": strings.Repeat("FB", 16),
		"mrsigner": strings.Repeat("8C", 32), "isvprodid": 1,
		"tcbLevels": []any{map[string]any{"tcb": map[string]int{"isvsvn": 8}, "tcbDate": jsonTime(issue), "tcbStatus": "UpToDate"}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p *testPKI) signed(t testing.TB, member string, body []byte) []byte {
	return pcsResponse(member, body, signRS(t, p.signingKey, body))
}

func (p *testPKI) crl(t testing.TB, issuer *x509.Certificate, key *ecdsa.PrivateKey, this, next time.Time) []byte {
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: this, NextUpdate: next,
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(999999), RevocationTime: this}},
	}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func (p *testPKI) pckCRL(t testing.TB, ca string, this, next time.Time) []byte {
	if ca == CAPlatform {
		return p.crl(t, p.platform, p.platformKey, this, next)
	}
	return p.crl(t, p.processor, p.processorKey, this, next)
}

func (p *testPKI) rootCRL(t testing.TB, this, next time.Time) []byte {
	return p.crl(t, p.root, p.rootKey, this, next)
}

// fakePCS serves documents signed by a test PKI, valid from issue to
// next, and can be told to misbehave.
type fakePCS struct {
	t   testing.TB
	pki *testPKI
	srv *httptest.Server

	mu          sync.Mutex
	issue, next time.Time
	// fault, if set, may answer a request itself (returning true).
	fault func(k Key, w http.ResponseWriter, r *http.Request) bool
	// gate, if set, holds every request until it is closed.
	gate chan struct{}

	requests atomic.Int64
	perKey   sync.Map // Key -> *atomic.Int64
}

func newFakePCS(t testing.TB, pki *testPKI, issue, next time.Time) *fakePCS {
	f := &fakePCS{t: t, pki: pki, issue: issue, next: next}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePCS) setDates(issue, next time.Time) {
	f.mu.Lock()
	f.issue, f.next = issue, next
	f.mu.Unlock()
}

func (f *fakePCS) setFault(fn func(k Key, w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	f.fault = fn
	f.mu.Unlock()
}

func (f *fakePCS) count(k Key) int64 {
	v, _ := f.perKey.LoadOrStore(k, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

// keyOf maps a request to the document it asks for.
func keyOf(r *http.Request) (Key, error) {
	k, ok := keyForPath(r.URL.Path, r.URL.Query())
	if !ok {
		return Key{}, fmt.Errorf("no path %s", r.URL.Path)
	}
	return k.Normalize()
}

func (f *fakePCS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	k, err := keyOf(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	v, _ := f.perKey.LoadOrStore(k, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	f.mu.Lock()
	fault, gate, issue, next := f.fault, f.gate, f.issue, f.next
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if fault != nil && fault(k, w, r) {
		return
	}
	f.serve(k, w, issue, next)
}

// serve writes a good answer for k.
func (f *fakePCS) serve(k Key, w http.ResponseWriter, issue, next time.Time) {
	body, chain := f.good(k, issue, next)
	writeDoc(w, k, body, chain)
}

func (f *fakePCS) good(k Key, issue, next time.Time) (body, chain []byte) {
	p, t := f.pki, f.t
	switch k.Kind {
	case KindTCBInfo:
		return p.signed(t, "tcbInfo", tcbInfoBody(t, k.TEE, k.FMSPC, issue, next)), p.signingChain()
	case KindQEIdentity:
		return p.signed(t, "enclaveIdentity", qeIdentityBody(t, k.TEE, issue, next)), p.signingChain()
	case KindPCKCRL:
		return p.pckCRL(t, k.CA, issue, next), p.caChain(k.CA)
	default:
		return p.rootCRL(t, issue, next), nil
	}
}

func writeDoc(w http.ResponseWriter, k Key, body, chain []byte) {
	switch k.Kind {
	case KindTCBInfo:
		w.Header().Set(HeaderTCBInfoIssuerChain, EncodeChainHeader(chain))
	case KindQEIdentity:
		w.Header().Set(HeaderEnclaveIdentityChain, EncodeChainHeader(chain))
	case KindPCKCRL:
		w.Header().Set(HeaderPCKCRLIssuerChain, EncodeChainHeader(chain))
	}
	_, _ = w.Write(body)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testClient is a client of a fake PCS with fast retries.
func testClient(t testing.TB, base string) *Client {
	c, err := NewClient(ClientOptions{BaseURL: base, Timeout: 2 * time.Second, Retries: 2, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type x509Cert = x509.Certificate

func stringsReplace(s, old, new string) string { return strings.Replace(s, old, new, 1) }
