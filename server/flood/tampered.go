package flood

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/ratls"
)

// Requests under RA-TLS certificates that carry a real Intel quote
// (Config.RealQuote) re-bound to the attacker's key, with its PCK chain
// tampered: a leaf forged under Intel's real PCK CA (costs the server a
// chain signature check unless something cheaper refuses it first), or
// Intel's real chain with unique padding (once cached by raw bytes, it
// inflated the chain cache). Every request has a new key, a new
// certificate and a new TLS connection, so no verdict cache answers it.

// tamperedAttester answers every quote request with the real quote, its
// report data replaced, and certification data from chain.
type tamperedAttester struct {
	quote []byte
	chain func() ([]byte, error)
}

func (a *tamperedAttester) Name() string { return "sim" }

func (a *tamperedAttester) Quote(_ context.Context, rd [64]byte) ([]byte, error) {
	q, err := sim.SetReportData(a.quote, rd)
	if err != nil {
		return nil, err
	}
	chain, err := a.chain()
	if err != nil {
		return nil, err
	}
	return sim.ReplaceCertData(q, chain)
}

// chainOf returns the PEM blocks of a real quote's PCK chain (leaf, PCK CA,
// root) and the parsed leaf and CA.
func chainOf(quote []byte) (blocks []string, leaf, ca *x509.Certificate, err error) {
	q, err := dcap.ParseQuote(quote)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("flood: real quote: %w", err)
	}
	rest := q.CertData.PCKCertChain
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("flood: real quote's chain: %w", err)
		}
		certs = append(certs, c)
		blocks = append(blocks, string(pem.EncodeToMemory(b)))
	}
	if len(certs) < 2 {
		return nil, nil, nil, errors.New("flood: the real quote carries no PCK chain (certification data type 5)")
	}
	return blocks, certs[0], certs[1], nil
}

// forgedChain makes a new PCK leaf with the real leaf's contents and the
// real PCK CA's name as issuer, signed by a key that is not the CA's,
// followed by the real CA and root.
func forgedChain(blocks []string, leaf, ca *x509.Certificate) func() ([]byte, error) {
	var serial atomic.Int64
	return func() ([]byte, error) {
		forger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		parent := *ca
		parent.PublicKey = forger.Public() // CreateCertificate checks the signer against it
		tmpl := *leaf
		tmpl.SerialNumber = big.NewInt(serial.Add(1))
		// CreateCertificate writes the standard extensions from fields;
		// Intel's SGX extension (FMSPC, TCB, …) is copied as it is.
		tmpl.ExtraExtensions = nil
		for _, e := range leaf.Extensions {
			if e.Id.Equal(dcap.OIDSGXExtensions) {
				tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, e)
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, &tmpl, &parent, leaf.PublicKey, forger)
		if err != nil {
			return nil, fmt.Errorf("flood: forge a PCK leaf: %w", err)
		}
		return []byte(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + strings.Join(blocks[1:], "")), nil
	}
}

// paddedChain is the real chain with a unique line of junk before it.
func paddedChain(blocks []string) func() ([]byte, error) {
	var n atomic.Int64
	return func() ([]byte, error) {
		return []byte(fmt.Sprintf("pad %d\n", n.Add(1)) + strings.Join(blocks, "")), nil
	}
}

// tampered sends count requests, each under a new certificate from a, over
// a new connection from one of sources loopback addresses, and counts the
// status codes.
func tampered(ctx context.Context, c *Config, a *tamperedAttester, count int, codes map[string]int, mu *sync.Mutex) {
	names := []string{"demo-key"}
	for i := range count {
		if ctx.Err() != nil {
			return
		}
		code := func() string {
			cert, err := ratls.NewCertificate(ctx, a, ratls.CertOptions{})
			if err != nil {
				return "certificate: " + err.Error()
			}
			conf := ratls.ClientConfig(cert, ratls.ServerByPin())
			conf.VerifyConnection = nil // any server: the flood sends nothing secret
			if c.ServerAuth != nil {
				conf = ratls.ClientConfig(cert, *c.ServerAuth)
			}
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(2+i%c.Sources))}}
			cc, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)),
				grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }))
			if err != nil {
				return "dial: " + err.Error()
			}
			defer cc.Close()
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err = aspsv1.NewSecretsClient(cc).GetSecrets(rctx, &aspsv1.GetSecretsRequest{Names: names})
			return status.Code(err).String()
		}()
		mu.Lock()
		codes[code]++
		mu.Unlock()
	}
}
