package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	flag "github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/asps-project/asps/internal/yamlstrict"
)

// maxConfigSize bounds a --config file: a few dozen settings.
const maxConfigSize = 1 << 20

// Reasons a --config file is refused; a *configError wraps one.
var (
	errConfigSyntax    = errors.New("malformed config")
	errConfigUnknown   = errors.New("unknown setting")
	errConfigDuplicate = errors.New("setting given twice")
	errConfigNull      = errors.New("empty (null) value")
	errConfigType      = errors.New("wrong type")
	errConfigValue     = errors.New("bad value")
)

// configError is one problem in a --config file: the key, its line, and
// what was expected. It never repeats a value (a setting such as
// pccs-api-key is a credential).
type configError struct {
	Path   string
	Line   int
	Key    string
	Reason error
	Detail string
}

func (e *configError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--config %s", e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + quoteText(e.Key))
	}
	b.WriteString(": " + e.Reason.Error())
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

func (e *configError) Unwrap() error { return e.Reason }

// applyConfigFile sets, from a YAML or JSON file of flag name → value, the
// flags the command line did not set: configuration comes from flags, then
// the file, then the environment defaults each flag declares.
//
// Decoding is typed and strict: each value must be a scalar of the flag's
// type (a string, true/false, a whole number, a duration), written as the
// flag would take it; the text is passed on exactly as written (a number is
// never re-rendered, so 0x1F stays 0x1F); null, lists, maps, unknown and
// repeated keys, aliases and custom tags are refused, each naming the key
// and its line. All problems are reported together.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	b, err := readConfigFile(path)
	if err != nil {
		return err
	}
	settings, err := parseConfig(b, path, fs)
	if err != nil {
		return err
	}
	// An old spelling (a hidden alias) and its flag are one setting: the
	// command line's wins over either in the file, and the file may not
	// give both.
	canonical := func(name string) string {
		if f := fs.Lookup(name); f != nil && len(f.Annotations[aliasOf]) == 1 {
			return f.Annotations[aliasOf][0]
		}
		return name
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[canonical(f.Name)] = true })
	var errs []error
	inFile := map[string]setting{}
	for _, s := range settings {
		c := canonical(s.key)
		if prev, dup := inFile[c]; dup {
			errs = append(errs, &configError{Path: path, Line: s.line, Key: s.key, Reason: errConfigDuplicate,
				Detail: fmt.Sprintf("the same setting as %s on line %d", prev.key, prev.line)})
			continue
		}
		inFile[c] = s
		if set[c] {
			continue
		}
		if err := fs.Set(s.key, s.value); err != nil {
			errs = append(errs, &configError{Path: path, Line: s.line, Key: s.key, Reason: errConfigValue,
				Detail: "want " + flagType(fs.Lookup(s.key)).want})
		}
	}
	return errors.Join(errs...)
}

func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	} else if !st.Mode().IsRegular() {
		return nil, &configError{Path: path, Reason: errConfigSyntax, Detail: "not a regular file"}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	if len(b) > maxConfigSize {
		return nil, &configError{Path: path, Reason: errConfigSyntax, Detail: fmt.Sprintf("larger than %d bytes", maxConfigSize)}
	}
	return b, nil
}

// setting is one key of a config file and its value's text as written.
type setting struct {
	key, value string
	line       int
}

// kind is what a flag takes, for type checks and messages.
type kind struct {
	name string // "string", "bool", "int", "uint", "float", "duration"
	want string
}

var (
	kindString   = kind{"string", "a string"}
	kindBool     = kind{"bool", "true or false"}
	kindInt      = kind{"int", "a whole number"}
	kindUint     = kind{"uint", "a whole number 0 or more"}
	kindFloat    = kind{"float", "a number"}
	kindDuration = kind{"duration", `a duration such as "30s" or "5m"`}
)

// flagType reads a flag's type from its value (pflag's Value.Type); flags
// of other Value types take strings.
func flagType(f *flag.Flag) kind {
	switch f.Value.Type() {
	case "bool":
		return kindBool
	case "int", "int8", "int16", "int32", "int64":
		return kindInt
	case "uint", "uint8", "uint16", "uint32", "uint64":
		return kindUint
	case "float32", "float64":
		return kindFloat
	case "duration":
		return kindDuration
	}
	return kindString
}

var (
	decimalInt = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
	hexInt     = regexp.MustCompile(`^0x[0-9a-fA-F]+$`)
)

// parseConfig reads the file's one mapping of flag name → scalar and checks
// each value against its flag's type.
func parseConfig(b []byte, path string, fs *flag.FlagSet) ([]setting, error) {
	bad := func(line int, key string, reason error, format string, args ...any) error {
		return &configError{Path: path, Line: line, Key: key, Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	// The project's one strict YAML reader (internal/yamlstrict).
	root, err := yamlstrict.Parse(b)
	var ye *yamlstrict.Error
	switch {
	case errors.Is(err, yamlstrict.ErrEmpty):
		return nil, nil // an empty file (or only comments) sets nothing
	case errors.Is(err, yamlstrict.ErrDuplicate) && errors.As(err, &ye):
		key := ""
		if len(ye.Path) == 0 {
			key = duplicateKey(root, ye.Line)
		}
		return nil, bad(ye.Line, key, errConfigDuplicate, "also on line %d", ye.FirstLine)
	case errors.As(err, &ye):
		key := ""
		if len(ye.Path) > 0 {
			key = ye.Path[0]
		}
		return nil, bad(ye.Line, key, errConfigSyntax, "%s", strings.TrimPrefix(ye.Error(), fmt.Sprintf("line %d: ", ye.Line)))
	case err != nil:
		return nil, bad(0, "", errConfigSyntax, "%v", err)
	}
	if root.Kind != yaml.MappingNode || root.Tag != "!!map" {
		return nil, bad(root.Line, "", errConfigSyntax, "want a mapping of setting name: value")
	}
	var out []setting
	var errs []error
	lines := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			errs = append(errs, bad(k.Line, "", errConfigSyntax, "keys are setting names (plain strings)"))
			continue
		}
		key := k.Value
		if prev, dup := lines[key]; dup {
			errs = append(errs, bad(k.Line, key, errConfigDuplicate, "also on line %d", prev))
			continue
		}
		lines[key] = k.Line
		f := fs.Lookup(key)
		if f == nil {
			errs = append(errs, bad(k.Line, key, errConfigUnknown, "settings are the command's flag names"))
			continue
		}
		if key == "config" {
			errs = append(errs, bad(k.Line, key, errConfigUnknown, "a config file cannot name another"))
			continue
		}
		t := flagType(f)
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			errs = append(errs, bad(v.Line, key, errConfigSyntax, "YAML anchors and aliases are not supported"))
			continue
		}
		if v.Kind != yaml.ScalarNode {
			errs = append(errs, bad(v.Line, key, errConfigType, "want %s, not a %s", t.want, map[yaml.Kind]string{yaml.SequenceNode: "list", yaml.MappingNode: "mapping"}[v.Kind]))
			continue
		}
		tag := v.ShortTag()
		if v.Tag != "" && v.Tag != "!" && !strings.HasPrefix(v.Tag, "!!") {
			errs = append(errs, bad(v.Line, key, errConfigSyntax, "custom YAML tag %s is not supported", quoteText(v.Tag)))
			continue
		}
		if tag == "!!null" {
			errs = append(errs, bad(v.Line, key, errConfigNull, "want %s; leave the key out for the default", t.want))
			continue
		}
		if msg := checkScalar(t, tag, v); msg != "" {
			errs = append(errs, bad(v.Line, key, errConfigType, "%s", msg))
			continue
		}
		out = append(out, setting{key: key, value: v.Value, line: v.Line})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// checkScalar says what is wrong with a scalar of YAML tag tag for a flag
// of kind t, or "" if it is fine. Numbers are taken as written; a quoted
// string is always a string.
func checkScalar(t kind, tag string, v *yaml.Node) string {
	quoted := v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0
	want := "want " + t.want + ", not " + tagName(tag, quoted)
	switch t {
	case kindString:
		switch tag {
		case "!!str", "!!int", "!!float", "!!timestamp":
			return "" // the text as written: 0x1F stays 0x1F
		}
		return want + ` (quote it if you mean the text)`
	case kindBool:
		if tag != "!!bool" {
			return want
		}
		if v.Value != "true" && v.Value != "false" {
			return "want true or false (lower case)"
		}
	case kindInt, kindUint:
		if tag != "!!int" || !decimalInt.MatchString(v.Value) && !hexInt.MatchString(v.Value) {
			return want + " (decimal, or hex with 0x)"
		}
		if t == kindUint && strings.HasPrefix(v.Value, "-") {
			return want
		}
	case kindFloat:
		if tag != "!!int" && tag != "!!float" {
			return want
		}
	case kindDuration:
		if tag != "!!str" {
			return want + ` (a unit is required)`
		}
		if _, err := time.ParseDuration(v.Value); err != nil {
			return want
		}
	}
	return ""
}

func tagName(tag string, quoted bool) string {
	switch {
	case quoted:
		return "a quoted string"
	case tag == "!!str":
		return "a string"
	case tag == "!!bool":
		return "a boolean"
	case tag == "!!int", tag == "!!float":
		return "a number"
	case tag == "!!timestamp":
		return "a date"
	}
	return tag
}

// duplicateKey is the top-level key on line of a config document.
func duplicateKey(root *yaml.Node, line int) string {
	if root == nil {
		return ""
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Line == line {
			return root.Content[i].Value
		}
	}
	return ""
}
