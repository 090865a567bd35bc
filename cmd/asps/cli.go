package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	flag "github.com/spf13/pflag"
)

// Set at build time:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD) -X main.date=$(date -u +%FT%TZ)" ./cmd/asps
//
// Without them the module version and VCS stamp of debug.ReadBuildInfo are
// used.
var (
	version = ""
	commit  = ""
	date    = ""
)

// versionInfo is the version, commit and build date of this binary.
func versionInfo() (v, c, d string) {
	v, c, d = version, commit, date
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				if d == "" {
					d = s.Value
				}
			case "vcs.modified":
				modified = s.Value
			}
		}
		if c == "" && rev != "" {
			c = rev
			if modified == "true" {
				c += "-dirty"
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return v, c, d
}

func versionLine() string {
	v, c, d := versionInfo()
	return fmt.Sprintf("asps %s (commit %s, built %s)", v, c, d)
}

// help is a command's synopsis (the arguments after its name) and examples.
type help struct {
	args, example string
}

// helps: every command's synopsis and examples, for `asps help X` and the
// man pages.
var helps = map[string]help{
	"demo": {"", "  asps demo"},
	"dev": {"[--listen ADDR] [--dev-dir DIR] [--attested-server]",
		"  asps dev                         # keeps its PKI, policy and pin in --dev-dir\n  asps dev --listen 127.0.0.1:0    # any free port; clients read it from the dev dir"},
	"fetch": {"[flags] [--] SECRET...",
		"  asps fetch --dev-dir ~/.config/asps/dev --format hex demo-key\n  asps fetch --server host:7443 --server-pin HEX --format json db-password api-token\n  asps fetch --dev-dir DIR --sim-mr-enclave HEX --sim-mr-signer HEX --sim-isv-prod-id 7 my-secret"},
	"whoami": {"[flags]",
		"  asps whoami --dev-dir DIR\n  asps whoami --dev-dir DIR --tee tdx --format json"},
	"run": {"[flags] [--env NAME=VAR] [--file NAME=PATH] [--] PROGRAM [ARGS...]",
		"  asps run --dev-dir DIR --env db-password=DB_PASSWORD -- ./app --serve\n  asps run --server host:7443 --server-pin HEX --file tls-key=/run/app/key.pem -- ./app"},
	"server": {"[flags]",
		"  asps server --policy policy.yaml --store file:secrets.yaml --pccs https://pccs.example:8081\n  asps server --config /etc/asps/config.yaml\n  asps server --policy p.yaml --store file:s.yaml --insecure-simulator-root root.pem --collateral-dir sim/   # dev only"},
	"policy check": {"[--format text|json] POLICY",
		"  asps policy check policy.yaml\n  asps policy check --format json policy.yaml"},
	"policy import": {"[--format intel|occlum] [--out FILE] INPUT",
		"  asps policy import --format intel intel-policy.json --out policy.yaml"},
	"quote verify": {"[flags] QUOTE",
		"  asps quote verify quote.bin --collateral collateral.json --json\n  asps quote verify quote.bin --pccs https://pccs.example:8081"},
	"quote inspect": {"[--json] QUOTE", "  asps quote inspect quote.bin --json"},
	"ratls inspect": {"[--json] [--allow-debug] CERT",
		"  asps ratls inspect cert.pem\n  asps ratls inspect --allow-debug gramine-debug-cert.der"},
	"sim quote": {"[flags] --out DIR",
		"  asps sim quote --out sim/                       # SGX quote, collateral and the simulator root\n  asps sim quote --tee tdx --quote-version 5 --out sim/"},
	"collateral fetch": {"[flags] --out DIR",
		"  asps collateral fetch --pccs https://api.trustedservices.intel.com --fmspc 00906ED50000 --out bundle/"},
	"collateral import": {"[--out DIR] FILE...", "  asps collateral import collateral.json --out bundle/"},
	"collateral serve":  {"--dir DIR [--listen ADDR]", "  asps collateral serve --dir bundle/ --listen 127.0.0.1:8081"},
	"bench provision":   {"[flags] SECRET...", "  asps bench provision --dev-dir DIR --clients 8 --duration 10s demo-key"},
	"bench verify":      {"[flags] [QUOTE --collateral FILE]", "  asps bench verify --duration 5s"},
	"bench flood":       {"[flags]", "  asps bench flood --server 127.0.0.1:7443 --pid PID --sources 64"},
}

// groups: the commands that only hold subcommands.
var groups = map[string]string{
	"policy":     "check and import policies",
	"quote":      "verify or decode DCAP quotes",
	"ratls":      "inspect RA-TLS certificates",
	"sim":        "simulated quotes, collateral and test roots (dev only)",
	"collateral": "fetch, import and serve DCAP collateral",
	"bench":      "load tests and measurements",
}

// flagCollector stands in for stderr while the tree is built: newFlags
// hands it the command's flag set.
type flagCollector struct {
	io.Writer
	fs *flag.FlagSet
}

// collectFlags runs c with --help to read the flags it defines; commands
// parse their flags before doing anything else.
func collectFlags(c command) *flag.FlagSet {
	col := &flagCollector{Writer: io.Discard}
	_ = c.run([]string{"--help"}, io.Discard, col)
	if col.fs == nil {
		return flag.NewFlagSet(c.name, flag.ContinueOnError)
	}
	return col.fs
}

// newRoot builds the command tree. ran records whether a command's own
// code ran: an error before that is cobra's (unknown command, bad
// arguments) and so a usage error.
func newRoot(stdout, stderr io.Writer, ran *bool) *cobra.Command {
	root := &cobra.Command{
		Use:   "asps",
		Short: "attestation and secret provisioning for SGX and TDX",
		Long: "asps — attestation and secret provisioning for SGX and TDX.\n\n" +
			"Workloads in enclaves or trust domains attest over RA-TLS and receive the\n" +
			"secrets their policy allows. Start with `asps demo`, then `asps dev`.\n\n" +
			"Exit codes: 0 success, 1 refused or failed, 2 usage error.",
		Version:           versionLine(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              cobra.NoArgs,
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError("%v", err) })

	parents := map[string]*cobra.Command{"": root}
	gnames := make([]string, 0, len(groups))
	for g := range groups {
		gnames = append(gnames, g)
	}
	sort.Strings(gnames)
	for _, g := range gnames {
		gc := &cobra.Command{
			Use:   g,
			Short: groups[g],
			Args: func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usageError("unknown command %q for %q; its commands: %s", args[0], cmd.CommandPath(), subNames(cmd))
				}
				return nil
			},
			RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		}
		parents[g] = gc
		root.AddCommand(gc)
	}
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		parent, leaf := "", n
		if i := strings.LastIndexByte(n, ' '); i >= 0 {
			parent, leaf = n[:i], n[i+1:]
		}
		p, ok := parents[parent]
		if !ok {
			panic("command " + n + " has no group") // a programming error, caught by every test
		}
		h := helps[n]
		fs := collectFlags(c)
		cc := &cobra.Command{
			Use:                strings.TrimSpace(leaf + " " + h.args),
			Short:              c.summary,
			Example:            h.example,
			DisableFlagParsing: true, // the command parses its own (same) flags
			RunE: func(cmd *cobra.Command, args []string) error {
				*ran = true
				err := c.run(args, stdout, stderr)
				if errors.Is(err, flag.ErrHelp) {
					return cmd.Help()
				}
				return err
			},
			ValidArgsFunction: func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					if vals := flagValues(n, strings.TrimLeft(args[len(args)-1], "-")); vals != nil && strings.HasPrefix(args[len(args)-1], "-") {
						var out []cobra.Completion
						for _, v := range vals {
							if strings.HasPrefix(v, toComplete) {
								out = append(out, v)
							}
						}
						return out, cobra.ShellCompDirectiveNoFileComp
					}
				}
				if !strings.HasPrefix(toComplete, "-") {
					return nil, cobra.ShellCompDirectiveDefault
				}
				var out []cobra.Completion
				fs.VisitAll(func(f *flag.Flag) {
					if !f.Hidden && strings.HasPrefix("--"+f.Name, toComplete) {
						out = append(out, cobra.CompletionWithDesc("--"+f.Name, firstLine(f.Usage)))
					}
				})
				return out, cobra.ShellCompDirectiveNoFileComp
			},
		}
		cc.Flags().AddFlagSet(fs)
		p.AddCommand(cc)
	}

	root.AddCommand(&cobra.Command{
		Use:     "version",
		Short:   "print the version, commit and build date",
		Args:    cobra.NoArgs,
		Example: "  asps version\n  asps --version",
		RunE: func(*cobra.Command, []string) error {
			*ran = true
			fmt.Fprintln(stdout, versionLine())
			return nil
		},
	})
	var manDir string
	man := &cobra.Command{
		Use:     "man --dir DIR",
		Short:   "write man pages for asps and every subcommand into a directory",
		Args:    cobra.NoArgs,
		Example: "  asps man --dir /usr/local/share/man/man1",
		RunE: func(cmd *cobra.Command, _ []string) error {
			*ran = true
			if manDir == "" {
				return usageError("--dir is required")
			}
			if err := os.MkdirAll(manDir, 0o755); err != nil {
				return fmt.Errorf("--dir: %w", err)
			}
			v, _, _ := versionInfo()
			hdr := &doc.GenManHeader{Title: "ASPS", Section: "1", Source: "asps " + v, Manual: "asps manual"}
			root.DisableAutoGenTag = true
			if err := doc.GenManTree(root, hdr, manDir); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			fmt.Fprintf(stdout, "man pages written to %s\n", manDir)
			return nil
		},
	}
	man.Flags().StringVar(&manDir, "dir", "", "write the pages into `DIR`")
	root.AddCommand(man)
	return root
}

// flagValues are the values of a command's enumerated flag, for shell
// completion (nil: any value).
func flagValues(cmd, name string) []string {
	switch name {
	case "tee":
		switch cmd {
		case "collateral fetch":
			return []string{"sgx", "tdx", "sgx,tdx"}
		case "server":
			return nil // a deprecated spelling of --attester
		}
		return []string{"sgx", "tdx"}
	case "attester":
		if cmd == "server" {
			return []string{"gramine", "occlum", "tsm"}
		}
		return []string{"auto", "gramine", "occlum", "tsm", "sim"}
	case "log-format":
		return []string{"json", "text"}
	case "format":
		switch cmd {
		case "fetch":
			return []string{"raw", "hex", "base64", "intel", "json"}
		case "policy import":
			return []string{"json", "yaml"}
		default:
			return []string{"text", "json"}
		}
	}
	return nil
}

func subNames(cmd *cobra.Command) string {
	var n []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			n = append(n, c.Name())
		}
	}
	return strings.Join(n, ", ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// runMain runs the command line and returns the process exit code (see
// exitCode). Errors are printed once, prefixed by the command's path.
func runMain(args []string, stdout, stderr io.Writer) int {
	ran := false
	root := newRoot(stdout, stderr, &ran)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	if !ran {
		var ee *exitError
		if !errors.As(err, &ee) {
			err = usageError("%v", err)
		}
	}
	path := "asps"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	if msg := plainError(err); msg != "" && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stderr, path+": "+terminalText(msg))
		if exitCode(err) == exitUsage {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
		}
	}
	return exitCode(err)
}

// alias adds old as a hidden, deprecated spelling of the flag canonical
// (they share one value), so scripts written for the old name keep working.
func alias(fs *flag.FlagSet, old, canonical string) {
	f := fs.Lookup(canonical)
	if f == nil {
		panic("alias of unknown flag " + canonical)
	}
	fs.AddFlag(&flag.Flag{
		Name: old, Value: f.Value, DefValue: f.DefValue, NoOptDefVal: f.NoOptDefVal,
		Usage: "deprecated spelling of --" + canonical, Hidden: true,
		Deprecated:  "use --" + canonical,
		Annotations: map[string][]string{aliasOf: {canonical}},
	})
}

const aliasOf = "asps-alias-of"
