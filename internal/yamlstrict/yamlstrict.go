// Package yamlstrict is the one YAML reader of the policy, the secrets file
// and the server's config file: exactly one document; no anchors, aliases,
// merge keys or custom tags; no key twice in a mapping; bounded nesting;
// scalars kept as written (a hex number stays its text); and every error
// names the line it is on (yaml.v3 reports some syntax errors on the line
// where the enclosing block began, which can be line 1: the line is found
// again here).
package yamlstrict

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Reasons, for errors.Is.
var (
	ErrSyntax    = errors.New("YAML syntax error")
	ErrEmpty     = errors.New("empty document")
	ErrDocuments = errors.New("more than one YAML document")
	ErrDuplicate = errors.New("repeated key")
	ErrAlias     = errors.New("YAML anchors and aliases are not supported")
	ErrMergeKey  = errors.New("YAML merge keys (<<) are not supported")
	ErrTag       = errors.New("custom YAML tags are not supported")
	ErrKey       = errors.New("keys must be plain names")
	ErrDepth     = errors.New("nested too deeply")
)

// MaxDepth bounds nesting.
const MaxDepth = 32

// Error is a refusal at a line (1-based; 0 when unknown).
type Error struct {
	Line   int
	Reason error
	Detail string
	// Path is where in the document the problem is: the keys and (as
	// decimal) sequence indexes leading to the node, for a caller to name
	// it ("apps", "0", "secrets").
	Path []string
	// FirstLine is, for ErrDuplicate, the line of the key's first use.
	FirstLine int
}

func (e *Error) Error() string {
	msg := e.Reason.Error()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, msg)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Reason }

// Parse reads exactly one YAML document and checks it. It returns the
// document's root node, or ErrEmpty for a document with no content (only
// comments, or nothing). When the document parsed but a check failed, the
// root is returned with the error (for a caller to name the place).
func Parse(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Reason: ErrEmpty}
		}
		return nil, syntaxError(data, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(data, err)
		}
		return nil, &Error{Line: more.Line, Reason: ErrDocuments}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &Error{Reason: ErrEmpty}
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" && root.Value == "" {
		return nil, &Error{Line: root.Line, Reason: ErrEmpty}
	}
	if err := check(root, 0, nil); err != nil {
		return root, err
	}
	return root, nil
}

func check(n *yaml.Node, depth int, path []string) (err error) {
	defer func() {
		var e *Error
		if errors.As(err, &e) && e.Path == nil {
			e.Path = append([]string{}, path...)
		}
	}()
	if depth > MaxDepth {
		return &Error{Line: n.Line, Reason: ErrDepth}
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return &Error{Line: n.Line, Reason: ErrAlias}
	}
	if n.Tag != "" && n.Tag != "!" && !strings.HasPrefix(n.Tag, "!!") {
		return &Error{Line: n.Line, Reason: ErrTag, Detail: strconv.Quote(n.Tag)}
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := check(c, depth+1, append(path, strconv.Itoa(i))); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.AliasNode || k.Anchor != "" {
				return &Error{Line: k.Line, Reason: ErrAlias}
			}
			if k.ShortTag() == "!!merge" {
				return &Error{Line: k.Line, Reason: ErrMergeKey}
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
				return &Error{Line: k.Line, Reason: ErrKey}
			}
			if prev, dup := seen[k.Value]; dup {
				return &Error{Line: k.Line, Reason: ErrDuplicate, FirstLine: prev, Detail: fmt.Sprintf("%s appears twice (also on line %d)", strconv.Quote(k.Value), prev)}
			}
			seen[k.Value] = k.Line
			if err := check(v, depth+1, append(path, k.Value)); err != nil {
				return err
			}
		}
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// The search for a syntax error's real line reparses prefixes: bounded to
// documents of this many lines and bytes (policies and config files are
// far smaller); past them yaml.v3's line stands.
const (
	maxRelocateLines = 2000
	maxRelocateBytes = 256 << 10
)

// syntaxError is yaml.v3's error with the line where the document first
// fails: the shortest prefix of whole lines that fails with the same
// message.
func syntaxError(data []byte, err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) <= maxRelocateLines && len(data) <= maxRelocateBytes {
		for k := 1; k <= len(lines); k++ {
			prefix := bytes.Join(lines[:k], nil)
			var n yaml.Node
			perr := yaml.NewDecoder(bytes.NewReader(prefix)).Decode(&n)
			if perr == nil || errors.Is(perr, io.EOF) {
				continue
			}
			pmsg := yamlLine.ReplaceAllString(perr.Error(), "")
			if strings.TrimPrefix(pmsg, "yaml: ") == msg {
				line = k
				break
			}
		}
	}
	return &Error{Line: line, Reason: ErrSyntax, Detail: msg}
}

// ToJSON writes a checked node as JSON, keeping key order and the literal
// text of numbers (so a hex value YAML reads as a number survives; one
// JSON cannot take, such as 0x1F, becomes a string).
func ToJSON(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeJSON(&buf, n, 0); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeJSON(buf *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > MaxDepth {
		return &Error{Line: n.Line, Reason: ErrDepth}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			buf.WriteString("null")
			return nil
		}
		return writeJSON(buf, n.Content[0], depth)
	case yaml.AliasNode:
		return &Error{Line: n.Line, Reason: ErrAlias}
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, c, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" || k.ShortTag() == "!!null" {
				return &Error{Line: k.Line, Reason: ErrKey}
			}
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k.Value)
			buf.WriteByte(':')
			if err := writeJSON(buf, v, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			buf.WriteString("null")
		case "!!bool":
			switch strings.ToLower(n.Value) {
			case "true":
				buf.WriteString("true")
			case "false":
				buf.WriteString("false")
			default:
				return &Error{Line: n.Line, Reason: ErrSyntax, Detail: strconv.Quote(n.Value) + " is not true or false"}
			}
		case "!!int", "!!float":
			if isJSONNumber(n.Value) {
				buf.WriteString(n.Value)
			} else {
				writeString(buf, n.Value)
			}
		case "!!str", "!!binary", "!!timestamp":
			writeString(buf, n.Value)
		default:
			return &Error{Line: n.Line, Reason: ErrTag, Detail: strconv.Quote(n.Tag)}
		}
		return nil
	}
	return &Error{Line: n.Line, Reason: ErrSyntax, Detail: "unsupported YAML node"}
}

func writeString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always marshals
	buf.Write(b)
}

func isJSONNumber(s string) bool {
	return s != "" && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) && json.Valid([]byte(s))
}
