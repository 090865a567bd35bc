package collateral

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// recordingSource records the keys the mirror asks for.
type recordingSource struct{ asked *[]Key }

func (s recordingSource) Document(_ context.Context, k Key) (*Document, error) {
	*s.asked = append(*s.asked, k)
	return nil, &Error{Key: k, Reason: ErrNotFound}
}

// FuzzMirrorRequest: the mirror's request parsing, which anyone can reach.
// Invariants: every request is answered 400, 404 or 405 here (the source
// knows nothing), never 5xx; the source is asked only for normalized keys
// (canonical, Normalize-idempotent, so one document is one cache entry
// whatever the spelling), at most once per request; the Error-Message
// header is printable ASCII.
func FuzzMirrorRequest(f *testing.F) {
	for _, s := range []string{
		"/sgx/certification/v4/tcb?fmspc=00906ED50000", "/tdx/certification/v4/tcb?fmspc=00806f050000&fmspc=x",
		"/sgx/certification/v4/qe/identity", "/tdx/certification/v4/qe/identity/", "/sgx/certification/v4/pckcrl?ca=Processor&encoding=DER",
		"/sgx/certification/v4/rootcacrl?encoding=pem", "/sgx/certification/v4/tcb?fmspc=%00%1b", "/sgx/certification/v4/pckcrl?ca=%E2%80%AE",
		"/sgx/certification/v3/tcb", "//sgx/certification/v4/tcb?fmspc=00906ED50000",
	} {
		f.Add("GET", s)
	}
	f.Add("POST", "/sgx/certification/v4/rootcacrl")
	f.Fuzz(func(t *testing.T, method, target string) {
		if !strings.HasPrefix(target, "/") {
			return
		}
		req, err := http.NewRequest("GET", "http://mirror.test"+target, nil)
		if err != nil {
			return
		}
		switch method {
		case "GET", "HEAD", "POST", "PUT", "DELETE":
			req.Method = method
		}
		req.RemoteAddr = "192.0.2.1:1234"
		var asked []Key
		rec := httptest.NewRecorder()
		NewHandlerWithOptions(recordingSource{&asked}, HandlerOptions{ClientBurst: -1}).ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed:
		default:
			t.Fatalf("%s %q: status %d", method, target, rec.Code)
		}
		if len(asked) > 1 {
			t.Fatalf("%s %q: %d documents asked for", method, target, len(asked))
		}
		for _, k := range asked {
			n, err := k.Normalize()
			if err != nil || n != k {
				t.Fatalf("%s %q: asked for %+v, which is not normalized (%+v, %v)", method, target, k, n, err)
			}
		}
		for _, r := range rec.Header().Get("Error-Message") {
			if r < 0x20 || r > 0x7e {
				t.Fatalf("%s %q: Error-Message carries %U", method, target, r)
			}
		}
	})
}
