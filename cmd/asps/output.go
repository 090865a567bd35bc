package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/client"
)

// field is one labelled value of a command's output; the text and JSON
// forms are made from the same list, in the same order.
type field struct {
	key string
	val any // string, bool, uint32, []string, hexBytes, []field
}

// hexBytes prints as lower-case hex in text and JSON.
type hexBytes []byte

func (h hexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

// fields is an ordered JSON object.
type fields []field

func (fs fields) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		v, err := json.Marshal(f.val)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// whoamiFields: every field of the caller's claims a policy can select,
// under the policy's own names, then the policy's decision. Text the
// server sent is escaped (it cannot drive the terminal); JSON escapes it
// itself.
func whoamiFields(w *aspsv1.WhoAmIResponse, esc func(string) string) fields {
	advisories := make([]string, 0, len(w.GetAdvisoryIds()))
	for _, a := range w.GetAdvisoryIds() {
		advisories = append(advisories, esc(a))
	}
	out := fields{
		{"tee", esc(w.GetTee())},
		{"runtime", esc(w.GetRuntime())},
		{"quote_version", w.GetQuoteVersion()},
		{"simulated", w.GetSimulated()},
		{"debug", w.GetDebug()},
		{"status", esc(w.GetTcbStatus())},
		{"advisory_ids", advisories},
		{"fmspc", esc(w.GetFmspc())},
		{"tcb_date", esc(w.GetTcbDate())},
		{"collateral_expiry", esc(w.GetCollateralExpiry())},
		{"report_data", hexBytes(w.GetReportData())},
	}
	if s := w.GetSgx(); s != nil {
		out = append(out, field{"sgx", fields{
			{"mr_enclave", hexBytes(s.GetMrEnclave())},
			{"mr_signer", hexBytes(s.GetMrSigner())},
			{"isv_prod_id", s.GetIsvProdId()},
			{"isv_svn", s.GetIsvSvn()},
			{"config_id", hexBytes(s.GetConfigId())},
			{"config_svn", s.GetConfigSvn()},
			{"isv_ext_prod_id", hexBytes(s.GetIsvExtProdId())},
			{"isv_family_id", hexBytes(s.GetIsvFamilyId())},
			{"attributes", hexBytes(s.GetAttributes())},
			{"misc_select", s.GetMiscSelect()},
			{"cpu_svn", hexBytes(s.GetCpuSvn())},
			{"mode64", s.GetMode64()},
			{"provision_key", s.GetProvisionKey()},
			{"einittoken_key", s.GetEinittokenKey()},
			{"kss", s.GetKss()},
		}})
	}
	if t := w.GetTdx(); t != nil {
		td := fields{
			{"mr_td", hexBytes(t.GetMrTd())},
			{"rtmr0", hexBytes(t.GetRtmr0())},
			{"rtmr1", hexBytes(t.GetRtmr1())},
			{"rtmr2", hexBytes(t.GetRtmr2())},
			{"rtmr3", hexBytes(t.GetRtmr3())},
			{"td_attributes", hexBytes(t.GetTdAttributes())},
			{"xfam", hexBytes(t.GetXfam())},
			{"mr_config_id", hexBytes(t.GetMrConfigId())},
			{"mr_owner", hexBytes(t.GetMrOwner())},
			{"mr_owner_config", hexBytes(t.GetMrOwnerConfig())},
			{"mr_servicetd", hexBytes(t.GetMrServicetd())},
			{"tee_tcb_svn", hexBytes(t.GetTeeTcbSvn())},
			{"tee_tcb_svn2", hexBytes(t.GetTeeTcbSvn2())},
			{"mr_seam", hexBytes(t.GetMrSeam())},
			{"mr_signer_seam", hexBytes(t.GetMrSignerSeam())},
			{"seam_attributes", hexBytes(t.GetSeamAttributes())},
		}
		out = append(out, field{"tdx", td})
	}
	names := make([]string, len(w.GetSecretNames()))
	for i, n := range w.GetSecretNames() {
		names[i] = esc(n)
	}
	out = append(out,
		field{"matched_app", esc(w.GetMatchedApp())},
		field{"match_error", esc(w.GetMatchError())},
		field{"secret_names", names})
	return out
}

// printFields writes fields as aligned "key  value" lines, nested objects
// indented under their key.
func printFields(w io.Writer, fs fields, indent string) {
	width := 0
	for _, f := range fs {
		width = max(width, len(f.key))
	}
	for _, f := range fs {
		switch v := f.val.(type) {
		case fields:
			fmt.Fprintf(w, "%s%s:\n", indent, f.key)
			printFields(w, v, indent+"  ")
			continue
		case hexBytes:
			s := hex.EncodeToString(v)
			if s == "" {
				s = "-"
			}
			fmt.Fprintf(w, "%s%-*s  %s\n", indent, width, f.key, s)
		case []string:
			s := strings.Join(v, ", ")
			if s == "" {
				s = "-"
			}
			fmt.Fprintf(w, "%s%-*s  %s\n", indent, width, f.key, s)
		case string:
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(w, "%s%-*s  %s\n", indent, width, f.key, v)
		default:
			fmt.Fprintf(w, "%s%-*s  %v\n", indent, width, f.key, v)
		}
	}
}

// writeJSON writes v indented, with a final newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// printSecrets writes fetched secrets to stdout in format. Several secrets
// are labelled and separated in every format but raw (whose bytes are
// the secret alone, for a pipe): "NAME: VALUE" lines for hex, base64 and
// intel, an object per secret for json.
func printSecrets(stdout, stderr io.Writer, secrets []client.Secret, format string) error {
	labelled := len(secrets) > 1
	switch format {
	case "json":
		type out struct {
			Name   string `json:"name"`
			Value  string `json:"value_base64"`
			Hex    string `json:"value_hex"`
			Length int    `json:"length"`
		}
		list := make([]out, len(secrets))
		for i, s := range secrets {
			list[i] = out{s.Name, base64.StdEncoding.EncodeToString(s.Value), hex.EncodeToString(s.Value), len(s.Value)}
		}
		return writeJSON(stdout, map[string]any{"secrets": list})
	case "raw":
		if labelled {
			return usageError("--format raw prints one secret's bytes; for %d secrets use --format hex, base64 or json, or --out DIR", len(secrets))
		}
		for _, s := range secrets {
			if isTerminal(stdout) {
				// A value is the server's bytes: on a terminal they could
				// drive it. Piped or redirected, they pass untouched.
				fmt.Fprintf(stderr, "asps fetch: stdout is a terminal: %s is shown with control characters escaped (redirect it, or use --format hex, for its bytes)\n", quoteText(s.Name))
				fmt.Fprintln(stdout, client.EscapeText(string(s.Value)))
				continue
			}
			if _, err := stdout.Write(s.Value); err != nil {
				return err
			}
		}
		return nil
	}
	for _, s := range secrets {
		var v string
		switch format {
		case "hex":
			v = hex.EncodeToString(s.Value)
		case "base64":
			v = base64.StdEncoding.EncodeToString(s.Value)
		case "intel":
			v = secretLine(s.Value)
		default:
			return usageError("--format: raw, hex, base64, intel or json")
		}
		if labelled {
			fmt.Fprintf(stdout, "%s: %s\n", client.EscapeText(s.Name), v)
		} else {
			fmt.Fprintln(stdout, v)
		}
	}
	return nil
}
