package yamlstrict

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		reason    error
		line      int
		path      string
	}{
		{"duplicate key", "a: 1\nb:\n  c: 1\n  c: 2\n", ErrDuplicate, 4, "b"},
		{"duplicate in list item", "apps:\n  - id: x\n    tee: sgx\n    tee: tdx\n", ErrDuplicate, 4, "apps.0"},
		{"anchor", "a: &x 1\n", ErrAlias, 1, "a"},
		{"alias", "a: 1\nb: *x\n", ErrSyntax, 2, ""}, // an unknown alias is yaml's own error
		{"anchor and alias", "a: &x 1\nb: *x\n", ErrAlias, 1, "a"},
		{"merge key", "a: {b: 1}\n<<: {c: 2}\n", ErrMergeKey, 2, ""},
		{"custom tag", "a: !secret x\n", ErrTag, 1, "a"},
		{"null key", "~: 1\n", ErrKey, 1, ""},
		{"two documents", "a: 1\n---\nb: 2\n", ErrDocuments, 2, ""},
		{"empty", "# only a comment\n", ErrEmpty, 0, ""},
		{"deep", strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2) + "\n", ErrDepth, 1, strings.TrimSuffix(strings.Repeat("0.", MaxDepth+1), ".")},
		// yaml.v3 reports this on line 1, where the block began.
		{"syntax error's own line", "apps:\n  - id: a\n   tee: sgx\n", ErrSyntax, 3, ""},
		{"unclosed flow", "a: 1\nb: [1,\n", ErrSyntax, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			var e *Error
			if !errors.Is(err, tc.reason) || !errors.As(err, &e) {
				t.Fatalf("err %v, want %v", err, tc.reason)
			}
			if e.Line != tc.line || strings.Join(e.Path, ".") != tc.path {
				t.Fatalf("line %d path %q, want %d %q (%v)", e.Line, strings.Join(e.Path, "."), tc.line, tc.path, err)
			}
		})
	}
}

func TestToJSONKeepsTextAndOrder(t *testing.T) {
	n, err := Parse([]byte("z: 0x1F\na: 12\nb: [true, null, 1.5, '07']\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ToJSON(n)
	if err != nil || string(got) != `{"z":"0x1F","a":12,"b":[true,null,1.5,"07"]}` {
		t.Fatalf("%s %v", got, err)
	}
}

// FuzzParse: no panic, and a document Parse accepts converts to valid
// JSON with no key twice at the top level, or is refused with a line in
// the document.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"a: 1\n", "a: &x 1\nb: *x\n", "apps:\n  - id: a\n   tee: sgx\n", "a: [1,\n", "{a: 1, a: 2}", "- 1\n- [2, {b: c}]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		n, err := Parse(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %T %v", err, err)
			}
			// yaml.v3 counts CR, LF, CRLF, NEL, LS and PS as line breaks.
			lines := 1
			for _, b := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
				lines += strings.Count(string(data), b)
			}
			if e.Line < 0 || e.Line > lines+1 {
				t.Fatalf("line %d outside a document of %d lines", e.Line, lines)
			}
			return
		}
		js, err := ToJSON(n)
		if err != nil {
			return // e.g. a bool spelled "yes": refused, not mis-converted
		}
		if !json.Valid(js) {
			t.Fatalf("invalid JSON %s from %q", js, data)
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(js, &top) == nil && n.Kind == 4 /* mapping */ && len(top) != len(n.Content)/2 {
			t.Fatalf("a key twice survived: %s", js)
		}
	})
}
