package ratls

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

type handshakeResult struct {
	err    error
	state  tls.ConnectionState
	claims *claims.Claims
	cerr   error // the verifier's PeerClaims
}

// handshake runs one TLS connection over 127.0.0.1 between a real listener
// with serverCfg and a client with clientCfg. It returns the server's and
// the client's outcome; the client's includes the first read, which is
// where a TLS 1.3 client learns that the server refused its certificate.
// sv and cv are the verifiers behind the two configurations (nil where the
// side does not verify RA-TLS).
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config, sv, cv *Verifier) (srv, cli handshakeResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan handshakeResult, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- handshakeResult{err: err}
			return
		}
		defer raw.Close()
		conn := tls.Server(raw, serverCfg)
		var r handshakeResult
		if r.err = conn.HandshakeContext(ctx); r.err == nil {
			r.state = conn.ConnectionState()
			r.claims, r.cerr = peerClaims(ctx, sv, r.state)
			_, r.err = conn.Write([]byte("ok"))
		}
		done <- r
	}()
	d := &net.Dialer{Timeout: 5 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn := tls.Client(raw, clientCfg)
	if cli.err = conn.HandshakeContext(ctx); cli.err == nil {
		cli.state = conn.ConnectionState()
		cli.claims, cli.cerr = peerClaims(ctx, cv, cli.state)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(conn, buf); err != nil {
			cli.err = err
		} else if string(buf) != "ok" {
			cli.err = errors.New("unexpected reply " + string(buf))
		}
	} else {
		// Unblock the server.
		raw.Close()
	}
	srv = <-done
	return srv, cli
}

func TestHandshakeClientAttestation(t *testing.T) {
	tee := newFakeTEE(t, false)
	debugTEE := newFakeTEE(t, true)
	untrusted := newFakeTEE(t, false)
	qv := verifierFor(tee, debugTEE)

	serverCert, err := NewCertificate(context.Background(), tee, CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newCert := func(a *fakeTEE) tls.Certificate {
		c, err := NewCertificate(context.Background(), a, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := newCert(tee)
	keyA, keyB := newP256(t), newP256(t)
	stolen := tls.Certificate{Certificate: good.Certificate, PrivateKey: keyB}

	for _, tc := range []struct {
		name      string
		client    tls.Certificate
		opts      VerifyOptions
		reason    error  // errors.Is on the server's error
		also      error  // second errors.Is target
		serverMsg string // substring of the server's error when reason is nil
	}{
		{name: "ok", client: good},
		{name: "debug allowed", client: newCert(debugTEE), opts: VerifyOptions{AllowDebug: true}},
		{name: "quote binds another key", client: buildCert(t, certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, tee, spkiOf(t, keyB))}}), reason: ErrBindingMismatch},
		{name: "certificate without its private key", client: stolen, serverMsg: "invalid signature by the client certificate"},
		{name: "debug enclave refused", client: newCert(debugTEE), reason: ErrDebugEnclave},
		{name: "untrusted root", client: newCert(untrusted), reason: ErrQuoteRejected, also: dcap.ErrUntrustedRoot},
		{name: "no client certificate", client: tls.Certificate{}, serverMsg: "client didn't provide a certificate"},
		{name: "oversized extension", client: buildCert(t, certSpec{exts: []pkix.Extension{{Id: OIDTCGDICETaggedEvidence, Value: make([]byte, 100<<10)}}}), reason: ErrEvidenceTooLarge},
		{name: "malformed extension", client: buildCert(t, certSpec{exts: []pkix.Extension{{Id: OIDTCGDICETaggedEvidence, Value: []byte{0xd9, 0xea, 0x60, 0x01}}}}), reason: ErrMalformedEvidence},
		{name: "no evidence", client: buildCert(t, certSpec{}), reason: ErrNoEvidence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVerifier(qv, tc.opts)
			srv, cli := handshake(t, v.ServerConfig(serverCert), ClientConfig(tc.client, ServerByPin(SPKIHash(serverCert.Leaf))), v, nil)
			ok := tc.reason == nil && tc.serverMsg == ""
			if ok {
				if srv.err != nil || cli.err != nil {
					t.Fatalf("server: %v; client: %v", srv.err, cli.err)
				}
				if srv.cerr != nil {
					t.Fatalf("server claims: %v", srv.cerr)
				}
				if srv.state.Version != tls.VersionTLS13 {
					t.Errorf("version %x", srv.state.Version)
				}
				if !bytes.Equal(srv.claims.SGX.MrEnclave, tee.mrEnclave[:]) {
					t.Errorf("server sees mr_enclave %x", srv.claims.SGX.MrEnclave)
				}
				// The client authenticated the server by pin: no claims.
				if !errors.Is(cli.cerr, ErrNoClaims) {
					t.Errorf("client claims: %v, want ErrNoClaims", cli.cerr)
				}
				return
			}
			if srv.err == nil {
				t.Fatalf("server accepted, want %v %q", tc.reason, tc.serverMsg)
			}
			if tc.reason != nil && !errors.Is(srv.err, tc.reason) {
				t.Fatalf("server error %v, want %v", srv.err, tc.reason)
			}
			if tc.also != nil && !errors.Is(srv.err, tc.also) {
				t.Errorf("server error %v does not wrap %v", srv.err, tc.also)
			}
			if tc.serverMsg != "" && !strings.Contains(srv.err.Error(), tc.serverMsg) {
				t.Fatalf("server error %q lacks %q", srv.err, tc.serverMsg)
			}
			if cli.err == nil {
				t.Errorf("client saw no error")
			}
			t.Logf("server: %v; client: %v", srv.err, cli.err)
		})
	}
}

func TestHandshakeServerAuthentication(t *testing.T) {
	tee := newFakeTEE(t, false)
	untrusted := newFakeTEE(t, false)
	qv := verifierFor(tee)
	clientCert, err := NewCertificate(context.Background(), tee, CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raServer, err := NewCertificate(context.Background(), tee, CertOptions{Curve: nil})
	if err != nil {
		t.Fatal(err)
	}
	untrustedServer, err := NewCertificate(context.Background(), untrusted, CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keyA, keyB := newP256(t), newP256(t)
	badBinding := buildCert(t, certSpec{key: keyA, exts: []pkix.Extension{tcgExt(t, tee, spkiOf(t, keyB))}})
	caPool, caServer := testCA(t)
	otherPool, _ := testCA(t)

	measured := func(c *claims.Claims) error {
		if !bytes.Equal(c.SGX.MrEnclave, tee.mrEnclave[:]) {
			return errors.New("unexpected mr_enclave")
		}
		return nil
	}
	wrongMeasurement := func(*claims.Claims) error { return errors.New("mr_enclave is not the expected server") }

	for _, tc := range []struct {
		name   string
		server tls.Certificate
		auth   ServerAuth
		reason error  // errors.Is on the client's error
		msg    string // substring of the client's error
		claims bool   // the client learns the server's claims
	}{
		{name: "mutual attestation", server: raServer, auth: ServerByRATLS(NewVerifier(qv, VerifyOptions{Check: measured})), claims: true},
		{name: "server measurement refused", server: raServer, auth: ServerByRATLS(NewVerifier(qv, VerifyOptions{Check: wrongMeasurement})), reason: ErrClaimsRejected, msg: "not the expected server"},
		{name: "server quote binds another key", server: badBinding, auth: ServerByRATLS(NewVerifier(qv, VerifyOptions{})), reason: ErrBindingMismatch},
		{name: "server untrusted root", server: untrustedServer, auth: ServerByRATLS(NewVerifier(qv, VerifyOptions{})), reason: dcap.ErrUntrustedRoot},
		{name: "CA pool", server: caServer, auth: ServerByCA(caPool, "localhost")},
		{name: "CA pool, other CA", server: caServer, auth: ServerByCA(otherPool, "localhost"), msg: "certificate signed by unknown authority"},
		{name: "CA pool, wrong name", server: caServer, auth: ServerByCA(caPool, "other.example"), msg: "other.example"},
		{name: "pinned", server: raServer, auth: ServerByPin(SPKIHash(badBinding.Leaf), SPKIHash(raServer.Leaf))},
		{name: "pin mismatch", server: raServer, auth: ServerByPin(SPKIHash(badBinding.Leaf)), reason: ErrPinMismatch},
		{name: "no server authentication", server: raServer, auth: ServerAuth{}, reason: ErrNoVerifier},
		{name: "nil verifier", server: raServer, auth: ServerByRATLS(nil), reason: ErrNoVerifier},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sv := NewVerifier(qv, VerifyOptions{})
			srv, cli := handshake(t, sv.ServerConfig(tc.server), ClientConfig(clientCert, tc.auth), sv, tc.auth.verifier)
			if tc.reason == nil && tc.msg == "" {
				if srv.err != nil || cli.err != nil {
					t.Fatalf("server: %v; client: %v", srv.err, cli.err)
				}
				if srv.cerr != nil {
					t.Errorf("server claims: %v", srv.cerr)
				}
				if tc.claims {
					if cli.cerr != nil {
						t.Fatalf("client claims: %v", cli.cerr)
					}
					if cli.claims.TCBStatus != claims.StatusUpToDate {
						t.Errorf("client sees status %q", cli.claims.TCBStatus)
					}
				}
				return
			}
			if cli.err == nil {
				t.Fatalf("client accepted the server, want %v %q", tc.reason, tc.msg)
			}
			if tc.reason != nil && !errors.Is(cli.err, tc.reason) {
				t.Fatalf("client error %v, want %v", cli.err, tc.reason)
			}
			if !strings.Contains(cli.err.Error(), tc.msg) {
				t.Fatalf("client error %q lacks %q", cli.err, tc.msg)
			}
			if srv.err == nil {
				t.Errorf("server completed a handshake the client refused")
			}
			t.Logf("client: %v", cli.err)
		})
	}
}

func TestHandshakeRefusesTLS12(t *testing.T) {
	tee := newFakeTEE(t, false)
	cert, err := NewCertificate(context.Background(), tee, CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ClientConfig(cert, ServerByPin(SPKIHash(cert.Leaf)))
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	srv, cli := handshake(t, ServerConfig(cert, verifierFor(tee), VerifyOptions{}), cfg, nil, nil)
	if srv.err == nil || cli.err == nil || !strings.Contains(srv.err.Error(), "unsupported versions") {
		t.Fatalf("server: %v; client: %v; want a protocol version refusal", srv.err, cli.err)
	}
}

// testCA returns a pool with a fresh CA and a server certificate it issued
// for localhost and 127.0.0.1.
func testCA(t *testing.T) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	caKey := newP256(t)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key := newP256(t)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// peerClaims asks v for the peer's claims; with no verifier there are none.
func peerClaims(ctx context.Context, v *Verifier, cs tls.ConnectionState) (*claims.Claims, error) {
	if v == nil {
		return nil, fail("peer claims", ErrNoClaims, "no RA-TLS verifier on this side")
	}
	return v.PeerClaims(ctx, cs)
}
