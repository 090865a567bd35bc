// Command asps is the attestation and secret provisioning service: one
// binary whose subcommands are thin calls into the packages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/asps-project/asps/client"
)

// command is one subcommand (or a group such as "quote verify").
type command struct {
	name    string // "quote verify"
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// register adds a subcommand; files of this package call it from init.
func register(c command) { commands[c.name] = c }

// exitError carries a process exit code; its message, if any, is printed.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	// Longest match: "quote verify" before "quote".
	for n := min(len(args), 2); n >= 1; n-- {
		c, ok := commands[strings.Join(args[:n], " ")]
		if !ok {
			continue
		}
		err := c.run(args[n:], stdout, stderr)
		var ee *exitError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ee):
			if ee.msg != "" {
				fmt.Fprintln(stderr, "asps "+c.name+": "+terminalText(ee.msg))
			}
			return ee.code
		default:
			fmt.Fprintln(stderr, "asps "+c.name+": "+terminalText(err.Error()))
			return 1
		}
	}
	fmt.Fprintf(stderr, "asps: unknown command %q\n\n", strings.Join(args[:min(len(args), 2)], " "))
	usage(stderr)
	return 2
}

// terminalText escapes the control characters of an error message line by
// line (see client.EscapeText), keeping its line breaks: text a server
// sent is escaped whole where it enters (client.ServerError), and this
// keeps anything else that reaches an error — a peer's certificate
// fields, say — from driving the operator's terminal.
func terminalText(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = client.EscapeText(l)
	}
	return strings.Join(lines, "\n")
}

// quoteText quotes a name for a message, escaping what a terminal would
// act on.
func quoteText(s string) string { return strconv.Quote(s) }

func usage(w io.Writer) {
	fmt.Fprintln(w, "asps — attestation and secret provisioning for SGX and TDX")
	fmt.Fprintln(w, "\nUsage: asps COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-22s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'asps COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("asps "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseInterspersed parses flags that may follow positional arguments
// ("asps quote verify q.bin --json"), returning the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
