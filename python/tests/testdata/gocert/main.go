// Command gocert prints an RA-TLS certificate made by the Go client
// (ratls.NewCertificate) with a simulated demo enclave, for the Python
// tests: `go run ./python/tests/testdata/gocert [-legacy] [-nonce HEX]`.
// It lives under testdata so that `go build ./...` and `go test ./...`
// leave it alone.
package main

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"os"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
)

func main() {
	legacy := flag.Bool("legacy", false, "add the Gramine legacy extension")
	nonce := flag.String("nonce", "", "nonce claim in hex")
	flag.Parse()
	if err := run(*legacy, *nonce); err != nil {
		fmt.Fprintln(os.Stderr, "gocert:", err)
		os.Exit(1)
	}
}

func run(legacy bool, nonceHex string) error {
	pki, err := sim.DefaultPKI()
	if err != nil {
		return err
	}
	a, err := devmode.Attester(pki, claims.SGX, devmode.DemoIdentity(claims.SGX))
	if err != nil {
		return err
	}
	opts := ratls.CertOptions{Legacy: legacy}
	if nonceHex != "" {
		if opts.Nonce, err = hex.DecodeString(nonceHex); err != nil {
			return fmt.Errorf("-nonce: %w", err)
		}
	}
	cert, err := ratls.NewCertificate(context.Background(), a, opts)
	if err != nil {
		return err
	}
	return pem.Encode(os.Stdout, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
}
