package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

func init() {
	register(command{name: "run", summary: "fetch secrets, place them in environment variables or files, then exec a program", run: runCmd})
}

// mapping is NAME=TARGET, repeatable.
type mapping []struct{ name, target string }

func (m *mapping) String() string { return fmt.Sprint(*m) }

func (m *mapping) Type() string { return "NAME=TARGET" }

func (m *mapping) Set(v string) error {
	name, target, ok := strings.Cut(v, "=")
	if !ok || name == "" || target == "" {
		return fmt.Errorf("want SECRET=TARGET, got %q", v)
	}
	*m = append(*m, struct{ name, target string }{name, target})
	return nil
}

// runPlan is what asps run will do once the secrets arrive.
type runPlan struct {
	env, files mapping
	argv       []string
}

func (p *runPlan) names() []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range append(append(mapping{}, p.env...), p.files...) {
		if !seen[m.name] {
			seen[m.name] = true
			out = append(out, m.name)
		}
	}
	return out
}

// checkEnvTargets refuses --env targets that are not variable names, and
// two secrets for one variable (one would silently hide the other).
func (p *runPlan) checkEnvTargets() error {
	seen := map[string]string{}
	for _, e := range p.env {
		if strings.ContainsAny(e.target, "=\x00") {
			return fmt.Errorf("--env %s=%s: %s is not an environment variable name (no '=' or NUL)", e.name, quoteText(e.target), quoteText(e.target))
		}
		if prev, dup := seen[e.target]; dup {
			return fmt.Errorf("--env: secrets %s and %s both go to %s; give each variable one secret", quoteText(prev), quoteText(e.name), e.target)
		}
		seen[e.target] = e.name
	}
	return nil
}

// apply checks the environment values, writes the files, and returns the
// environment for the program and the files written. A secret replaces
// every inherited entry of its variable (getenv returns the first entry
// of a name, so an appended one would lose to a host-set value); each
// replacement is said on notes, by variable name only.
func (p *runPlan) apply(secrets map[string][]byte, environ []string, notes io.Writer) ([]string, []string, error) {
	if err := p.checkEnvTargets(); err != nil {
		return nil, nil, err
	}
	targets := make(map[string]int, len(p.env))
	for _, e := range p.env {
		targets[e.target] = 0
	}
	env := make([]string, 0, len(environ)+len(p.env))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := targets[name]; ok {
			targets[name]++
			continue
		}
		env = append(env, kv)
	}
	for _, e := range p.env {
		v := secrets[e.name]
		if strings.IndexByte(string(v), 0) >= 0 {
			return nil, nil, fmt.Errorf("--env %s: secret %s holds a NUL byte, which an environment variable cannot carry; use --file", e.target, quoteText(e.name))
		}
		env = append(env, e.target+"="+string(v))
		if n := targets[e.target]; n > 0 {
			entries := "entry"
			if n > 1 {
				entries = "entries"
			}
			fmt.Fprintf(notes, "asps run: secret %s replaces the inherited %s (%d %s)\n", quoteText(e.name), e.target, n, entries)
		}
	}
	var written []string
	for _, f := range p.files {
		if err := writeSecretFile(f.target, secrets[f.name]); err != nil {
			removeAll(written)
			return nil, nil, fmt.Errorf("--file %s: %w", f.target, err)
		}
		written = append(written, f.target)
	}
	return env, written, nil
}

func removeAll(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}

func runCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	var cf clientFlags
	cf.register(fs)
	var p runPlan
	fs.Var(&p.env, "env", "put secret NAME in environment variable VAR (`NAME=VAR`, repeatable)")
	fs.Var(&p.files, "file", "write secret NAME to PATH, mode 0600 (`NAME=PATH`, repeatable)")
	argv, err := parseLeading(fs, args)
	if err != nil {
		return err
	}
	p.argv = argv
	if len(p.argv) == 0 || len(p.names()) == 0 {
		return &exitError{code: 2, msg: "usage: asps run --server ADDR (--server-pin HEX | --server-ca PEM) [--env NAME=VAR] [--file NAME=PATH] -- CMD [ARGS]"}
	}
	if err := p.checkEnvTargets(); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	path, err := exec.LookPath(p.argv[0])
	if err != nil {
		return err
	}
	ctx, c, done, err := cf.connect()
	if err != nil {
		return err
	}
	secrets, err := c.GetSecrets(ctx, p.names()...)
	done()
	if err != nil {
		return err
	}
	byName := make(map[string][]byte, len(secrets))
	for _, s := range secrets {
		byName[s.Name] = s.Value
	}
	env, written, err := p.apply(byName, os.Environ(), stderr)
	if err != nil {
		return err
	}
	// Replace this process: the program gets our PID, signals and stdio.
	err = syscall.Exec(path, p.argv, env)
	removeAll(written) // exec failed: leave no secret behind
	return fmt.Errorf("exec %s: %w", path, err)
}
