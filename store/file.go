package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/asps-project/asps/internal/fileread"
	"github.com/asps-project/asps/internal/filewatch"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/asps-project/asps/internal/yamlstrict"
)

// MaxFileSize bounds the size of a secrets file.
const MaxFileSize = 16 << 20

// FileFormat selects the syntax of a secrets file.
type FileFormat int

const (
	// FormatAuto: JSON if the first non-blank byte is '{', YAML otherwise.
	// OpenFile uses the extension first (.json, .yaml, .yml).
	FormatAuto FileFormat = iota
	FormatJSON
	FormatYAML
)

func (f FileFormat) String() string {
	switch f {
	case FormatJSON:
		return "JSON"
	case FormatYAML:
		return "YAML"
	default:
		return "auto"
	}
}

type fileOptions struct {
	format       FileFormat
	base64Values bool
}

// FileOption changes how a secrets file is read.
type FileOption func(*fileOptions)

// WithFormat fixes the syntax of the file instead of guessing it.
func WithFormat(f FileFormat) FileOption {
	return func(o *fileOptions) { o.format = f }
}

// Base64Values makes every plain string value base64 (standard alphabet,
// padding optional), as in Occlum's secret_config.json. The "base64:" and
// "hex:" prefixes and the object forms keep their meaning.
func Base64Values() FileOption {
	return func(o *fileOptions) { o.base64Values = true }
}

// File is the file store: a JSON or YAML file (or an in-memory map) of
// secret name → value. The reference of a secret is its name. File is safe
// for concurrent use; Reload swaps the content atomically.
type File struct {
	path string // "" for a memory store
	opts fileOptions

	mu      sync.RWMutex
	secrets map[string][]byte
	digest  string // hex SHA-256 of the content loaded ("" for memory)

	reloadMu sync.Mutex // one Reload at a time: the last read is applied last
}

var _ Store = (*File)(nil)

// OpenFile loads a secrets file. See the package documentation for the
// format. Errors name the file and the entry, never a value.
func OpenFile(path string, opts ...FileOption) (*File, error) {
	f := &File{path: path}
	for _, o := range opts {
		o(&f.opts)
	}
	if f.opts.format == FormatAuto {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".json":
			f.opts.format = FormatJSON
		case ".yaml", ".yml":
			f.opts.format = FormatYAML
		}
	}
	m, digest, err := f.load("")
	if err != nil {
		return nil, err
	}
	f.secrets, f.digest = m, digest
	return f, nil
}

// NewMemory returns a file store holding a copy of m (Intel ASPS's
// "kms": "none", values inline in the policy). Reload is a no-op.
func NewMemory(m map[string][]byte) *File {
	c := make(map[string][]byte, len(m))
	for k, v := range m {
		c[k] = bytes.Clone(v)
		if c[k] == nil {
			c[k] = []byte{}
		}
	}
	return &File{secrets: c}
}

// Path returns the file's path ("" for a memory store).
func (f *File) Path() string { return f.path }

// Kind returns "file".
func (f *File) Kind() string { return "file" }

// Check returns nil: the content is loaded and in memory.
func (f *File) Check(context.Context) error { return nil }

// Names returns the names of the secrets held, sorted.
func (f *File) Names() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	names := make([]string, 0, len(f.secrets))
	for k := range f.secrets {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Get returns a copy of the secret named req.Ref. req.Token is ignored.
// Each Get reads the content in force at that moment: a caller reading
// several secrets for one request takes a Snapshot first.
func (f *File) Get(ctx context.Context, req Request) ([]byte, error) {
	f.mu.RLock()
	m := f.secrets
	f.mu.RUnlock()
	return getFrom(ctx, m, f.path, req)
}

// Snapshotter is a store whose content can be pinned: Snapshot returns a
// store that reads one version of it, whatever reloads follow, so the
// secrets of one request come from one version (a key and its id, a
// certificate and its key, rotated in one edit, never mixed).
type Snapshotter interface {
	Snapshot() Store
}

var _ Snapshotter = (*File)(nil)

// Snapshot returns a read-only view of the content in force now. A reload
// replaces the content wholesale and never changes a loaded map, so the
// view costs nothing.
func (f *File) Snapshot() Store {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fileSnapshot{path: f.path, secrets: f.secrets, digest: f.digest}
}

// fileSnapshot is one version of a File's content.
type fileSnapshot struct {
	path    string
	secrets map[string][]byte // never written after load
	digest  string
}

func (s *fileSnapshot) Get(ctx context.Context, req Request) ([]byte, error) {
	return getFrom(ctx, s.secrets, s.path, req)
}
func (s *fileSnapshot) Check(context.Context) error { return nil }
func (s *fileSnapshot) Kind() string                { return "file" }

// Digest is the hex SHA-256 of this version of the file ("" for memory).
func (s *fileSnapshot) Digest() string { return s.digest }

func getFrom(ctx context.Context, m map[string][]byte, path string, req Request) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Store: "file", Name: req.Name, Ref: req.Ref, Kind: ErrUnavailable, Err: err}
	}
	v, ok := m[req.Ref]
	if !ok {
		reason := "no such name among the inline secrets"
		if path != "" {
			reason = "no such name in " + path
		}
		return nil, &Error{Store: "file", Name: req.Name, Ref: req.Ref, Kind: ErrNotFound, Reason: reason}
	}
	return bytes.Clone(v), nil
}

// Reload reads the file again. If the new content is bad, the old content
// stays and the error says why. For a memory store it does nothing.
func (f *File) Reload() error { return f.reload("") }

// reload is Reload; a want other than "" puts the file in force only if its
// content has that SHA-256 (else filewatch.ErrChanged: the watcher found
// that content complete, not this one).
func (f *File) reload(want string) error {
	if f.path == "" {
		return nil
	}
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	m, digest, err := f.load(want)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.secrets, f.digest = m, digest
	f.mu.Unlock()
	return nil
}

// Digest is the hex SHA-256 of the content in force: the secrets file's
// version, for logs (never a value).
func (f *File) Digest() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.digest
}

// Watch reloads the file when it changes (its size, time or content) and
// the change is complete (the same content on two polls and, on Linux, no
// writer between writes: see package filewatch; a half-written file is
// never put in force), polling every interval until ctx ends. A file that fails to load leaves
// the secrets in force and is logged once, with the reason (which names
// entries and lines, never values); so is a reload that took.
func (f *File) Watch(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	filewatch.Watch(ctx, interval, logger, filewatch.Target{
		Path: f.path, Read: readLimited, Digest: f.Digest, Reload: f.reload,
		Unreadable:   "secrets file unreadable; keeping the current secrets",
		ReloadFailed: "secrets file reload failed; keeping the current secrets",
		Reloaded: func(logger *slog.Logger) {
			logger.Info("secrets file reloaded", "path", f.path, "sha256", f.Digest(), "secrets", len(f.Names()))
		},
	})
}

// readLimited reads a regular secrets file of at most MaxFileSize bytes (a
// FIFO would otherwise block start-up or a reload).
func readLimited(path string) ([]byte, error) {
	data, err := fileread.Read(path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	return data, nil
}

func (f *File) load(want string) (map[string][]byte, string, error) {
	data, err := readLimited(f.path)
	if err != nil {
		return nil, "", err
	}
	if want != "" && filewatch.Digest(data) != want {
		return nil, "", filewatch.ErrChanged
	}
	m, err := parseFile(data, f.opts)
	if err != nil {
		return nil, "", fmt.Errorf("secrets file %s: %w", f.path, err)
	}
	sum := sha256.Sum256(data)
	return m, hex.EncodeToString(sum[:]), nil
}

// ParseFile parses the content of a secrets file. Errors name entries and
// positions, never values.
func ParseFile(data []byte, opts ...FileOption) (map[string][]byte, error) {
	var o fileOptions
	for _, opt := range opts {
		opt(&o)
	}
	return parseFile(data, o)
}

func parseFile(data []byte, o fileOptions) (map[string][]byte, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("empty file: expected a mapping of secret name to value")
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileSize)
	}
	if !utf8.Valid(data) {
		// encoding/json would silently replace the bytes with U+FFFD.
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return nil, fmt.Errorf("not valid UTF-8 at %s (write binary values as base64 or hex)", lineCol(data, int64(off)))
	}
	format := o.format
	if format == FormatAuto {
		if trimmed[0] == '{' {
			format = FormatJSON
		} else {
			format = FormatYAML
		}
	}
	var (
		entries []rawEntry
		err     error
	)
	if format == FormatJSON {
		entries, err = jsonEntries(data)
	} else {
		entries, err = yamlEntries(data)
	}
	if err != nil {
		return nil, err
	}
	m := make(map[string][]byte, len(entries))
	for _, e := range entries {
		if e.name == "" {
			return nil, fmt.Errorf("%s: empty secret name", e.where)
		}
		if !utf8.ValidString(e.name) || hasControl(e.name) {
			return nil, fmt.Errorf("%s: secret name %q holds control characters or invalid UTF-8", e.where, e.name)
		}
		if _, dup := m[e.name]; dup {
			return nil, fmt.Errorf("%s: secret %q defined twice", e.where, e.name)
		}
		v, err := e.value.decode(o.base64Values)
		if err != nil {
			return nil, fmt.Errorf("%s: secret %q: %w", e.where, e.name, err)
		}
		m[e.name] = v
	}
	return m, nil
}

// rawEntry is one name → value pair before the value is decoded.
type rawEntry struct {
	name  string
	where string // "YAML line 3" or "JSON line 3, column 5", for errors
	value rawValue
}

// rawValue is a string (with or without a prefix) or a one-key object.
type rawValue struct {
	isObject bool
	encoding string // object form: "base64", "hex" or "text"
	text     string
	binary   bool // YAML !!binary: text is base64
}

func (v rawValue) decode(base64Values bool) ([]byte, error) {
	switch {
	case v.binary:
		return decodeBase64(v.text)
	case v.isObject:
		switch v.encoding {
		case "base64":
			return decodeBase64(v.text)
		case "hex":
			return decodeHex(v.text)
		default: // "text"
			return []byte(v.text), nil
		}
	}
	if s, ok := strings.CutPrefix(v.text, "base64:"); ok {
		return decodeBase64(s)
	}
	if s, ok := strings.CutPrefix(v.text, "hex:"); ok {
		return decodeHex(s)
	}
	if base64Values {
		return decodeBase64(v.text)
	}
	return []byte(v.text), nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	enc := base64.StdEncoding
	if !strings.HasSuffix(s, "=") && len(strings.ReplaceAll(strings.ReplaceAll(s, "\n", ""), "\r", ""))%4 != 0 {
		enc = base64.RawStdEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("value is not valid base64 (at byte %d)", int64(ce))
		}
		return nil, errors.New("value is not valid base64")
	}
	return b, nil
}

func decodeHex(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		// hex errors quote the offending byte: do not pass them on.
		if errors.Is(err, hex.ErrLength) {
			return nil, errors.New("value is not valid hex (odd length)")
		}
		return nil, errors.New("value is not valid hex")
	}
	return b, nil
}

var objectKeys = []string{"base64", "hex", "text"}

const objectHelp = `an object value must have exactly one key, "base64", "hex" or "text", with a string value`

const useHelp = `: use a string, or an object {"base64"|"hex"|"text": string}`

// ---- JSON ----

func jsonEntries(data []byte) ([]rawEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	where := func() string { return "JSON " + lineCol(data, dec.InputOffset()) }
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErr(data, dec, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%s: the top level must be an object of secret name to value", where())
	}
	var entries []rawEntry
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(data, dec, err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%s: expected a secret name", where())
		}
		at := where()
		v, err := jsonValue(data, dec)
		if err != nil {
			return nil, fmt.Errorf("%s: secret %q: %w", at, name, err)
		}
		entries = append(entries, rawEntry{name: name, where: at, value: v})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, jsonErr(data, dec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: unexpected data after the top-level object", where())
	}
	return entries, nil
}

func jsonValue(data []byte, dec *json.Decoder) (rawValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return rawValue{}, jsonErr(data, dec, err)
	}
	switch t := tok.(type) {
	case string:
		return rawValue{text: t}, nil
	case json.Delim:
		if t != '{' {
			return rawValue{}, errors.New("an array is not a secret value" + useHelp)
		}
		var v rawValue
		n := 0
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return rawValue{}, jsonErr(data, dec, err)
			}
			key, _ := tok.(string)
			tok, err = dec.Token()
			if err != nil {
				return rawValue{}, jsonErr(data, dec, err)
			}
			s, isString := tok.(string)
			if !slices.Contains(objectKeys, key) || !isString {
				return rawValue{}, errors.New(objectHelp)
			}
			n++
			v = rawValue{isObject: true, encoding: key, text: s}
		}
		if _, err := dec.Token(); err != nil {
			return rawValue{}, jsonErr(data, dec, err)
		}
		if n != 1 {
			return rawValue{}, errors.New(objectHelp)
		}
		return v, nil
	case nil:
		return rawValue{}, errors.New("null is not a secret value")
	default:
		return rawValue{}, fmt.Errorf("a JSON %s is not a secret value; write it as a string", jsonKind(tok))
	}
}

func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case bool:
		return "boolean"
	case float64, json.Number:
		return "number"
	}
	return "value"
}

// jsonErr reports a JSON error by position only: encoding/json's messages
// quote the offending character, which may belong to a secret.
func jsonErr(data []byte, dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("JSON syntax error at %s", lineCol(data, se.Offset))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("JSON ends unexpectedly")
	}
	return fmt.Errorf("JSON error at %s", lineCol(data, dec.InputOffset()))
}

func lineCol(data []byte, off int64) string {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return fmt.Sprintf("line %d, column %d", line, col)
}

// ---- YAML ----

func yamlEntries(data []byte) ([]rawEntry, error) {
	// The project's one strict YAML reader: one document; anchors,
	// aliases, merge keys, custom tags and repeated names refused, each
	// with its line (its messages never quote a value).
	root, err := yamlstrict.Parse(data)
	if errors.Is(err, yamlstrict.ErrEmpty) {
		return nil, errors.New("empty file: expected a mapping of secret name to value")
	}
	if err != nil {
		return nil, fmt.Errorf("YAML %w", err)
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("YAML line %d: the top level must be a mapping of secret name to value", root.Line)
	}
	var entries []rawEntry
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		where := fmt.Sprintf("YAML line %d", k.Line)
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s: a secret name must be a scalar", where)
		}
		if k.ShortTag() == "!!merge" {
			return nil, fmt.Errorf("%s: merge keys (<<) are not supported", where)
		}
		if k.ShortTag() == "!!null" {
			return nil, fmt.Errorf("%s: empty secret name", where)
		}
		v, err := yamlValue(val)
		if err != nil {
			return nil, fmt.Errorf("%s: secret %q: %w", where, k.Value, err)
		}
		entries = append(entries, rawEntry{name: k.Value, where: where, value: v})
	}
	return entries, nil
}

func yamlValue(n *yaml.Node) (rawValue, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case "!!str":
			return rawValue{text: n.Value}, nil
		case "!!binary":
			return rawValue{text: n.Value, binary: true}, nil
		case "!!null":
			return rawValue{}, errors.New("no value (null)")
		default:
			return rawValue{}, fmt.Errorf("a YAML %s is not a secret value; quote it to make it a string", tag)
		}
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return rawValue{}, errors.New(objectHelp)
		}
		k, val := n.Content[0], n.Content[1]
		if val.Kind == yaml.AliasNode && val.Alias != nil {
			val = val.Alias
		}
		if k.Kind != yaml.ScalarNode || !slices.Contains(objectKeys, k.Value) ||
			val.Kind != yaml.ScalarNode || val.ShortTag() != "!!str" {
			return rawValue{}, errors.New(objectHelp)
		}
		return rawValue{isObject: true, encoding: k.Value, text: val.Value}, nil
	case yaml.SequenceNode:
		return rawValue{}, errors.New("a list is not a secret value" + useHelp)
	default:
		return rawValue{}, errors.New("unsupported YAML value")
	}
}
