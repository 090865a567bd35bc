// Package devmode holds the embedded defaults that let asps run end to end
// with no TEE and no set-up: a simulator PKI, a demo policy, demo secrets,
// a demo enclave, and a server that trusts the simulator's root — and says
// so. Nothing here is ever used by a production server.
package devmode

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/asps-project/asps/attest"
	"github.com/asps-project/asps/audit"
	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/policy"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/server"
	"github.com/asps-project/asps/store"
)

// The demo workloads' identities.
var (
	DemoMrEnclave = sha256.Sum256([]byte("asps demo enclave"))
	DemoMrSigner  = sha256.Sum256([]byte("asps demo signer"))
	DemoMrTD      = sha512.Sum384([]byte("asps demo trust domain"))
	DemoRtmr1     = sha512.Sum384([]byte("asps demo kernel and command line"))
	DemoRtmr2     = sha512.Sum384([]byte("asps demo command line and initrd"))
	OtherEnclave  = sha256.Sum256([]byte("some other enclave"))
	// DemoServerMrEnclave is the dev server's own (simulated) enclave
	// when it runs "in a TEE" (Options.ServerAttester).
	DemoServerMrEnclave = sha256.Sum256([]byte("asps demo server enclave"))
)

const (
	DemoIsvProdID = 1
	DemoIsvSVN    = 2
)

// DemoSecrets are the file store's demo values.
func DemoSecrets() map[string][]byte {
	key, _ := hex.DecodeString("42cd4b7f1e0a9c3d5b6f8e2a1c4d7b9e0f3a5c8d2b4e6f1a3c5d7e9b0a2c4e6f")
	return map[string][]byte{
		"demo-key":    key,
		"db-password": []byte("correct horse battery staple"),
		"tdx-token":   []byte("token-for-the-demo-trust-domain"),
		"other-app":   []byte("a secret the demo enclave may not read"),
	}
}

// DemoPolicy is the demo policy (YAML): the demo enclave may read
// demo-key and db-password, the demo TD tdx-token.
func DemoPolicy() []byte {
	return fmt.Appendf(nil, `# asps demo policy: simulator evidence only.
allow_simulated: true
apps:
  - id: demo-enclave
    tee: sgx
    mr_enclave: %x
    mr_signer: %x
    isv_prod_id: %d
    min_isv_svn: %d
    secrets:
      demo-key: demo-key
      db-password: db-password
  - id: demo-td
    tee: tdx
    mr_td: %x
    rtmr1: %x
    rtmr2: %x
    secrets:
      tdx-token: tdx-token
  - id: other
    tee: sgx
    mr_enclave: %x
    secrets:
      other-app: other-app
`, DemoMrEnclave, DemoMrSigner, DemoIsvProdID, DemoIsvSVN, DemoMrTD, DemoRtmr1, DemoRtmr2, OtherEnclave)
}

// DemoIdentity returns the demo enclave's (or TD's) identity.
func DemoIdentity(tee claims.TEE) sim.Identity {
	var id sim.Identity
	if tee == claims.TDX {
		id.MrTD = DemoMrTD
		id.Rtmr[1], id.Rtmr[2] = DemoRtmr1, DemoRtmr2
		return id
	}
	id.MrEnclave, id.MrSigner, id.IsvProdID, id.IsvSVN = DemoMrEnclave, DemoMrSigner, DemoIsvProdID, DemoIsvSVN
	return id
}

// Attester returns a simulated enclave or TD on pki with the given
// identity.
func Attester(pki *sim.PKI, tee claims.TEE, id sim.Identity) (*sim.Attester, error) {
	return sim.NewAttester(sim.Options{PKI: pki, TEE: tee, Identity: id})
}

// ServerAttester returns the dev server's own simulated enclave.
func ServerAttester(pki *sim.PKI) (*sim.Attester, error) {
	return Attester(pki, claims.SGX, sim.Identity{MrEnclave: DemoServerMrEnclave, MrSigner: DemoMrSigner})
}

// Options configure a dev server.
type Options struct {
	// Listen is the address (default 127.0.0.1:0, a random port).
	Listen string
	// Dir keeps the simulator PKI across restarts and receives
	// server.pin; empty means an ephemeral PKI from a fixed seed.
	Dir string
	// Logger (default: discard).
	Logger *slog.Logger
	// Audit receives the audit records (nil: the log only).
	Audit *audit.Logger
	// Policy and Secrets override the demo ones; Store replaces the
	// memory store altogether.
	Policy  []byte
	Secrets map[string][]byte
	Store   store.Store
	// ServerAttester, when set, makes the server present an RA-TLS
	// certificate from it (a server in a TEE: mutual attestation) instead
	// of an ordinary self-signed one. AttestedServer does the same with
	// the demo server enclave (ServerAttester) on the dev PKI.
	ServerAttester attest.Attester
	AttestedServer bool
}

// Env is a running dev server.
type Env struct {
	PKI       *sim.PKI
	Addr      string
	ServerPin [32]byte
	Server    *server.Server
	Policy    *policy.Holder
	Store     store.Store
	DCAP      *dcap.Verifier
	// RATLS is the server's RA-TLS verifier (its verdict-cache counters).
	RATLS *ratls.Verifier
	// PolicyPath is the policy file the server watches.
	PolicyPath string
	tmp        string
	done       chan error
}

// Start starts a dev server that trusts the simulator's root.
func Start(ctx context.Context, o Options) (*Env, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Audit == nil {
		o.Audit = audit.New(nil, o.Logger)
	}
	var pki *sim.PKI
	var err error
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return nil, err
		}
		pki, err = sim.LoadOrCreatePKI(filepath.Join(o.Dir, "pki"), nil)
	} else {
		pki, err = sim.DefaultPKI()
	}
	if err != nil {
		return nil, fmt.Errorf("dev: simulator PKI: %w", err)
	}
	polBytes := o.Policy
	if polBytes == nil {
		polBytes = DemoPolicy()
	}
	// The policy lives in a file, so a dev server can show reloads: edit
	// DIR/policy.yaml and it takes effect (a bad edit keeps the old one).
	polDir := o.Dir
	tmp := ""
	if polDir == "" {
		if tmp, err = os.MkdirTemp("", "asps-dev-"); err != nil {
			return nil, err
		}
		polDir = tmp
	}
	polPath := filepath.Join(polDir, "policy.yaml")
	if _, err := os.Stat(polPath); err != nil || o.Policy != nil {
		if err := os.WriteFile(polPath, polBytes, 0o600); err != nil {
			return nil, err
		}
	}
	holder, err := policy.NewHolder(polPath, nil)
	if err != nil {
		return nil, fmt.Errorf("dev: policy: %w", err)
	}
	secrets := o.Secrets
	if secrets == nil {
		secrets = DemoSecrets()
	}
	var st store.Store = store.NewMemory(secrets)
	if o.Store != nil {
		st = o.Store
	}

	// Collateral for the simulated platforms, renewed as it ages.
	dv := dcap.NewVerifier(dcap.WithTrustAnchors(pki.Root))
	cols, err := newSimCollateral(pki)
	if err != nil {
		return nil, err
	}
	qv := &ratls.DCAPVerifier{Verifier: dv, Collateral: cols.get}
	// Debug enclaves pass the RA-TLS layer; the policy refuses them unless
	// an app allows debug, with a reason and an audit record.
	rv := ratls.NewVerifier(qv, ratls.VerifyOptions{AllowDebug: true})

	cert, pin, err := SelfSignedServerCert("asps dev server")
	if err != nil {
		return nil, err
	}
	if o.AttestedServer && o.ServerAttester == nil {
		if o.ServerAttester, err = ServerAttester(pki); err != nil {
			return nil, err
		}
	}
	if o.ServerAttester != nil {
		if cert, err = ratls.NewCertificate(ctx, o.ServerAttester, ratls.CertOptions{SubjectCN: "asps server"}); err != nil {
			return nil, fmt.Errorf("dev: server RA-TLS certificate: %w", err)
		}
		pin = ratls.SPKIHash(cert.Leaf)
	}
	srv, err := server.New(server.Options{
		Certificate: cert, Verifier: rv, Policy: holder, Store: st, Audit: o.Audit, Logger: o.Logger, Dev: true,
	})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("dev: listen: %w", err)
	}
	env := &Env{PKI: pki, Addr: l.Addr().String(), ServerPin: pin, Server: srv, Policy: holder, Store: st, DCAP: dv, RATLS: rv,
		PolicyPath: polPath, tmp: tmp, done: make(chan error, 1)}
	if o.Dir != "" {
		if err := os.WriteFile(filepath.Join(o.Dir, "server.pin"), []byte(hex.EncodeToString(pin[:])+"\n"), 0o600); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(o.Dir, "server.addr"), []byte(env.Addr+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	go func() { env.done <- srv.Serve(l) }()
	return env, nil
}

// Stop stops the server gracefully.
func (e *Env) Stop() {
	e.Server.GracefulStop()
	<-e.done
	if e.tmp != "" {
		os.RemoveAll(e.tmp)
	}
}

// Client dials the dev server as a simulated workload with the given
// identity.
func (e *Env) Client(ctx context.Context, tee claims.TEE, id sim.Identity) (*client.Client, error) {
	a, err := Attester(e.PKI, tee, id)
	if err != nil {
		return nil, err
	}
	return client.Dial(ctx, client.Config{Server: e.Addr, Attester: a, ServerAuth: ratls.ServerByPin(e.ServerPin)})
}

// SelfSignedServerCert makes the server's ordinary TLS certificate (ECDSA
// P-256), and returns the SHA-256 of its SubjectPublicKeyInfo for clients
// to pin.
func SelfSignedServerCert(cn string) (tls.Certificate, [32]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, [32]byte{}, err
	}
	return SelfSignedServerCertFromKey(cn, k)
}

// SelfSignedServerCertFromKey is SelfSignedServerCert for a key the caller
// keeps (so the pin, the key's SPKI hash, survives restarts).
func SelfSignedServerCertFromKey(cn string, k *ecdsa.PrivateKey) (tls.Certificate, [32]byte, error) {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return tls.Certificate{}, [32]byte{}, err
	}
	c, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: c}, sha256.Sum256(c.RawSubjectPublicKeyInfo), nil
}

// ServerVerifier returns what a workload uses to attest a dev server that
// runs in a (simulated) TEE: the server's quote must verify under the
// simulator root and its claims pass check.
func (e *Env) ServerVerifier(check func(*claims.Claims) error) (*ratls.Verifier, error) {
	return e.ServerVerifierWith(ratls.VerifyOptions{Check: check})
}

// ServerVerifierWith is ServerVerifier with all the verification options:
// a workload judging the server by a server policy passes the judge's
// Check and AllowDebug (see client.ServerJudge).
func (e *Env) ServerVerifierWith(opts ratls.VerifyOptions) (*ratls.Verifier, error) {
	cols, err := newSimCollateral(e.PKI)
	if err != nil {
		return nil, err
	}
	qv := &ratls.DCAPVerifier{Verifier: dcap.NewVerifier(dcap.WithTrustAnchors(e.PKI.Root)), Collateral: cols.get}
	return ratls.NewVerifier(qv, opts), nil
}
