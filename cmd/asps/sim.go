package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap/sim"
	flag "github.com/spf13/pflag"
)

func init() {
	register(command{name: "sim quote", summary: "write a simulated SGX/TDX quote with collateral and test root (never trusted by default)", run: simQuote})
}

// hexValue is a flag holding exactly len(dst) bytes of hex, or up to
// len(dst) bytes zero-padded when pad is set.
type hexValue struct {
	dst []byte
	pad bool
	set bool
}

func (h *hexValue) String() string {
	if h == nil || !h.set {
		return ""
	}
	return hex.EncodeToString(h.dst)
}

func (h *hexValue) Set(s string) error {
	b, err := claims.ParseHex(s)
	if err != nil {
		return err
	}
	if len(b) != len(h.dst) && !(h.pad && len(b) < len(h.dst)) {
		return fmt.Errorf("%d bytes, want %d", len(b), len(h.dst))
	}
	clear(h.dst)
	copy(h.dst, b)
	h.set = true
	return nil
}

// Type names the value in help.
func (h *hexValue) Type() string { return "hex" }

// uint16Value is a flag holding a uint16.
type uint16Value struct{ dst *uint16 }

func (u uint16Value) String() string {
	if u.dst == nil {
		return "0"
	}
	return strconv.Itoa(int(*u.dst))
}

func (u uint16Value) Type() string { return "uint16" }

func (u uint16Value) Set(s string) error {
	v, err := strconv.ParseUint(s, 0, 16)
	if err != nil {
		return fmt.Errorf("not a number 0..65535: %q", s)
	}
	*u.dst = uint16(v)
	return nil
}

func simQuote(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sim quote", stderr)
	var o sim.Options
	id := &o.Identity
	tee := fs.String("tee", "sgx", "`TEE`: sgx or tdx")
	fs.IntVar(&o.QuoteVersion, "quote-version", 0, "quote `VERSION`: 3, 4 or 5 (default 3 for SGX, 4 for TDX)")
	fs.IntVar(&o.BodyType, "body-type", 0, "v5 body `TYPE`: 1 SGX, 2 TD 1.0, 3 TD 1.5 (default for TDX v5)")
	hexFlag := func(name string, dst []byte, usage string) {
		fs.Var(&hexValue{dst: dst}, name, usage+" in `HEX`")
	}
	// SGX identity.
	hexFlag("mr-enclave", id.MrEnclave[:], "enclave MRENCLAVE, 32 bytes")
	hexFlag("mr-signer", id.MrSigner[:], "enclave MRSIGNER, 32 bytes")
	fs.Var(uint16Value{&id.IsvProdID}, "isv-prod-id", "enclave ISVPRODID `N`")
	fs.Var(uint16Value{&id.IsvSVN}, "isv-svn", "enclave ISVSVN `N`")
	hexFlag("config-id", id.ConfigID[:], "enclave CONFIGID, 64 bytes")
	fs.Var(uint16Value{&id.ConfigSVN}, "config-svn", "enclave CONFIGSVN `N`")
	hexFlag("attributes", id.Attributes[:], "enclave ATTRIBUTES, 16 bytes (default INIT|MODE64, XFRM 3)")
	// TDX identity.
	hexFlag("mr-td", id.MrTD[:], "TD MRTD, 48 bytes")
	for i := range 4 {
		hexFlag(fmt.Sprintf("rtmr%d", i), id.Rtmr[i][:], fmt.Sprintf("TD RTMR%d, 48 bytes", i))
	}
	hexFlag("mr-config-id", id.MrConfigID[:], "TD MRCONFIGID, 48 bytes")
	hexFlag("mr-owner", id.MrOwner[:], "TD MROWNER, 48 bytes")
	hexFlag("mr-owner-config", id.MrOwnerConfig[:], "TD MROWNERCONFIG, 48 bytes")
	hexFlag("td-attributes", id.TdAttributes[:], "TD TDATTRIBUTES, 8 bytes")
	hexFlag("xfam", id.Xfam[:], "TD XFAM, 8 bytes (default e71a060000000000)")
	hexFlag("mr-seam", id.MrSeam[:], "TDX module MRSEAM, 48 bytes")
	fs.BoolVar(&id.Debug, "debug", false, "set the debug attribute (a debug enclave or TD)")
	fs.Var(&hexValue{dst: o.ReportData[:], pad: true}, "report-data", "report data, up to 64 bytes in `HEX`, zero-padded")
	// Platform and collateral.
	fs.StringVar(&o.TCBStatus, "tcb-status", "", "platform TCB `STATUS`: "+strings.Join(sim.PlatformStatuses(), ", ")+" or "+sim.NoMatchingLevel+" (default UpToDate)")
	fs.StringVar(&o.QETCBStatus, "qe-tcb-status", "", "QE TCB `STATUS`: UpToDate, OutOfDate, Revoked or "+sim.NoMatchingLevel)
	fs.StringVar(&o.TDXModuleTCBStatus, "tdx-module-tcb-status", "", "TDX module TCB `STATUS`: UpToDate, OutOfDate or "+sim.NoMatchingLevel)
	fs.StringVar(&o.FMSPC, "fmspc", "", "platform `FMSPC`, 12 hex digits")
	pckCA := fs.String("pck-ca", "", "PCK certificate issuer `CA`: processor or platform (default processor for SGX, platform for TDX)")
	at := fs.String("at", "", "reference `TIME` (RFC 3339) at which the collateral is valid (default now)")
	// Faults, for testing verifiers.
	revoke := fs.String("revoke", "", "revoke `CERTS`: comma-separated pck, pck-ca, tcb-signing")
	expired := fs.String("expired-cert", "", "make `CERT` expired: pck, pck-ca, root or tcb-signing")
	fs.BoolVar(&o.CollateralExpired, "collateral-expired", false, "TCB info and QE identity past their next update")
	fs.BoolVar(&o.CRLExpired, "crl-expired", false, "CRLs past their next update")
	fs.BoolVar(&o.WrongFMSPC, "wrong-fmspc", false, "TCB info for another FMSPC")
	tamper := fs.String("tamper", "", "break `WHAT`: quote-signature, qe-report-signature, qe-report-data, tcb-info-signature, qe-identity-signature, qe-vendor")
	// Keys and output.
	seed := fs.String("seed", sim.DefaultSeed, "derive the test PKI from `SEED` (same seed, same root)")
	pkiDir := fs.String("pki", "", "load the test PKI from `DIR`, or create it there from --seed")
	out := fs.String("out", "", "write the case to `DIR`: quote.bin, collateral.json, root.pem, tcb_info.json, qe_identity.json, expected.json")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	usage := "usage: asps sim quote --tee sgx|tdx [identity flags] [--tcb-status STATUS] [--report-data HEX] [--seed S | --pki DIR] --out DIR"
	if len(pos) != 0 || *out == "" {
		return &exitError{code: 2, msg: usage}
	}
	o.TEE = claims.TEE(strings.ToLower(*tee))
	o.PCKCA = sim.PCKCA(*pckCA)
	o.ExpiredCert = sim.Cert(*expired)
	o.Tamper = sim.Tamper(*tamper)
	for _, r := range strings.Split(*revoke, ",") {
		switch strings.TrimSpace(r) {
		case "":
		case string(sim.CertPCK):
			o.RevokePCK = true
		case string(sim.CertPCKCA):
			o.RevokePCKCA = true
		case string(sim.CertTCBSigning):
			o.RevokeTCBSigning = true
		default:
			return &exitError{code: 2, msg: fmt.Sprintf("--revoke: unknown certificate %q (want pck, pck-ca, tcb-signing)", r)}
		}
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return &exitError{code: 2, msg: "--at: " + err.Error()}
		}
		o.Now = t
	}
	if *pkiDir != "" {
		o.PKI, err = sim.LoadOrCreatePKI(*pkiDir, []byte(*seed))
	} else {
		o.PKI, err = sim.NewPKI([]byte(*seed))
	}
	if err != nil {
		return err
	}
	c, err := sim.NewCase(o)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	if err := c.WriteDir(*out); err != nil {
		return err
	}
	co := c.Options
	kind := fmt.Sprintf("%s v%d", strings.ToUpper(string(co.TEE)), co.QuoteVersion)
	if co.QuoteVersion == 5 {
		kind += fmt.Sprintf(" body type %d", co.BodyType)
	}
	fmt.Fprintf(stdout, "wrote %s: simulated %s quote (%d bytes), collateral, root (key SHA-256 %s)\n", *out, kind, len(c.Quote), sim.RootKeyID(c.Root)[:16])
	if c.WantErr != nil {
		fmt.Fprintf(stdout, "a correct verifier rejects it: %v\n", c.WantErr)
	} else {
		fmt.Fprintf(stdout, "a correct verifier accepts it: status %s, advisories [%s]\n", c.Expected.Status, strings.Join(c.Expected.AdvisoryIDs, " "))
	}
	fmt.Fprintf(stdout, "verify: asps quote verify %[1]s/quote.bin --collateral %[1]s/collateral.json --trust-root %[1]s/root.pem --at %[2]s\n",
		*out, c.At.Format(time.RFC3339))
	return nil
}

var _ flag.Value = (*hexValue)(nil)
