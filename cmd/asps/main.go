// Command asps is the attestation and secret provisioning service: one
// binary whose subcommands are thin calls into the packages.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/asps-project/asps/client"
	flag "github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
)

// command is one subcommand (or a group's subcommand such as "quote
// verify"). Its run parses its own flags with newFlags; the command tree,
// help, completion and man pages come from cobra (see cli.go).
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

// Exit codes: one vocabulary for every command.
const (
	exitOK     = 0 // success
	exitFailed = 1 // refused, rejected or failed
	exitUsage  = 2 // the command line is wrong
)

// usageError is a command line the command cannot run (exit 2).
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// exitCode is the one place that maps an error to the process exit code:
// nil and a help request 0, a usage error 2, an exitError its own code,
// anything else (refused, rejected, failed) 1.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	default:
		return exitFailed
	}
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

// newFlags returns a flag set that reports errors instead of exiting.
// While the command tree is built (see collectFlags), stderr is a
// *flagCollector and the set is handed to it, so help, completion and man
// pages list the same flags the command parses.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("asps "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // help is cobra's (runMain prints it on flag.ErrHelp)
	if c, ok := stderr.(*flagCollector); ok {
		c.fs = fs
	}
	return fs
}

// parseInterspersed parses flags that may follow positional arguments
// ("asps quote verify q.bin --json"), returning the positionals. After
// "--" everything is positional: "asps fetch -- a --out x" asks for the
// secrets "a", "--out" and "x".
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	return parseFlags(fs, args)
}

// parseLeading parses flags up to the first positional argument (or "--"),
// returning it and everything after it untouched: "asps run --env a=B --
// prog --flag".
func parseLeading(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetInterspersed(false)
	return parseFlags(fs, args)
}

func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	// One vocabulary: every command with --json also takes --format
	// text|json, as whoami, fetch and policy check do.
	if j := fs.Lookup("json"); j != nil && j.Value.Type() == "bool" && fs.Lookup("format") == nil {
		fs.Var(formatJSON{j.Value}, "format", "output `FORMAT`: text or json (json is --json)")
	}
	if err := fs.Parse(singleDashCompat(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError("%v", err)
	}
	return fs.Args(), nil
}

// singleDashCompat keeps the Go-style spelling "-server ADDR" of the
// hand-rolled CLI working: a single-dash word naming a long flag of fs
// becomes "--server". Nothing after "--" (or, for a non-interspersed set,
// after the first positional) is touched.
func singleDashCompat(fs *flag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && fs.Lookup(name) != nil {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

// maxShownMessage bounds how much of a server's message is shown.
const maxShownMessage = 2048

// plainError is err's message for a person: a gRPC status reads
// "refused (PermissionDenied): …" or "server unreachable (Unavailable): …"
// instead of "rpc error: code = … desc = …", and an unreachable dev
// server comes with a hint.
func plainError(err error) string {
	msg := err.Error()
	var se *client.ServerError
	if !errors.As(err, &se) {
		return msg
	}
	raw := se.Error() // as it appears inside msg
	var what string
	switch se.Code {
	case codes.Unavailable:
		what = "server unreachable"
	case codes.DeadlineExceeded:
		what = "timed out"
	case codes.PermissionDenied, codes.Unauthenticated, codes.NotFound, codes.InvalidArgument,
		codes.FailedPrecondition, codes.ResourceExhausted, codes.OutOfRange, codes.AlreadyExists:
		what = "refused"
	default:
		what = "failed"
	}
	text := client.EscapeText(se.Message)
	if len(text) > maxShownMessage {
		cut := maxShownMessage
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	msg = strings.Replace(msg, raw, fmt.Sprintf("%s (%s): %s", what, se.Code, text), 1)
	if se.Code == codes.Unavailable {
		msg += "\nhint: is the server running at that address? In dev mode start it with `asps dev` (it writes server.addr into its --dev-dir)."
	}
	return msg
}

// formatJSON is --format text|json for a command whose flag is --json.
type formatJSON struct{ json flag.Value }

func (f formatJSON) String() string {
	if f.json != nil && f.json.String() == "true" {
		return "json"
	}
	return "text"
}

func (f formatJSON) Type() string { return "format" }

func (f formatJSON) Set(v string) error {
	switch v {
	case "json":
		return f.json.Set("true")
	case "text":
		return f.json.Set("false")
	}
	return fmt.Errorf("want text or json, got %s", quoteText(v))
}
