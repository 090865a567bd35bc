package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/internal/fileread"
	"github.com/asps-project/asps/policy"
)

func init() {
	register(command{name: "policy check", summary: "validate a policy and print what each app may read", run: policyCheck})
	register(command{name: "policy import", summary: "convert an Intel ASPS or Occlum policy to the asps format", run: policyImport})
}

func policyCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy check", stderr)
	format := fs.String("format", "text", "output `FORMAT`: text or json")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("usage: asps policy check [--format text|json] FILE")
	}
	if *format != "text" && *format != "json" {
		return usageError("--format: text or json, not %s", quoteText(*format))
	}
	human := stdout // the text account; JSON carries the same notes
	if *format == "json" {
		human = io.Discard
	}
	var notes []string
	p, err := policy.Load(pos[0])
	if err != nil && (errors.Is(err, policy.ErrUnknownField) || errors.Is(err, policy.ErrSyntax)) {
		// Not our format: perhaps Intel's ASPS or Occlum's.
		data, rerr := fileread.Read(pos[0], policy.MaxFileSize)
		if rerr != nil {
			return rerr
		}
		imp, ierr := policy.Import(data)
		if errors.Is(ierr, policy.ErrUnknownFormat) {
			// Not a foreign format either: the error in ours says more.
			return &exitError{code: 1, msg: withPath(pos[0], err)}
		}
		if ierr != nil {
			return &exitError{code: 1, msg: withPath(pos[0], ierr)}
		}
		fmt.Fprintf(human, "%s: %s format, imported\n", pos[0], imp.Format)
		notes = append(notes, fmt.Sprintf("%s format, imported", imp.Format))
		for _, w := range imp.Warnings {
			fmt.Fprintf(human, "warning: %s\n", w)
			notes = append(notes, "warning: "+w)
		}
		p, err = imp.Policy, nil
	}
	if err != nil {
		return &exitError{code: 1, msg: withPath(pos[0], err)}
	}
	if *format == "json" {
		return writeJSON(stdout, policyJSON(p, notes))
	}
	return p.Describe(stdout)
}

// policyJSON is what policy check shows, for scripts: per app its
// selectors, accepted statuses and advisories, debug stance and the names
// (never references or tokens) of the secrets it may read.
func policyJSON(p *policy.Policy, notes []string) fields {
	hexOrNil := func(h claims.Hex) any {
		if h == nil {
			return nil
		}
		return h.String()
	}
	apps := make([]fields, 0, len(p.Apps))
	for _, a := range p.Apps {
		app := fields{{"id", a.ID}, {"tee", string(a.TEE)}, {"runtime", a.Runtime}}
		if s := a.SGX; s != nil {
			var prod any
			if s.IsvProdID != nil {
				prod = *s.IsvProdID
			}
			app = append(app, field{"sgx", fields{
				{"mr_enclave", hexOrNil(s.MrEnclave)}, {"mr_signer", hexOrNil(s.MrSigner)}, {"isv_prod_id", prod},
				{"min_isv_svn", s.MinIsvSvn}, {"config_id", hexOrNil(s.ConfigID)}, {"min_config_svn", s.MinConfigSvn},
			}})
		}
		if t := a.TDX; t != nil {
			app = append(app, field{"tdx", fields{
				{"mr_td", hexOrNil(t.MrTd)}, {"rtmr0", hexOrNil(t.Rtmr[0])}, {"rtmr1", hexOrNil(t.Rtmr[1])}, {"rtmr2", hexOrNil(t.Rtmr[2])}, {"rtmr3", hexOrNil(t.Rtmr[3])},
				{"mr_config_id", hexOrNil(t.MrConfigID)}, {"mr_owner", hexOrNil(t.MrOwner)}, {"mr_owner_config", hexOrNil(t.MrOwnerConfig)},
				{"mr_servicetd", hexOrNil(t.MrServiceTd)}, {"allow_sept_ve", t.AllowSeptVE},
			}})
		}
		advisories := a.AdvisoryIDs
		if advisories == nil {
			advisories = []string{}
		}
		app = append(app,
			field{"tcb_statuses", a.TCBStatuses},
			field{"advisory_ids", advisories},
			field{"allow_debug", a.AllowDebug},
			field{"binding", a.Binding},
			field{"min_tcb_evaluation_data_number", a.MinTCBEvalDataNumber},
			field{"store_token_set", a.StoreToken.IsSet()},
			field{"secrets", a.SecretNames()})
		apps = append(apps, app)
	}
	if notes == nil {
		notes = []string{}
	}
	return fields{
		{"source", p.Source}, {"sha256", p.Digest}, {"allow_simulated", p.AllowSimulated},
		{"min_tcb_evaluation_data_number", p.MinTCBEvalDataNumber}, {"notes", notes}, {"apps", apps},
	}
}

func policyImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy import", stderr)
	out := fs.String("out", "", "write the policy to `FILE` (mode 0600: it may hold store tokens); default stdout")
	format := fs.String("format", "", "json or yaml (default: from --out's extension, else yaml)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return &exitError{code: 2, msg: "usage: asps policy import POLICY [DYNAMIC_CONFIG | SECRET_CONFIG] [--out FILE]"}
	}
	data, err := fileread.Read(pos[0], policy.MaxFileSize)
	if err != nil {
		return err
	}
	var imp *policy.Imported
	if len(pos) == 2 {
		second, err := fileread.Read(pos[1], policy.MaxFileSize)
		if err != nil {
			return err
		}
		// Intel's policy with its dynamic_config, or Occlum's ra_config
		// with its secret_config.
		if imp, err = policy.ImportIntelASPS(data, second); err != nil {
			imp, err = policy.ImportOcclum(data, second)
		}
		if err != nil {
			return &exitError{code: 1, msg: err.Error()}
		}
	} else if imp, err = policy.Import(data); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	for _, w := range imp.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if len(imp.Inline) > 0 {
		fmt.Fprintf(stderr, "note: %d secret values were inline in the source; serve them from a file store (asps server --store file:PATH)\n", len(imp.Inline))
	}
	f := *format
	if f == "" {
		f = "yaml"
		if filepath.Ext(*out) == ".json" {
			f = "json"
		}
	}
	if *out == "" {
		return imp.Policy.Encode(stdout, f)
	}
	return writePrivate(*out, func(w io.Writer) error { return imp.Policy.Encode(w, f) })
}

// writePrivate writes path as a new file of mode 0600 and renames it over
// the old one: an existing file's mode (0644, say) never carries over to
// content that may hold store tokens, and a server watching path never
// sees it half-written.
func writePrivate(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// withPath prefixes err's message with the file it is about, unless the
// message already names it first (no "bad.yaml: bad.yaml: …").
func withPath(path string, err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, path+":") || strings.HasPrefix(msg, path+" ") {
		return msg
	}
	return path + ": " + msg
}
