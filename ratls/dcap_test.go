package ratls

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/internal/testdata"
)

func intelRootFromCorpus(t *testing.T) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(testdata.Read(t, "dcap", "intel-sgx-root-ca.pem"))
	if blk == nil {
		t.Fatal("intel-sgx-root-ca.pem: no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRealCertificatesChainVerify: the real certificates' quotes — every
// one, in every extension — chain to Intel's SGX Root CA (chain-only: their
// TCB info is not in the corpus), and the whole RA-TLS verification
// accepts the certificates through the dcap adapter.
func TestRealCertificatesChainVerify(t *testing.T) {
	root := intelRootFromCorpus(t)
	for _, tc := range realCerts {
		t.Run(tc.name, func(t *testing.T) {
			cert := readRealCert(t, tc.name)
			at := func() time.Time { return tc.at }
			dv := dcap.NewVerifier(dcap.WithTrustAnchors(root))
			evs, err := FindEvidence(cert, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				res, err := dv.VerifyChain(ev.Quote, nil, tc.at)
				if err != nil {
					t.Fatalf("%s: chain-only: %v", ev.OID, err)
				}
				if res.TCBStatus != claims.StatusUnknown || res.Simulated || res.FMSPC == "" {
					t.Errorf("%s: status %q simulated %v fmspc %q", ev.OID, res.TCBStatus, res.Simulated, res.FMSPC)
				}
			}
			for name, d := range map[string]*dcap.Verifier{"corpus root": dv, "embedded root": dcap.NewVerifier()} {
				v := NewVerifier(&DCAPVerifier{Verifier: d, ChainOnly: true, Now: at}, VerifyOptions{AllowDebug: true, Now: at})
				c, err := v.Verify(context.Background(), cert)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !c.Debug || c.TCBStatus != claims.StatusUnknown || c.SGX == nil {
					t.Errorf("%s: claims %+v", name, c)
				}
			}
			// Not in chain-only mode and no collateral: refused, saying so.
			v := NewVerifier(&DCAPVerifier{Verifier: dv, Now: at}, VerifyOptions{AllowDebug: true, Now: at})
			if _, err := v.Verify(context.Background(), cert); !errors.Is(err, dcap.ErrCollateralMissing) || !errors.Is(err, ErrQuoteRejected) {
				t.Errorf("without collateral: %v, want ErrQuoteRejected wrapping dcap.ErrCollateralMissing", err)
			}
		})
	}
}

// TestRealCertificatesUntrustedRoot: under another anchor (the
// simulator's) the real quotes are refused with dcap's reason.
func TestRealCertificatesUntrustedRoot(t *testing.T) {
	pki, err := sim.DefaultPKI()
	if err != nil {
		t.Fatal(err)
	}
	cert := readRealCert(t, "gramine-cert")
	at := func() time.Time { return realCerts[0].at }
	v := NewVerifier(&DCAPVerifier{Verifier: dcap.NewVerifier(dcap.WithTrustAnchors(pki.Root)), ChainOnly: true, Now: at},
		VerifyOptions{AllowDebug: true, Now: at})
	_, err = v.Verify(context.Background(), cert)
	if !errors.Is(err, ErrQuoteRejected) || !errors.Is(err, dcap.ErrUntrustedRoot) {
		t.Fatalf("%v, want ErrQuoteRejected wrapping dcap.ErrUntrustedRoot", err)
	}
	t.Log(err)
}

func simVerifier(a *sim.Attester) *DCAPVerifier {
	return &DCAPVerifier{
		Verifier: dcap.NewVerifier(dcap.WithTrustAnchors(a.Root())),
		Collateral: func(context.Context, *dcap.Quote) (*dcap.Collateral, CollateralInfo, error) {
			c, err := a.Collateral(time.Time{})
			return c, CollateralInfo{}, err
		},
	}
}

// TestSimulatorEndToEnd: certificates made with the simulator's attester
// verify completely (collateral, TCB level) through the dcap adapter, for
// SGX and TDX, and over a real TLS connection.
func TestSimulatorEndToEnd(t *testing.T) {
	id := sim.Identity{MrEnclave: [32]byte{1, 2, 3}, MrSigner: [32]byte{4, 5, 6}, IsvProdID: 3, IsvSVN: 9, MrTD: [48]byte{7, 8, 9}}
	for _, tc := range []struct {
		name string
		opts sim.Options
	}{
		{"sgx v3", sim.Options{Identity: id}},
		{"sgx v4", sim.Options{Identity: id, QuoteVersion: 4}},
		{"tdx v4", sim.Options{Identity: id, TEE: claims.TDX}},
		{"tdx v5", sim.Options{Identity: id, TEE: claims.TDX, QuoteVersion: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := sim.NewAttester(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := NewCertificate(context.Background(), a, CertOptions{Legacy: true})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Inspect(cert.Leaf)
			if err != nil {
				t.Fatal(err)
			}
			wantTEE := string(tc.opts.TEE)
			if wantTEE == "" {
				wantTEE = "sgx"
			}
			if len(rep.Evidence) != 2 {
				t.Errorf("%d evidence extensions, want 2", len(rep.Evidence))
			}
			for _, e := range rep.Evidence {
				if !e.BindsKey || e.Error != "" || e.TEE != wantTEE {
					t.Errorf("%s: binds %v tee %s error %q", e.OID, e.BindsKey, e.TEE, e.Error)
				}
			}
			v := NewVerifier(simVerifier(a), VerifyOptions{})
			c, err := v.Verify(context.Background(), cert.Leaf)
			if err != nil {
				t.Fatal(err)
			}
			if c.TCBStatus != claims.StatusUpToDate || !c.Simulated || c.CollateralExpiry.IsZero() {
				t.Errorf("status %q simulated %v expiry %v", c.TCBStatus, c.Simulated, c.CollateralExpiry)
			}
			switch {
			case c.SGX != nil:
				if !bytes.Equal(c.SGX.MrEnclave, id.MrEnclave[:]) {
					t.Errorf("mr_enclave %x", c.SGX.MrEnclave)
				}
			case c.TDX != nil:
				if !bytes.Equal(c.TDX.MrTd, id.MrTD[:]) {
					t.Errorf("mr_td %x", c.TDX.MrTd)
				}
			default:
				t.Fatal("no identity in claims")
			}

			// Over TLS, mutual: the server is attested too.
			srvCert, err := NewCertificate(context.Background(), a, CertOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cv := NewVerifier(simVerifier(a), VerifyOptions{})
			srv, cli := handshake(t, v.ServerConfig(srvCert), ClientConfig(cert, ServerByRATLS(cv)), v, cv)
			if srv.err != nil || cli.err != nil {
				t.Fatalf("server: %v; client: %v", srv.err, cli.err)
			}
			if srv.cerr != nil || cli.cerr != nil || srv.claims.TCBStatus != claims.StatusUpToDate || cli.claims.TCBStatus != claims.StatusUpToDate {
				t.Errorf("claims: server %v %v; client %v %v", srv.claims, srv.cerr, cli.claims, cli.cerr)
			}
		})
	}
	t.Run("debug refused", func(t *testing.T) {
		a, err := sim.NewAttester(sim.Options{Identity: sim.Identity{Debug: true}})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := NewCertificate(context.Background(), a, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewVerifier(simVerifier(a), VerifyOptions{}).Verify(context.Background(), cert.Leaf); !errors.Is(err, ErrDebugEnclave) {
			t.Fatalf("%v, want ErrDebugEnclave", err)
		}
	})
	t.Run("simulator root not trusted by default", func(t *testing.T) {
		a, err := sim.NewAttester(sim.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := NewCertificate(context.Background(), a, CertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dv := &DCAPVerifier{Verifier: dcap.NewVerifier(), Collateral: func(context.Context, *dcap.Quote) (*dcap.Collateral, CollateralInfo, error) {
			c, err := a.Collateral(time.Time{})
			return c, CollateralInfo{}, err
		}}
		_, err = NewVerifier(dv, VerifyOptions{}).Verify(context.Background(), cert.Leaf)
		if !errors.Is(err, dcap.ErrUntrustedRoot) {
			t.Fatalf("%v, want dcap.ErrUntrustedRoot", err)
		}
	})
}
