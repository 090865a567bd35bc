package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/ratls"
)

func init() {
	register(command{name: "ratls inspect", summary: "show an RA-TLS certificate's evidence, its binding to the key, and its quotes' verification", run: ratlsInspect})
}

// ratlsInspectOutput is what `asps ratls inspect --json` prints: the
// certificate, one entry per evidence extension (binding and quote
// verification), and the verdict a server's RA-TLS verification reaches.
type ratlsInspectOutput struct {
	File string `json:"file"`
	*ratls.Report
	VerifyAt string `json:"verify_at"`
	Mode     string `json:"mode"` // "full" or "chain-only"
	// Accepted is the RA-TLS verdict on the whole certificate (self-
	// signature, validity at verify_at, the first evidence extension,
	// binding, quote); debug enclaves count as accepted only with
	// --allow-debug.
	Accepted   bool   `json:"accepted"`
	Reason     string `json:"reason,omitempty"`
	ReasonCode string `json:"reason_code,omitempty"`
}

func ratlsInspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ratls inspect", stderr)
	var vf verifyFlags
	vf.register(fs)
	asJSON := fs.Bool("json", false, "print as one JSON object")
	allowDebug := fs.Bool("allow-debug", false, "count a debug enclave or TD as acceptable in the verdict")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &exitError{code: 2, msg: "usage: asps ratls inspect CERT.pem [--collateral FILE] [--at RFC3339] [--trust-root PEM] [--allow-debug] [--json]"}
	}
	cert, err := readCertFile(pos[0])
	if err != nil {
		return err
	}
	dv, col, at, err := vf.build()
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	rep, err := ratls.Inspect(cert)
	if err != nil {
		return err
	}
	out := ratlsInspectOutput{File: pos[0], Report: rep, VerifyAt: at.UTC().Format(time.RFC3339), Mode: "chain-only"}
	if col != nil {
		out.Mode = "full"
	}

	// Each extension's quote, on its own.
	for i := range rep.Evidence {
		e := &rep.Evidence[i]
		if e.Quote() == nil {
			continue
		}
		var res *dcap.Result
		var verr error
		if col != nil {
			res, verr = dv.Verify(e.Quote(), col, at)
		} else {
			res, verr = dv.VerifyChain(e.Quote(), nil, at)
		}
		qv := &ratls.QuoteVerification{Mode: out.Mode, OK: verr == nil}
		if res != nil {
			c := res.Claims
			qv.Claims = &c
		}
		if verr != nil {
			qv.Error = verr.Error()
			if r := dcap.ReasonOf(verr); r != nil {
				qv.Reason = r.Error()
			}
		}
		e.Verification = qv
	}

	// The verdict a server would reach.
	atFn := func() time.Time { return at }
	v := ratls.NewVerifier(&ratls.DCAPVerifier{Verifier: dv, ChainOnly: col == nil, Now: atFn,
		Collateral: ratls.StaticCollateral(col),
	}, ratls.VerifyOptions{AllowDebug: *allowDebug, Now: atFn, CacheSize: -1})
	_, verr := v.Verify(context.Background(), cert)
	out.Accepted = verr == nil
	if verr != nil {
		out.Reason = verr.Error()
		out.ReasonCode = ratlsReason(verr)
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printRATLSReport(stdout, &out)
	}
	if verr != nil {
		return &exitError{code: 1, msg: "rejected: " + verr.Error()}
	}
	return nil
}

// ratlsReason names the reason of a ratls rejection: the ratls sentinel,
// and for a quote rejection dcap's reason too.
func ratlsReason(err error) string {
	var re *ratls.Error
	if !errors.As(err, &re) {
		return ""
	}
	s := re.Reason.Error()
	if r := dcap.ReasonOf(err); r != nil {
		s += ": " + r.Error()
	}
	return s
}

// readCertFile reads a DER certificate, or the first certificate of a PEM
// file. DER is tried first: an RA-TLS certificate's quote carries a PEM
// chain, which a PEM scan of DER bytes would find.
func readCertFile(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if c, err := x509.ParseCertificate(b); err == nil {
		return c, nil
	}
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, fmt.Errorf("%s: neither a DER certificate nor PEM with a CERTIFICATE block", path)
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return c, nil
		}
	}
}

func printRATLSReport(w io.Writer, o *ratlsInspectOutput) {
	if o.Accepted {
		fmt.Fprintf(w, "ACCEPTED  (%s verification at %s)\n", o.Mode, o.VerifyAt)
	} else {
		fmt.Fprintf(w, "REJECTED  %s\n", o.Reason)
	}
	fmt.Fprintf(w, "  %-20s %s\n", "subject", o.Subject)
	fmt.Fprintf(w, "  %-20s %s .. %s\n", "validity", o.NotBefore.Format(time.RFC3339), o.NotAfter.Format(time.RFC3339))
	fmt.Fprintf(w, "  %-20s %s\n", "key", o.Key)
	fmt.Fprintf(w, "  %-20s %s\n", "spki_sha256", o.SPKISHA256)
	fmt.Fprintf(w, "  %-20s %s (self-signed: %v)\n", "signature", o.SignatureAlgorithm, o.SelfSigned)
	if len(o.UnknownCritical) > 0 {
		fmt.Fprintf(w, "  %-20s %s\n", "unknown critical", strings.Join(o.UnknownCritical, ", "))
	}
	if len(o.Evidence) == 0 {
		fmt.Fprintln(w, "  no evidence extension")
	}
	for i, e := range o.Evidence {
		fmt.Fprintf(w, "evidence %d: %s (%s, %d bytes)\n", i+1, e.OID, e.Format, e.Size)
		if e.Error != "" {
			fmt.Fprintf(w, "  %-20s %s\n", "error", e.Error)
		}
		if e.QuoteVersion != 0 {
			fmt.Fprintf(w, "  %-20s v%d %s, %d bytes, debug %v\n", "quote", e.QuoteVersion, e.TEE, e.QuoteLen, e.Debug)
		}
		for _, f := range []struct {
			k string
			v fmt.Stringer
		}{{"mr_enclave", e.MrEnclave}, {"mr_signer", e.MrSigner}, {"mr_td", e.MrTd}, {"mr_seam", e.MrSeam}, {"report_data", e.ReportData}} {
			if s := f.v.String(); s != "" {
				fmt.Fprintf(w, "  %-20s %s\n", f.k, s)
			}
		}
		if e.IsvProdID != nil {
			fmt.Fprintf(w, "  %-20s %d / %d\n", "isv_prod_id / svn", *e.IsvProdID, *e.IsvSvn)
		}
		if e.FMSPC != "" {
			fmt.Fprintf(w, "  %-20s %s\n", "fmspc", e.FMSPC)
		}
		if e.CBORTag != 0 {
			fmt.Fprintf(w, "  %-20s %d, claims %v, pubkey-hash alg %d\n", "cbor tag", e.CBORTag, e.Claims, e.PubkeyHashAlg)
		}
		if e.BindsKey {
			fmt.Fprintf(w, "  %-20s yes: %s\n", "binds key", e.Binding)
		} else {
			fmt.Fprintf(w, "  %-20s NO: %s\n", "binds key", e.BindingError)
		}
		if qv := e.Verification; qv != nil {
			if qv.OK {
				status := ""
				if qv.Claims != nil {
					status = qv.Claims.TCBStatus
				}
				fmt.Fprintf(w, "  %-20s ok (%s), status %s\n", "quote verification", qv.Mode, status)
			} else {
				fmt.Fprintf(w, "  %-20s FAILED (%s): %s\n", "quote verification", qv.Mode, qv.Error)
			}
		}
	}
}
