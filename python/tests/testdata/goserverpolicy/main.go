// Command goserverpolicy prints what the Go client says of server-policy
// files (client.LoadServerPolicy, outside dev mode), one JSON line per path
// argument: {"ok": true} or {"ok": false, "reasons": [...], "message": "..."},
// the reasons of every joined *policy.LoadError in order and the message
// after the "server policy PATH: " prefix. The Python tests compare
// ServerPolicy.load with it on generated files
// (test_server_policy_crosscheck.py).
//
// With -match POLICY it loads POLICY (dev mode: allow_simulated may be set)
// and judges claims.Claims read as JSON lines from standard input, printing
// one JSON line each: {"app": ID} or {"reason": ..., "message": ...} (the
// *policy.Denial). It lives under testdata so that `go build ./...` and
// `go test ./...` leave it alone.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/policy"
)

type verdict struct {
	OK      bool     `json:"ok"`
	Reasons []string `json:"reasons,omitempty"`
	Message string   `json:"message,omitempty"`
}

func main() {
	enc := json.NewEncoder(os.Stdout)
	if len(os.Args) == 3 && os.Args[1] == "-match" {
		if err := match(os.Args[2], enc); err != nil {
			fmt.Fprintln(os.Stderr, "goserverpolicy:", err)
			os.Exit(1)
		}
		return
	}
	for _, path := range os.Args[1:] {
		_, err := client.LoadServerPolicy(path, false)
		v := verdict{OK: err == nil}
		if err != nil {
			v.Reasons = reasonsOf(err)
			v.Message = strings.TrimPrefix(err.Error(), "server policy "+path+": ")
		}
		if err := enc.Encode(v); err != nil {
			os.Exit(1)
		}
	}
}

// reasonsOf lists the reason of every *policy.LoadError joined in err, or
// client.ErrServerPolicy's text.
func reasonsOf(err error) []string {
	var le *policy.LoadError
	if !errors.As(err, &le) && errors.Is(err, client.ErrServerPolicy) {
		return []string{client.ErrServerPolicy.Error()}
	}
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range u.Unwrap() {
			out = append(out, reasonsOf(e)...)
		}
		return out
	}
	if le, ok := err.(*policy.LoadError); ok {
		return []string{le.Reason.Error()}
	}
	if next := errors.Unwrap(err); next != nil {
		return reasonsOf(next)
	}
	if errors.Is(err, client.ErrServerPolicy) {
		return []string{client.ErrServerPolicy.Error()}
	}
	return []string{"other: " + err.Error()}
}

type judged struct {
	App     string `json:"app,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

func match(path string, enc *json.Encoder) error {
	p, err := client.LoadServerPolicy(path, true)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c claims.Claims
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return err
		}
		var j judged
		a, err := p.Match(&c)
		var d *policy.Denial
		switch {
		case err == nil:
			j.App = a.ID
		case errors.As(err, &d):
			j.Reason, j.Message = d.Reason.Error(), d.Error()
		default:
			return err
		}
		if err := enc.Encode(j); err != nil {
			return err
		}
	}
	return sc.Err()
}
