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
	"os/exec"
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

// The three tiers of `asps bench verify` (issue 12): what the verifier
// may have remembered before each quote.
var benchTiers = []string{"cold", "new_platform", "warm"}

func benchVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench verify", stderr)
	var vf verifyFlags
	vf.register(fs)
	dur := fs.Duration("duration", 6*time.Second, "measuring time per tier, split into --samples samples")
	samples := fs.Int("samples", 5, "samples per tier (the figure is their median)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "concurrent verifiers (1: one core)")
	qvl := fs.String("dcap-qvl", "auto", "also time dcap-qvl (python3 -m pip install dcap-qvl==0.7.0) on the same inputs, interleaved: auto (when installed), yes, no")
	qvlScript := fs.String("dcap-qvl-script", "scripts/bench_vs_dcapqvl.py", "the script that times dcap-qvl")
	asJSON := fs.Bool("json", false, "print the figures as one JSON object")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || vf.collateral == "" || *samples < 1 || *workers < 1 {
		return &exitError{code: 2, msg: "usage: asps bench verify QUOTE --collateral FILE --at RFC3339 [--workers N] [--duration D] [--samples K] [--dcap-qvl auto|yes|no] [--json]"}
	}
	quote, err := readQuoteFile(pos[0])
	if err != nil {
		return err
	}
	// The collateral is parsed once, outside every loop, as dcap-qvl is
	// given it.
	_, col, at, err := vf.build()
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	var base []dcap.Option
	if vf.trustRoot != "" {
		b, err := os.ReadFile(vf.trustRoot)
		if err != nil {
			return &exitError{code: 2, msg: "--trust-root: " + err.Error()}
		}
		roots, err := dcap.ParseChainPEM(b, "trust root")
		if err != nil {
			return &exitError{code: 2, msg: "--trust-root: " + err.Error()}
		}
		base = append(base, dcap.WithTrustAnchors(roots...))
	}
	// newVerifier returns a verifier that has verified the quote once.
	newVerifier := func(opts ...dcap.Option) (*dcap.Verifier, error) {
		v := dcap.NewVerifier(append(append([]dcap.Option{}, base...), opts...)...)
		if _, err := v.Verify(quote, col, at); err != nil {
			return nil, fmt.Errorf("the quote does not verify, nothing to measure: %w", err)
		}
		return v, nil
	}
	runQVL := false
	switch *qvl {
	case "yes":
		runQVL = true
	case "auto":
		runQVL = exec.Command("python3", "-c", "import dcap_qvl").Run() == nil
	case "no":
	default:
		return &exitError{code: 2, msg: "--dcap-qvl: auto, yes or no"}
	}
	if runQVL {
		if _, err := os.Stat(*qvlScript); err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("--dcap-qvl-script %s: %v (run from the repository root)", *qvlScript, err)}
		}
	}

	per := *dur / time.Duration(*samples)
	rates := map[string][]float64{}
	var qvlRates []float64
	// Samples are interleaved (cold, new platform, warm, dcap-qvl; then
	// again), so that a change in the machine's load touches every tier.
	for range *samples {
		for _, tier := range benchTiers {
			r, err := benchTier(tier, *workers, per, quote, col, at, newVerifier)
			if err != nil {
				return err
			}
			rates[tier] = append(rates[tier], r)
		}
		if runQVL {
			r, err := timeDCAPQVL(*qvlScript, per, *workers, pos[0], vf.collateral, vf.trustRoot, at)
			if err != nil {
				return fmt.Errorf("dcap-qvl: %w", err)
			}
			qvlRates = append(qvlRates, r)
		}
	}
	out := map[string]any{"workers": *workers, "samples": *samples, "sample_seconds": per.Seconds(), "gomaxprocs": runtime.GOMAXPROCS(0)}
	for _, tier := range benchTiers {
		out[tier+"_quotes_per_sec"] = median(rates[tier])
		out[tier+"_us_per_quote_per_worker"] = 1e6 * float64(*workers) / median(rates[tier])
		out[tier+"_samples"] = rates[tier]
	}
	if runQVL {
		q := median(qvlRates)
		out["dcap_qvl_quotes_per_sec"] = q
		out["dcap_qvl_samples"] = qvlRates
		out["dcap_qvl_processes"] = *workers
		for _, tier := range benchTiers {
			out[tier+"_vs_dcap_qvl"] = median(rates[tier]) / q
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintf(stdout, "%d worker(s), median of %d samples of %.1fs per tier\n", *workers, *samples, per.Seconds())
	for _, tier := range benchTiers {
		fmt.Fprintf(stdout, "%-13s %9.0f quotes/s  %7.0f us per quote per worker", tier, median(rates[tier]), out[tier+"_us_per_quote_per_worker"])
		if runQVL {
			fmt.Fprintf(stdout, "  %5.2fx dcap-qvl", out[tier+"_vs_dcap_qvl"])
		}
		fmt.Fprintln(stdout)
	}
	if runQVL {
		fmt.Fprintf(stdout, "%-13s %9.0f quotes/s (%d process(es), every signature every call)\n", "dcap-qvl", out["dcap_qvl_quotes_per_sec"], *workers)
	}
	return nil
}

// benchTier counts the quotes workers verify in d, at one tier:
//
//	cold: one verifier without caches: every signature, CRL and chain per
//	quote (the pinned root is configuration, not re-verified);
//	new_platform: each worker's verifier has verified the collateral, and
//	forgets the platform (PCK chain, QE report) before each quote;
//	warm: one verifier that has seen everything; a quote signature per quote.
func benchTier(tier string, workers int, d time.Duration, quote []byte, col *dcap.Collateral, at time.Time, newVerifier func(...dcap.Option) (*dcap.Verifier, error)) (float64, error) {
	verifiers := make([]*dcap.Verifier, workers)
	for i := range verifiers {
		if i > 0 && tier != "new_platform" {
			verifiers[i] = verifiers[0]
			continue
		}
		var opts []dcap.Option
		if tier == "cold" {
			opts = append(opts, dcap.WithCacheBytes(0, 0))
		}
		v, err := newVerifier(opts...)
		if err != nil {
			return 0, err
		}
		verifiers[i] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	t0 := time.Now()
	for _, v := range verifiers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if tier == "new_platform" {
					v.ForgetPlatforms()
				}
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
		return 0, e
	}
	return float64(n.Load()) / elapsed.Seconds(), nil
}

// timeDCAPQVL runs the dcap-qvl timing script on the same quote and
// collateral with procs processes for d, and returns its quotes/s.
func timeDCAPQVL(script string, d time.Duration, procs int, quotePath, colPath, rootPath string, at time.Time) (float64, error) {
	args := []string{script, "--files", fmt.Sprint(d.Seconds()), fmt.Sprint(procs), quotePath, colPath, at.UTC().Format(time.RFC3339)}
	if rootPath != "" {
		args = append(args, rootPath)
	}
	cmd := exec.Command("python3", args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	b, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	var r struct {
		QuotesPerSec float64 `json:"quotes_per_sec"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &r); err != nil || r.QuotesPerSec <= 0 {
		return 0, fmt.Errorf("unexpected output %q", b)
	}
	return r.QuotesPerSec, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
