package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/asps-project/asps/policy"
)

func init() {
	register(command{name: "policy check", summary: "validate a policy and print what each app may read", run: policyCheck})
	register(command{name: "policy import", summary: "convert an Intel ASPS or Occlum policy to the asps format", run: policyImport})
}

func policyCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy check", stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &exitError{code: 2, msg: "usage: asps policy check FILE"}
	}
	p, err := policy.Load(pos[0])
	if err != nil && (errors.Is(err, policy.ErrUnknownField) || errors.Is(err, policy.ErrSyntax)) {
		// Not our format: perhaps Intel's ASPS or Occlum's.
		data, rerr := os.ReadFile(pos[0])
		if rerr != nil {
			return rerr
		}
		imp, ierr := policy.Import(data)
		if ierr != nil {
			return &exitError{code: 1, msg: withPath(pos[0], ierr)}
		}
		fmt.Fprintf(stdout, "%s: %s format, imported\n", pos[0], imp.Format)
		for _, w := range imp.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		p, err = imp.Policy, nil
	}
	if err != nil {
		return &exitError{code: 1, msg: withPath(pos[0], err)}
	}
	return p.Describe(stdout)
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
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	var imp *policy.Imported
	if len(pos) == 2 {
		second, err := os.ReadFile(pos[1])
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
	w := stdout
	if *out != "" {
		file, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	return imp.Policy.Encode(w, f)
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
