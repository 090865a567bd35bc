package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/asps-project/asps/internal/fileread"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestParseFile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts []FileOption
		want map[string]string
		err  string
	}{
		{name: "JSON plain", in: `{"a": "hello", "b": ""}`, want: map[string]string{"a": "hello", "b": ""}},
		{name: "JSON prefixes", in: `{"a": "base64:aGVsbG8=", "b": "hex:68656c6c6f", "c": "base64:aGVsbG8"}`,
			want: map[string]string{"a": "hello", "b": "hello", "c": "hello"}},
		{name: "JSON objects", in: `{"a": {"base64": "AAEC/w=="}, "b": {"hex": "00ff"}, "c": {"text": "base64:literal"}}`,
			want: map[string]string{"a": "\x00\x01\x02\xff", "b": "\x00\xff", "c": "base64:literal"}},
		{name: "JSON escapes", in: `{"k": "line\nnext \u00e9 \ud83d\ude00"}`, want: map[string]string{"k": "line\nnext é 😀"}},
		{name: "JSON with BOM", in: "\ufeff{\"a\": \"b\"}", want: map[string]string{"a": "b"}},
		{name: "JSON empty object", in: `{}`, want: map[string]string{}},
		{name: "YAML plain", in: "a: hello\nb: 'it''s'\nc: \"x\\ty\"\n", want: map[string]string{"a": "hello", "b": "it's", "c": "x\ty"}},
		{name: "YAML block", in: "pem: |\n  -----BEGIN X-----\n  abc\n  -----END X-----\n",
			want: map[string]string{"pem": "-----BEGIN X-----\nabc\n-----END X-----\n"}},
		{name: "YAML objects", in: "a: {base64: AAEC/w==}\nb:\n  hex: 00ff\nc: !!binary AAEC\nd: {text: 'hex:zz'}\n",
			want: map[string]string{"a": "\x00\x01\x02\xff", "b": "\x00\xff", "c": "\x00\x01\x02", "d": "hex:zz"}},
		{name: "YAML base64 over lines", in: "a:\n  base64: |\n    aGVs\n    bG8=\n", want: map[string]string{"a": "hello"}},
		{name: "YAML quoted number", in: "pin: \"0123\"\n", want: map[string]string{"pin": "0123"}},
		// One strict YAML reader (internal/yamlstrict) for policy, secrets
		// file and config: anchors and aliases are refused everywhere.
		{name: "YAML anchor", in: "a: &x shared\nb: *x\n", err: "line 1: YAML anchors and aliases are not supported"},
		{name: "YAML number key", in: "1: one\n", want: map[string]string{"1": "one"}},
		{name: "YAML flow map", in: "{a: b}", opts: []FileOption{WithFormat(FormatYAML)}, want: map[string]string{"a": "b"}},
		{name: "JSON as YAML", in: `{"a": "b"}`, opts: []FileOption{WithFormat(FormatYAML)}, want: map[string]string{"a": "b"}},
		{name: "base64 values", in: `{"cert": "dGVzdA==", "k": "hex:00", "t": {"text": "raw"}}`, opts: []FileOption{Base64Values()},
			want: map[string]string{"cert": "test", "k": "\x00", "t": "raw"}},

		{name: "empty", in: "", err: "empty"},
		{name: "blank", in: " \n\t", err: "empty"},
		{name: "YAML comment only", in: "# nothing\n", err: "empty"},
		{name: "JSON array", in: `["a"]`, err: "YAML line 1: the top level must be a mapping"},
		{name: "JSON array forced", in: `["a"]`, opts: []FileOption{WithFormat(FormatJSON)}, err: "top level must be an object"},
		{name: "JSON duplicate", in: `{"a": "x", "a": "y"}`, err: `"a" defined twice`},
		{name: "YAML duplicate", in: "a: x\na: y\n", err: `line 2: repeated key: "a" appears twice (also on line 1)`},
		{name: "JSON empty name", in: `{"": "x"}`, err: "empty secret name"},
		{name: "YAML null name", in: "~: x\n", err: "line 1: keys must be plain names"},
		{name: "control in name", in: `{"a\u0007": "x"}`, err: "control"},
		{name: "JSON number", in: `{"a": 5}`, err: "number"},
		{name: "JSON bool", in: `{"a": true}`, err: "boolean"},
		{name: "JSON null", in: `{"a": null}`, err: "null"},
		{name: "JSON nested array", in: `{"a": ["x"]}`, err: "array"},
		{name: "JSON bad object", in: `{"a": {"base64": "AA==", "hex": "00"}}`, err: "exactly one"},
		{name: "JSON unknown key", in: `{"a": {"value": "x"}}`, err: "exactly one"},
		{name: "JSON empty object value", in: `{"a": {}}`, err: "exactly one"},
		{name: "JSON object number", in: `{"a": {"hex": 5}}`, err: "exactly one"},
		{name: "JSON trailing data", in: `{"a": "b"} {}`, err: "after the top-level"},
		{name: "JSON truncated", in: `{"a": "b"`, err: "JSON"},
		{name: "YAML int", in: "a: 0123\n", err: "!!int is not a secret value; quote it"},
		{name: "YAML bool", in: "a: true\n", err: "!!bool"},
		{name: "YAML float", in: "a: 1e3\n", err: "!!float"},
		{name: "YAML null value", in: "a:\n", err: "null"},
		{name: "YAML list", in: "a: [x]\n", err: "list"},
		{name: "YAML two documents", in: "a: b\n---\nc: d\n", err: "more than one YAML document"},
		{name: "YAML merge", in: "base: {text: y}\n<<: {c: d}\n", err: "line 2: YAML merge keys (<<) are not supported"},
		{name: "YAML scalar top", in: "just text\n", err: "top level"},
		{name: "YAML syntax", in: "a: [\n", err: "YAML"},
		{name: "YAML unknown tag", in: "a: !foo bar\n", err: "!foo"},
		{name: "invalid UTF-8", in: "{\"a\": \"x\xffy\"}", err: "not valid UTF-8 at line 1, column 9"},
		{name: "invalid UTF-8 YAML", in: "a: ok\nb: \xc3\n", err: "not valid UTF-8 at line 2, column 4"},
		{name: "bad base64", in: `{"a": "base64:not base64!"}`, err: "not valid base64"},
		{name: "bad hex", in: `{"a": "hex:zz"}`, err: "not valid hex"},
		{name: "odd hex", in: `{"a": {"hex": "abc"}}`, err: "odd length"},
		{name: "base64 values, not base64", in: `{"a": "plain text"}`, opts: []FileOption{Base64Values()}, err: "not valid base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFile([]byte(tt.in), tt.opts...)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("ParseFile succeeded: %q", got)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %q does not contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFile: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d secrets, want %d", len(got), len(tt.want))
			}
			for k, w := range tt.want {
				if g, ok := got[k]; !ok || string(g) != w {
					t.Errorf("%q = %q (present %v), want %q", k, g, ok, w)
				}
			}
		})
	}
}

// TestParseFileErrorsHideValues: parse errors must not quote values.
func TestParseFileErrorsHideValues(t *testing.T) {
	for _, in := range []string{
		`{"a": "s3cr3t-value", "b": s3cr3t}`,
		`{"a": "hex:s3cr3t"}`,
		`{"a": "base64:s3cr3t!!"}`,
		`{"a": {"hex": "s3cr3t"}}`,
		`{"a": {"base64": "s3cr3t", "x": "s3cr3t"}}`,
		`{"a": s3cr3t}`,
		`{"a": "s3cr3t"`,
		"a: s3cr3t\nb: [s3cr3t\n",
		"a: !!binary s3cr3t!\n",
		"a: !!int s3cr3t\n",
		"a: \"s3cr3t\\q\"\n",
		"a:\n  - s3cr3t\n",
		"a: s3cr3t\n\tb: x\n",
	} {
		_, err := ParseFile([]byte(in))
		if err == nil {
			t.Errorf("ParseFile(%q) succeeded", in)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "'s'") {
			t.Errorf("ParseFile(%q) error leaks the value: %v", in, err)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		file    string
		content string
	}{
		{"s.json", `{"db": "pw-SECRET", "bin": {"hex": "00ff"}}`},
		{"s.yaml", "db: pw-SECRET\nbin: {hex: 00ff}\n"},
		{"s.yml", "db: pw-SECRET\nbin: hex:00ff\n"},
		{"secrets", "db: pw-SECRET\nbin: {hex: \"00ff\"}\n"},
		{"secrets.conf", `{"db": "pw-SECRET", "bin": "hex:00ff"}`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p := filepath.Join(dir, tt.file)
			writeFile(t, p, tt.content)
			s, err := OpenFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if s.Kind() != "file" || s.Check(context.Background()) != nil || s.Path() != p {
				t.Error("Kind, Check or Path wrong")
			}
			got, err := s.Get(context.Background(), Request{Name: "db", Ref: "db", Token: "ignored-TOKEN"})
			if err != nil || string(got) != "pw-SECRET" {
				t.Errorf("Get(db) = %q, %v", got, err)
			}
			got, err = s.Get(context.Background(), Request{Name: "bin", Ref: "bin"})
			if err != nil || !bytes.Equal(got, []byte{0, 0xff}) {
				t.Errorf("Get(bin) = %x, %v", got, err)
			}
			got[0] = 'X' // the caller owns the copy
			if again, _ := s.Get(context.Background(), Request{Ref: "bin"}); again[0] != 0 {
				t.Error("Get returned the store's own slice")
			}
			_, err = s.Get(context.Background(), Request{Name: "app-db", Ref: "nope"})
			checkStoreErr(t, err, ErrNotFound, "app-db", "nope", []string{"pw-SECRET"})
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error does not name the file: %v", err)
			}
			if names := s.Names(); strings.Join(names, ",") != "bin,db" {
				t.Errorf("Names() = %q", names)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err = s.Get(ctx, Request{Name: "db", Ref: "db"})
			checkStoreErr(t, err, ErrUnavailable, "db", "db", []string{"pw-SECRET"})
		})
	}
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenFile(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	p := filepath.Join(dir, "bad.json")
	writeFile(t, p, `{"a": "s3cr3t", "b": 7}`)
	_, err = OpenFile(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `"b"`) || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("bad file error: %v", err)
	}
	// The extension decides: YAML content in a .json file is an error.
	writeFile(t, p, "a: b\n")
	if _, err := OpenFile(p); err == nil {
		t.Error("YAML in a .json file accepted")
	}
	if _, err := OpenFile(p, WithFormat(FormatYAML)); err != nil {
		t.Errorf("WithFormat(FormatYAML): %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	writeFile(t, big, "a: "+strings.Repeat("x", MaxFileSize)+"\n")
	if _, err := OpenFile(big); !errors.Is(err, fileread.ErrTooLarge) {
		t.Errorf("big file: %v", err)
	}
}

func TestFileReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.yaml")
	writeFile(t, p, "a: one\n")
	s, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	get := func(ref string) string {
		v, err := s.Get(context.Background(), Request{Name: ref, Ref: ref})
		if err != nil {
			return "error"
		}
		return string(v)
	}
	writeFile(t, p, "a: two\nb: new\n")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if get("a") != "two" || get("b") != "new" {
		t.Fatal("Reload did not take the new content")
	}
	writeFile(t, p, "a: [broken\n")
	if err := s.Reload(); err == nil {
		t.Fatal("Reload of a broken file succeeded")
	}
	if get("a") != "two" || get("b") != "new" {
		t.Fatal("a failed Reload changed the content")
	}
	os.Remove(p)
	if err := s.Reload(); err == nil {
		t.Fatal("Reload of a missing file succeeded")
	}
	if get("a") != "two" {
		t.Fatal("a failed Reload changed the content")
	}

	// Concurrent Get and Reload (run with -race).
	writeFile(t, p, "a: three\n")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if v := get("a"); v != "two" && v != "three" {
					t.Errorf("Get during Reload = %q", v)
					return
				}
			}
		})
	}
	for range 20 {
		if err := s.Reload(); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}

func TestMemory(t *testing.T) {
	// Intel ASPS "kms": "none": values inline, possibly empty.
	m := map[string][]byte{"master_key": []byte("123"), "secret1": []byte(""), "secret2": nil}
	s := NewMemory(m)
	m["master_key"][0] = 'X' // the store holds a copy
	var st Store = s
	for ref, want := range map[string]string{"master_key": "123", "secret1": "", "secret2": ""} {
		got, err := st.Get(context.Background(), Request{Name: ref, Ref: ref})
		if err != nil || string(got) != want || got == nil {
			t.Errorf("Get(%q) = %q, %v", ref, got, err)
		}
	}
	_, err := st.Get(context.Background(), Request{Name: "x", Ref: "missing"})
	checkStoreErr(t, err, ErrNotFound, "x", "missing", []string{"123"})
	if err := s.Reload(); err != nil {
		t.Errorf("Reload of a memory store: %v", err)
	}
	if st.Kind() != "file" {
		t.Errorf("Kind = %q", st.Kind())
	}
}

// compatDir finds /work/shared/testdata/compat: go test runs in the
// package directory, so it is ../../shared/testdata/compat.
func compatDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "testdata", "compat")
	if _, err := os.Stat(dir); err != nil {
		abs, _ := filepath.Abs(dir)
		t.Skipf("compat test data absent (%s): %v; these tests need the shared testdata directory beside the repository", abs, err)
	}
	return dir
}

func TestOcclumSecretConfig(t *testing.T) {
	p := filepath.Join(compatDir(t), "occlum-secret_config.json")
	s, err := OpenFile(p, Base64Values())
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{"cert": "test sample certificates\n", "key": "test sample key\n"} {
		got, err := s.Get(context.Background(), Request{Name: ref, Ref: ref})
		if err != nil || string(got) != want {
			t.Errorf("Get(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	// Without the option the values are the base64 text itself.
	plain, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := plain.Get(context.Background(), Request{Ref: "key"})
	if string(got) != "dGVzdCBzYW1wbGUga2V5Cg==" {
		t.Errorf("without Base64Values: %q", got)
	}
}

func TestIntelNoKMSPolicyValues(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(compatDir(t), "intel-asps-policy_no_kms.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pol struct {
		AppList []struct {
			Secrets map[string]string `json:"secrets"`
		} `json:"app_list"`
	}
	if err := json.Unmarshal(raw, &pol); err != nil {
		t.Fatal(err)
	}
	if len(pol.AppList) == 0 {
		t.Fatal("no apps")
	}
	m := map[string][]byte{}
	for k, v := range pol.AppList[0].Secrets {
		m[k] = []byte(v)
	}
	s := NewMemory(m)
	got, err := s.Get(context.Background(), Request{Name: "master_key", Ref: "master_key"})
	if err != nil || string(got) != "123" {
		t.Errorf("master_key = %q, %v", got, err)
	}
}

func FuzzParseFile(f *testing.F) {
	seeds := []string{
		`{"cert": "dGVzdCBzYW1wbGUgY2VydGlmaWNhdGVzCg==", "key": "dGVzdCBzYW1wbGUga2V5Cg=="}`,
		`{"master_key": "123", "secret1": "", "secret2": ""}`,
		`{"a": {"base64": "AAEC/w=="}, "b": {"hex": "00ff"}, "c": {"text": "base64:x"}, "d": "hex:00"}`,
		"db: pw\nbin: {hex: 00ff}\nraw: !!binary AAEC\npem: |\n  -----BEGIN-----\n  abc\n",
		"a: &x v\nb: *x\n",
		"a: 0123\n", "a: [x]\n", "---\na: b\n---\nc: d\n", `{"a": "b"} x`, `{"a": "\ud800"}`,
		"<<: {a: b}\n", "? [a]\n: b\n", "a: {base64: |\n    aGVs\n    bG8=\n}\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, b64 bool) {
		var opts []FileOption
		if b64 {
			opts = append(opts, Base64Values())
		}
		m, err := ParseFile(data, opts...)
		if err != nil {
			if m != nil {
				t.Fatal("error with a result")
			}
			return
		}
		// Round trip: the same secrets written as {"name": {"base64": ...}}
		// JSON parse back identically, in either mode.
		obj := map[string]map[string]string{}
		for k, v := range m {
			if k == "" || hasControl(k) {
				t.Fatalf("bad name %q accepted", k)
			}
			obj[k] = map[string]string{"base64": base64.StdEncoding.EncodeToString(v)}
		}
		enc, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseFile(enc, opts...)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(m2) != len(m) {
			t.Fatalf("re-parse: %d secrets, want %d", len(m2), len(m))
		}
		for k, v := range m {
			if !bytes.Equal(m2[k], v) {
				t.Fatalf("re-parse: %q differs", k)
			}
		}
	})
}
