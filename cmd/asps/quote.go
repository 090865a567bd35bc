package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/collateral"
)

func init() {
	register(command{name: "quote verify", summary: "verify a DCAP quote against collateral", run: quoteVerify})
	register(command{name: "quote inspect", summary: "decode a DCAP quote without verifying it", run: quoteInspect})
	register(command{name: "bench verify", summary: "measure quote verifications per second on this machine", run: benchVerify})
}

// readQuoteFile reads a quote stored raw, as hex, or as base64.
func readQuoteFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeQuote(b), nil
}

func decodeQuote(b []byte) []byte {
	t := bytes.TrimSpace(b)
	if len(t) > 0 && len(t)%2 == 0 {
		if d, err := hex.DecodeString(string(t)); err == nil {
			return d
		}
	}
	if d, err := base64.StdEncoding.DecodeString(string(t)); err == nil && len(d) > 2 && d[1] == 0 && d[0] >= 3 && d[0] <= 5 {
		return d
	}
	return b
}

type verifyFlags struct {
	collateral string
	at         string
	trustRoot  string
}

func (f *verifyFlags) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&f.collateral, "collateral", "", "collateral `FILE` (dcap-qvl JSON layout)")
	fs.StringVar(&f.at, "at", "", "verification time, RFC 3339 (default: now)")
	fs.StringVar(&f.trustRoot, "trust-root", "", "trust anchor `PEM` replacing Intel's SGX Root CA (tests, the simulator)")
}

func (f *verifyFlags) build() (*dcap.Verifier, *dcap.Collateral, time.Time, error) {
	at := time.Now()
	if f.at != "" {
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return nil, nil, at, fmt.Errorf("--at: %w", err)
		}
		at = t
	}
	var opts []dcap.Option
	if f.trustRoot != "" {
		b, err := os.ReadFile(f.trustRoot)
		if err != nil {
			return nil, nil, at, fmt.Errorf("--trust-root: %w", err)
		}
		roots, err := dcap.ParseChainPEM(b, "trust root")
		if err != nil {
			return nil, nil, at, fmt.Errorf("--trust-root: %w", err)
		}
		opts = append(opts, dcap.WithTrustAnchors(roots...))
	}
	var col *dcap.Collateral
	if f.collateral != "" {
		b, err := os.ReadFile(f.collateral)
		if err != nil {
			return nil, nil, at, fmt.Errorf("--collateral: %w", err)
		}
		if col, err = dcap.ParseCollateralJSON(b); err != nil {
			return nil, nil, at, fmt.Errorf("--collateral %s: %w", f.collateral, err)
		}
	}
	return dcap.NewVerifier(opts...), col, at, nil
}

func quoteVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("quote verify", stderr)
	var vf verifyFlags
	vf.register(fs)
	var cf collateralFlags
	cf.register(fs, false)
	asJSON := fs.Bool("json", false, "print the verdict as one JSON object")
	chainOnly := fs.Bool("chain-only", false, "check only the signature chain (no TCB info): status Unknown")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &exitError{code: 2, msg: "usage: asps quote verify QUOTE --collateral FILE [--at RFC3339] [--trust-root PEM] [--json]"}
	}
	quote, err := readQuoteFile(pos[0])
	if err != nil {
		return err
	}
	v, col, at, err := vf.build()
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	if col == nil && cf.set() {
		// From a bundle or a PCS/PCCS: what this quote's platform needs.
		q, err := dcap.ParseQuote(quote)
		if err != nil {
			return err
		}
		anchors := []*x509.Certificate{dcap.IntelRootCA()}
		if vf.trustRoot != "" {
			b, _ := os.ReadFile(vf.trustRoot)
			if anchors, err = dcap.ParseChainPEM(b, "trust root"); err != nil {
				return err
			}
		}
		src, closeSrc, err := cf.source(anchors, func() time.Time { return at })
		if err != nil {
			return err
		}
		defer closeSrc()
		c, _, err := collateral.GetForQuote(context.Background(), src, q)
		if err != nil {
			return fmt.Errorf("collateral: %w", err)
		}
		col = c
	}
	if col == nil && !*chainOnly {
		return &exitError{code: 2, msg: "--collateral FILE, --collateral-dir DIR or --pccs URL is required (or --chain-only)"}
	}
	var res *dcap.Result
	if *chainOnly {
		res, err = v.VerifyChain(quote, col, at)
	} else {
		res, err = v.Verify(quote, col, at)
	}
	out := map[string]any{}
	if q, perr := dcap.ParseQuote(quote); perr == nil {
		out = quoteFields(q)
	}
	if res != nil {
		for k, v := range res.Claims.Fields() {
			out[k] = v
		}
	}
	out["accepted"] = err == nil
	out["verify_at"] = at.UTC().Format(time.RFC3339)
	if err != nil {
		out["reason"] = err.Error()
		if r := dcap.ReasonOf(err); r != nil {
			out["reason_code"] = r.Error()
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		if e := enc.Encode(out); e != nil {
			return e
		}
	} else {
		printVerdict(stdout, out)
	}
	if err != nil {
		return &exitError{code: 1, msg: "rejected: " + err.Error()}
	}
	return nil
}

func printVerdict(w io.Writer, m map[string]any) {
	if acc, ok := m["accepted"].(bool); ok {
		if acc {
			fmt.Fprintf(w, "ACCEPTED  status %v", m["status"])
			if ids, _ := m["advisory_ids"].([]string); len(ids) > 0 {
				fmt.Fprintf(w, "  advisories %v", ids)
			}
			fmt.Fprintln(w)
		} else {
			fmt.Fprintf(w, "REJECTED  %v\n", m["reason"])
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "accepted" && k != "reason" && k != "reason_code" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-18s %v\n", k, m[k])
	}
}

func quoteInspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("quote inspect", stderr)
	asJSON := fs.Bool("json", false, "print as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &exitError{code: 2, msg: "usage: asps quote inspect QUOTE [--json]"}
	}
	quote, err := readQuoteFile(pos[0])
	if err != nil {
		return err
	}
	q, err := dcap.ParseQuote(quote)
	if err != nil {
		return err
	}
	out := quoteFields(q)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		return enc.Encode(out)
	}
	fmt.Fprintln(stdout, "(not verified)")
	printVerdict(stdout, out)
	return nil
}

// quoteFields describes a parsed quote, unverified.
func quoteFields(q *dcap.Quote) map[string]any {
	out := q.Claims().Fields()
	out["body_type"] = q.BodyType
	out["qe_vendor_id"] = hex.EncodeToString(q.Header.QEVendorID[:])
	out["qe_svn"] = q.Header.QESVN
	out["pce_svn"] = q.Header.PCESVN
	// The quote proper, the part its attestation key signs, and the zero
	// padding after it (non-zero bytes there are refused when parsing).
	out["quote_len"] = q.Len()
	out["signed_len"] = len(q.SignedData)
	out["zero_padding"] = q.Trailing
	if chain, err := dcap.ParseChainPEM(q.CertData.PCKCertChain, "pck chain"); err == nil {
		if ext, err := dcap.ParsePCKExtensions(chain[0]); err == nil {
			out["fmspc"] = ext.FMSPCHex()
			out["pce_id"] = ext.PCEIDHex()
			out["pck_tcb_components"] = ext.CompSVN
			out["pck_pcesvn"] = ext.PCESVN
		}
		out["pck_issuer"] = chain[0].Issuer.CommonName
	}
	return out
}

func benchVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench verify", stderr)
	var vf verifyFlags
	vf.register(fs)
	dur := fs.Duration("duration", 3*time.Second, "how long to measure the warm throughput")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "concurrent verifiers")
	asJSON := fs.Bool("json", false, "print cold_ms and warm_quotes_per_sec as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || vf.collateral == "" {
		return &exitError{code: 2, msg: "usage: asps bench verify QUOTE --collateral FILE --at RFC3339 [--duration D] [--json]"}
	}
	quote, err := readQuoteFile(pos[0])
	if err != nil {
		return err
	}
	// Cold: parse the collateral and verify with a fresh verifier.
	start := time.Now()
	v, col, at, err := vf.build()
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	if _, err := v.Verify(quote, col, at); err != nil {
		return fmt.Errorf("the quote does not verify, nothing to measure: %w", err)
	}
	cold := time.Since(start)

	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	t0 := time.Now()
	for range max(1, *workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := v.Verify(quote, col, at); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	if e, _ := firstErr.Load().(error); e != nil {
		return e
	}
	qps := float64(n.Load()) / elapsed.Seconds()
	coldMS := float64(cold.Microseconds()) / 1000
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{
			"cold_ms": coldMS, "warm_quotes_per_sec": qps, "warm_us_per_quote_per_worker": elapsed.Seconds() * 1e6 * float64(max(1, *workers)) / float64(n.Load()),
			"workers": *workers, "duration_s": elapsed.Seconds(), "quotes": n.Load(),
		})
	}
	fmt.Fprintf(stdout, "cold (parse collateral, fresh verifier, one quote): %.2f ms\n", coldMS)
	fmt.Fprintf(stdout, "warm: %.0f quotes/s with %d workers over %.1fs (%d quotes)\n", qps, *workers, elapsed.Seconds(), n.Load())
	return nil
}
