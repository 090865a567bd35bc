package ratls

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"net"
	"testing"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// pipeState runs a TLS 1.3 handshake over net.Pipe with client as the
// client certificate and returns the server's view of the connection (a
// real ConnectionState: its exporter works).
func pipeState(tb testing.TB, server, client tls.Certificate) tls.ConnectionState {
	tb.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{server}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS13})
	cli := tls.Client(b, &tls.Config{Certificates: []tls.Certificate{client}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}) //nolint:gosec // the test checks the server side only
	errc := make(chan error, 1)
	go func() { errc <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		tb.Fatal(err)
	}
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
	return srv.ConnectionState()
}

// FuzzVerifySession feeds arbitrary session evidence to
// Verifier.VerifySession on a real connection. Beyond not panicking: a
// refusal is a typed *Error with a sentinel reason and no claims; an
// acceptance is evidence whose claims buffer carries DomainSession, this
// connection's exporter and the certificate key's hash, whose quote's
// report data is exactly SHA-256 of the buffer, with claims binding
// tcg-nonce over that report data; the verdict is the same when asked
// again (cache) and evidence accepted on this connection is refused on
// another one with ErrBindingMismatch.
func FuzzVerifySession(f *testing.F) {
	ctx := context.Background()
	tee := newFakeTEE(f, false)
	clientCert, err := NewCertificate(ctx, tee, CertOptions{})
	if err != nil {
		f.Fatal(err)
	}
	serverCert, err := NewCertificate(ctx, tee, CertOptions{})
	if err != nil {
		f.Fatal(err)
	}
	cs := pipeState(f, serverCert, clientCert)
	other := pipeState(f, serverCert, clientCert)
	nonce, err := SessionNonce(cs)
	if err != nil {
		f.Fatal(err)
	}
	spki := cs.PeerCertificates[0].RawSubjectPublicKeyInfo
	good, err := NewSessionEvidence(ctx, tee, spki, nonce)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	otherNonce, _ := SessionNonce(other)
	if ev, err := NewSessionEvidence(ctx, tee, spki, otherNonce); err == nil {
		f.Add(ev)
	}
	if ev, err := NewSessionEvidence(ctx, tee, spkiOf(f, newP256(f)), nonce); err == nil {
		f.Add(ev)
	}
	buf, _ := encodeClaimsBufferIn(DomainCertificate, spki, nonce, "sim")
	if ev, err := encodeTaggedEvidence(tee.quote(reportDataFor(buf)), buf); err == nil {
		f.Add(ev)
	}
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte("\xd9\xea\x60\x82\x40\x40"))
	qv := &fakeQuoteVerifier{trusted: []*ecdsa.PublicKey{&tee.attKey.PublicKey}}
	if _, err := NewVerifier(qv, VerifyOptions{}).VerifySession(ctx, cs, good); err != nil {
		f.Fatalf("the good seed is refused, so the acceptance invariants would go untested: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v := NewVerifier(qv, VerifyOptions{})
		c, err := v.VerifySession(ctx, cs, b)
		if err != nil {
			var re *Error
			if c != nil || !errors.As(err, &re) || re.Reason == nil {
				t.Fatalf("refusal %T %v with claims %v: want a typed *Error and no claims", err, err, c)
			}
		} else {
			ev, perr := ParseEvidence(pkix.Extension{Id: OIDTCGDICETaggedEvidence, Value: b}, 0)
			if perr != nil {
				t.Fatalf("accepted evidence does not parse: %v", perr)
			}
			q, qerr := dcap.ParseQuote(ev.Quote)
			if qerr != nil {
				t.Fatalf("accepted evidence's quote does not parse: %v", qerr)
			}
			rd := q.ReportData()
			switch {
			case ev.Claims == nil || ev.Claims.Domain != DomainSession:
				t.Fatalf("accepted evidence without the session domain: %+v", ev.Claims)
			case !bytes.Equal(ev.Claims.Nonce, nonce):
				t.Fatal("accepted evidence whose nonce is not this connection's exporter")
			case !CheckBinding(ev, q, spki).Binds:
				t.Fatal("accepted evidence that does not bind the certificate key")
			case !exactReportData(rd, ev.ClaimsBuffer):
				t.Fatal("accepted evidence whose report data is not exactly SHA-256 of its claims buffer")
			case c.Binding != claims.BindingTCGNonce || !bytes.Equal(c.ReportData, rd[:]):
				t.Fatalf("claims binding %q over report data %x, want tcg-nonce over the quote's", c.Binding, c.ReportData)
			}
			if _, err := v.VerifySession(ctx, other, b); !errors.Is(err, ErrBindingMismatch) {
				t.Fatalf("evidence accepted on one connection, on another: %v; want ErrBindingMismatch", err)
			}
		}
		c2, err2 := v.VerifySession(ctx, cs, b)
		if (err == nil) != (err2 == nil) || (c == nil) != (c2 == nil) {
			t.Fatalf("verdict changed when asked again: %v then %v", err, err2)
		}
	})
}

// reportDataFor is SHA-256(buf) followed by zeros.
func reportDataFor(buf []byte) [64]byte {
	var rd [64]byte
	h := sha256.Sum256(buf)
	copy(rd[:], h[:])
	return rd
}
