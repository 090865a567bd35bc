package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/asps-project/asps/internal/fileread"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/asps-project/asps/internal/yamlstrict"
	"go.yaml.in/yaml/v3"

	"github.com/asps-project/asps/claims"
)

// MaxFileSize bounds a policy file, and any file given to an importer.
const MaxFileSize = 4 << 20

// maxDepth bounds nesting; a policy is four levels deep.
const maxDepth = 32

// Load reads and validates a policy file. The format comes from the
// extension (.json, .yaml, .yml); any other name is sniffed: a file whose
// first non-blank character is '{' or '[' is JSON, anything else YAML.
func Load(path string) (*Policy, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	p, err := Parse(data, formatOf(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.Source = path
	return p, nil
}

// Parse validates a policy given as bytes. format is "json", "yaml" (or
// "yml"), or "" to sniff. The error, if any, joins a *LoadError for every
// problem found.
func Parse(data []byte, format string) (*Policy, error) {
	js, err := toJSON(data, format)
	if err != nil {
		return nil, err
	}
	if err := checkKeys(js, false); err != nil {
		return nil, attributeToApp(js, err)
	}
	p, err := decodePolicy(js)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	p.Digest = hex.EncodeToString(sum[:])
	return p, nil
}

// readFile reads a policy file: a regular file only (a FIFO cannot hang a
// load or a reload), at most MaxFileSize bytes.
func readFile(path string) ([]byte, error) {
	data, err := fileread.Read(path, MaxFileSize)
	switch {
	case errors.Is(err, fileread.ErrNotRegular), errors.Is(err, fileread.ErrTooLarge):
		return nil, &LoadError{Reason: ErrSyntax, Detail: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("policy: %w", err)
	}
	return data, nil
}

func formatOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return "json"
	case ".yaml", ".yml":
		return "yaml"
	}
	return ""
}

var utf8BOM = []byte("\xef\xbb\xbf")

// looksJSON reports whether the first non-blank byte opens a JSON object or array.
func looksJSON(data []byte) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && (data[0] == '{' || data[0] == '[')
}

// toJSON returns the document as JSON: as is, or converted from YAML.
func toJSON(data []byte, format string) ([]byte, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	switch strings.ToLower(format) {
	case "json":
		return data, nil
	case "yaml", "yml":
		return yamlToJSON(data)
	case "":
		if looksJSON(data) {
			return data, nil
		}
		return yamlToJSON(data)
	}
	return nil, fmt.Errorf("policy: %w %s (want json or yaml)", ErrUnknownFormat, quoteShort(format))
}

// yamlToJSON converts one YAML document to JSON with the project's one
// strict YAML reader (internal/yamlstrict): key order and the literal text
// of numbers kept (so a hex value YAML reads as a number survives);
// aliases, merge keys, custom tags and repeated keys refused, each with its
// line.
func yamlToJSON(data []byte) ([]byte, error) {
	root, err := yamlstrict.Parse(data)
	if err == nil {
		var out []byte
		if out, err = yamlstrict.ToJSON(root); err == nil {
			return out, nil
		}
	}
	if errors.Is(err, yamlstrict.ErrEmpty) {
		return nil, &LoadError{Reason: ErrSyntax, Detail: "empty document"}
	}
	le := &LoadError{Reason: ErrSyntax, Detail: err.Error()}
	// Name the app (and field) the problem is in, as the JSON checks do.
	var ye *yamlstrict.Error
	if errors.As(err, &ye) && root != nil && len(ye.Path) >= 2 && ye.Path[0] == "apps" {
		if i, aerr := strconv.Atoi(ye.Path[1]); aerr == nil {
			le.Index = i + 1
			le.App = yamlAppID(root, i)
			le.Field = strings.Join(ye.Path[2:], ".")
		}
	}
	return nil, le
}

// yamlAppID is the id of the i-th app of a policy document, if it has one.
func yamlAppID(root *yaml.Node, i int) string {
	apps := yamlField(root, "apps")
	if apps == nil || apps.Kind != yaml.SequenceNode || i >= len(apps.Content) {
		return ""
	}
	if id := yamlField(apps.Content[i], "id"); id != nil && id.Kind == yaml.ScalarNode {
		return id.Value
	}
	return ""
}

func yamlField(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == key {
			return m.Content[j+1]
		}
	}
	return nil
}

func isJSONNumber(s string) bool {
	return s != "" && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) && json.Valid([]byte(s))
}

// checkKeys walks a JSON document and refuses what encoding/json lets
// through silently: duplicate keys (it keeps the last) and field names in
// another case (it matches "MR_ENCLAVE" and even "ſecrets" to its fields).
// Field names must be lower-case snake_case; keys of "secrets" objects (and
// of the root, if rootIsMap) are free-form names, only checked for repeats.
func checkKeys(data []byte, rootIsMap bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walkKeys(dec, "", rootIsMap, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return &LoadError{Reason: ErrSyntax, Detail: fmt.Sprintf("data after the end of the document (byte %d)", dec.InputOffset())}
	}
	return nil
}

func walkKeys(dec *json.Decoder, path string, isMap bool, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonSyntaxError(dec, err)
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxDepth {
		return &LoadError{Field: path, Reason: ErrSyntax, Detail: "nested too deeply"}
	}
	if delim == '[' {
		for i := 0; dec.More(); i++ {
			if err := walkKeys(dec, fmt.Sprintf("%s[%d]", path, i), false, depth+1); err != nil {
				return err
			}
		}
	} else {
		seen := make(map[string]bool)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return jsonSyntaxError(dec, err)
			}
			key, _ := tok.(string)
			if seen[key] {
				return &LoadError{Field: path, Reason: ErrSyntax, Detail: "key " + quoteShort(key) + " appears twice"}
			}
			seen[key] = true
			if !isMap && !isFieldName(key) {
				return &LoadError{Field: path, Reason: ErrUnknownField, Detail: quoteShort(key) + " (field names are lower-case snake_case)"}
			}
			child := key
			if path != "" {
				child = path + "." + key
			}
			if err := walkKeys(dec, child, !isMap && key == "secrets", depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return jsonSyntaxError(dec, err)
	}
	return nil
}

// attributeToApp names the app in a checkKeys error about "apps[i]...".
func attributeToApp(js []byte, err error) error {
	le, ok := err.(*LoadError)
	if !ok {
		return err
	}
	rest, ok := strings.CutPrefix(le.Field, "apps[")
	if !ok {
		return err
	}
	num, rest, ok := strings.Cut(rest, "]")
	i, convErr := strconv.Atoi(num)
	if !ok || convErr != nil {
		return err
	}
	var probe struct {
		Apps []struct {
			ID json.RawMessage `json:"id"`
		} `json:"apps"`
	}
	_ = json.Unmarshal(js, &probe)
	out := *le
	out.Index, out.Field = i+1, strings.TrimPrefix(rest, ".")
	if i < len(probe.Apps) {
		if id := idText(probe.Apps[i].ID); validName(id) {
			out.App = id
		}
	}
	return &out
}

func jsonSyntaxError(dec *json.Decoder, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &LoadError{Reason: ErrSyntax, Detail: "unexpected end of document"}
	}
	return &LoadError{Reason: ErrSyntax, Detail: fmt.Sprintf("%s (byte %d)", strings.TrimPrefix(err.Error(), "json: "), dec.InputOffset())}
}

func isFieldName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validName reports whether s can be an app id, a secret name or an
// advisory id: printable, no blanks, at most 256 bytes.
func validName(s string) bool {
	if s == "" || len(s) > 256 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// strictUnmarshal decodes one JSON value, refusing unknown fields.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// decodeError turns an error of strictUnmarshal into a *LoadError.
func decodeError(err error, app string, index int, what string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return &LoadError{App: app, Index: index, Reason: ErrBadValue, Detail: fmt.Sprintf("%s must be an object, not %s", what, te.Value)}
		}
		return &LoadError{App: app, Index: index, Field: field, Reason: ErrBadValue, Detail: "want " + te.Type.String() + ", not " + te.Value}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return &LoadError{App: app, Index: index, Field: name, Reason: ErrUnknownField}
	}
	return &LoadError{App: app, Index: index, Reason: ErrSyntax, Detail: strings.TrimPrefix(err.Error(), "json: ")}
}

type fileTop struct {
	AllowSimulated json.RawMessage `json:"allow_simulated"`
	MinTCBEval     json.RawMessage `json:"min_tcb_evaluation_data_number"`
	Apps           json.RawMessage `json:"apps"`
}

// fileApp is an app as written. Every field is kept raw so that absence,
// null and a wrong type each get their own message naming app and field.
type fileApp struct {
	ID           json.RawMessage `json:"id"`
	TEE          json.RawMessage `json:"tee"`
	Runtime      json.RawMessage `json:"runtime"`
	MrEnclave    json.RawMessage `json:"mr_enclave"`
	MrSigner     json.RawMessage `json:"mr_signer"`
	IsvProdID    json.RawMessage `json:"isv_prod_id"`
	MinIsvSvn    json.RawMessage `json:"min_isv_svn"`
	ConfigID     json.RawMessage `json:"config_id"`
	MinConfigSvn json.RawMessage `json:"min_config_svn"`
	MrTd         json.RawMessage `json:"mr_td"`
	Rtmr0        json.RawMessage `json:"rtmr0"`
	Rtmr1        json.RawMessage `json:"rtmr1"`
	Rtmr2        json.RawMessage `json:"rtmr2"`
	Rtmr3        json.RawMessage `json:"rtmr3"`
	MrConfigID   json.RawMessage `json:"mr_config_id"`
	MrOwner      json.RawMessage `json:"mr_owner"`
	MrOwnerCfg   json.RawMessage `json:"mr_owner_config"`
	MrServiceTd  json.RawMessage `json:"mr_servicetd"`
	AllowSeptVE  json.RawMessage `json:"allow_sept_ve"`
	TCBStatuses  json.RawMessage `json:"tcb_statuses"`
	AdvisoryIDs  json.RawMessage `json:"advisory_ids"`
	MinTCBEval   json.RawMessage `json:"min_tcb_evaluation_data_number"`
	Binding      json.RawMessage `json:"binding"`
	AllowDebug   json.RawMessage `json:"allow_debug"`
	StoreToken   json.RawMessage `json:"store_token"`
	Secrets      json.RawMessage `json:"secrets"`
}

type namedRaw struct {
	name string
	raw  json.RawMessage
}

func (f *fileApp) sgxFields() []namedRaw {
	return []namedRaw{{"mr_enclave", f.MrEnclave}, {"mr_signer", f.MrSigner}, {"isv_prod_id", f.IsvProdID},
		{"min_isv_svn", f.MinIsvSvn}, {"config_id", f.ConfigID}, {"min_config_svn", f.MinConfigSvn}}
}

func (f *fileApp) tdxFields() []namedRaw {
	return []namedRaw{{"mr_td", f.MrTd}, {"rtmr0", f.Rtmr0}, {"rtmr1", f.Rtmr1}, {"rtmr2", f.Rtmr2},
		{"rtmr3", f.Rtmr3}, {"mr_config_id", f.MrConfigID}, {"mr_owner", f.MrOwner}, {"mr_owner_config", f.MrOwnerCfg},
		{"mr_servicetd", f.MrServiceTd}, {"allow_sept_ve", f.AllowSeptVE}}
}

func decodePolicy(js []byte) (*Policy, error) {
	if t := bytes.TrimLeft(js, " \t\r\n"); len(t) > 0 && t[0] != '{' {
		return nil, &LoadError{Reason: ErrSyntax, Detail: "a policy is an object with apps, not " + kindOf(t)}
	}
	var top fileTop
	if err := strictUnmarshal(js, &top); err != nil {
		return nil, decodeError(err, "", 0, "the policy")
	}
	r := &reader{}
	p := &Policy{AllowSimulated: r.boolean("allow_simulated", top.AllowSimulated)}
	p.MinTCBEvalDataNumber, _ = r.u32("min_tcb_evaluation_data_number", top.MinTCBEval)
	var raws []json.RawMessage
	switch {
	case !present(top.Apps) || string(top.Apps) == "null":
		r.fail("apps", ErrMissingField, "a policy lists its apps")
	case json.Unmarshal(top.Apps, &raws) != nil:
		r.fail("apps", ErrBadValue, "want a list of apps")
	case len(raws) == 0:
		r.fail("apps", ErrMissingField, "the list is empty: such a policy refuses everything")
	}
	errs := r.errs
	ids := make(map[string]int)
	for i, raw := range raws {
		a, appErrs := decodeApp(raw, i+1)
		errs = append(errs, appErrs...)
		if a == nil || a.ID == "" {
			continue
		}
		key := strings.ToLower(a.ID)
		if prev, dup := ids[key]; dup {
			errs = append(errs, &LoadError{App: a.ID, Index: i + 1, Field: "id", Reason: ErrDuplicateID,
				Detail: fmt.Sprintf("app #%d has the same id (ids are compared ignoring case)", prev)})
			continue
		}
		ids[key] = i + 1
		// The policy-wide minimum is a floor no app can lower.
		a.MinTCBEvalDataNumber = max(a.MinTCBEvalDataNumber, p.MinTCBEvalDataNumber)
		p.Apps = append(p.Apps, a)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// idText reads an id written as a string or a number, without reporting.
func idText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if isJSONNumber(string(raw)) {
		return string(raw)
	}
	return ""
}

func decodeApp(raw json.RawMessage, index int) (*App, []error) {
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(raw, &probe)
	r := &reader{index: index}
	if id := idText(probe.ID); validName(id) {
		r.app = id
	}
	var f fileApp
	if err := strictUnmarshal(raw, &f); err != nil {
		return nil, []error{decodeError(err, r.app, index, "an app")}
	}
	a := &App{}

	if !present(f.ID) {
		r.fail("id", ErrMissingField, "every app needs an id")
	} else if id, ok := r.text("id", f.ID, true); ok {
		if !validName(id) {
			r.fail("id", ErrBadValue, "%s: an id is 1 to 256 printable characters without blanks", quoteShort(id))
		}
		a.ID = id
	}

	tee, ok := r.text("tee", f.TEE, false)
	switch {
	case !present(f.TEE):
		r.fail("tee", ErrMissingField, `want "sgx" or "tdx"`)
	case ok && (tee == string(claims.SGX) || tee == string(claims.TDX)):
		a.TEE = claims.TEE(tee)
	case ok:
		r.fail("tee", ErrBadValue, `%s: want "sgx" or "tdx"`, quoteShort(tee))
	}
	switch a.TEE {
	case claims.SGX:
		r.absent(f.tdxFields(), "a TDX", a.TEE)
		a.SGX = r.sgxSelector(&f)
	case claims.TDX:
		r.absent(f.sgxFields(), "an SGX", a.TEE)
		a.TDX = r.tdxSelector(&f)
	}

	if rt, ok := r.text("runtime", f.Runtime, false); ok {
		if !validName(rt) || strings.ToLower(rt) != rt {
			r.fail("runtime", ErrBadValue, "%s: want a lower-case runtime name as the attester reports it: gramine, occlum, tdx-guest, sgx-sdk, sim", quoteShort(rt))
		}
		a.Runtime = rt
	}
	a.TCBStatuses = r.statuses(f.TCBStatuses)
	a.AdvisoryIDs = r.advisories(f.AdvisoryIDs)
	a.MinTCBEvalDataNumber, _ = r.u32("min_tcb_evaluation_data_number", f.MinTCBEval)
	if b, ok := r.text("binding", f.Binding, false); ok {
		switch b {
		case "any":
		case claims.BindingTCGLabelled, claims.BindingTCGNonce:
			a.Binding = b
		default:
			r.fail("binding", ErrBadValue, "%s: want any (the default), %s or %s", quoteShort(b), claims.BindingTCGLabelled, claims.BindingTCGNonce)
		}
	}
	a.AllowDebug = r.boolean("allow_debug", f.AllowDebug)
	if tok, ok := r.text("store_token", f.StoreToken, false); ok {
		if strings.TrimSpace(tok) == "" {
			r.fail("store_token", ErrBadValue, "is empty: leave it out to use the store's own credentials")
		}
		a.StoreToken = NewToken(tok)
	}
	a.secrets = r.secrets(f.Secrets)
	if len(r.errs) > 0 {
		return nil, r.errs
	}
	return a, nil
}

// reader interprets raw fields of one app, collecting a *LoadError for each
// problem. Messages never repeat a store token or a secret reference.
type reader struct {
	app   string
	index int
	errs  []error
}

func (r *reader) fail(field string, reason error, format string, args ...any) {
	r.errs = append(r.errs, &LoadError{App: r.app, Index: r.index, Field: field, Reason: reason, Detail: fmt.Sprintf(format, args...)})
}

func present(raw json.RawMessage) bool { return len(raw) > 0 }

func kindOf(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "a string"
	case 'n':
		return "null (an empty value)"
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	case '[':
		return "a list"
	}
	return "a number"
}

// text reads a string field; with numbers set, a bare number counts as its
// text (an id, or hex digits YAML took for a number). null reads as "".
// ok is false when the field is absent or of another type.
func (r *reader) text(field string, raw json.RawMessage, numbers bool) (string, bool) {
	if !present(raw) {
		return "", false
	}
	switch k := kindOf(raw); {
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			r.fail(field, ErrBadValue, "not a valid string")
			return "", false
		}
		return s, true
	case raw[0] == 'n':
		return "", true
	case numbers && k == "a number":
		return string(raw), true
	default:
		r.fail(field, ErrBadValue, "want a string, not %s", k)
		return "", false
	}
}

// u16 reads a whole number 0..65535.
func (r *reader) u16(field string, raw json.RawMessage) (uint16, bool) {
	if !present(raw) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(raw), 10, 16)
	if err != nil {
		if k := kindOf(raw); k != "a number" {
			r.fail(field, ErrBadValue, "want a whole number 0..65535, not %s", k)
		} else {
			r.fail(field, ErrBadValue, "%s: want a whole number 0..65535", quoteShort(string(raw)))
		}
		return 0, false
	}
	return uint16(v), true
}

// u32 reads a whole number 0..4294967295.
func (r *reader) u32(field string, raw json.RawMessage) (uint32, bool) {
	if !present(raw) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(raw), 10, 32)
	if err != nil {
		if k := kindOf(raw); k != "a number" {
			r.fail(field, ErrBadValue, "want a whole number, not %s", k)
		} else {
			r.fail(field, ErrBadValue, "%s: want a whole number 0..4294967295", quoteShort(string(raw)))
		}
		return 0, false
	}
	return uint32(v), true
}

func (r *reader) boolean(field string, raw json.RawMessage) bool {
	if !present(raw) {
		return false
	}
	switch string(raw) {
	case "true":
		return true
	case "false":
		return false
	}
	r.fail(field, ErrBadValue, "want true or false, not %s", kindOf(raw))
	return false
}

func (r *reader) list(field string, raw json.RawMessage) ([]string, bool) {
	if !present(raw) {
		return nil, false
	}
	var l []string
	if raw[0] != '[' || json.Unmarshal(raw, &l) != nil {
		r.fail(field, ErrBadValue, "want a list of strings")
		return nil, false
	}
	return l, true
}

// measurement reads a hex measurement of size bytes. An empty value is an
// error, never a wildcard; zeroOK says whether all zeros is a meaningful
// value (it is for TDX's mr_config_id, never for mr_enclave).
func (r *reader) measurement(field string, raw json.RawMessage, size int, zeroOK bool) claims.Hex {
	s, ok := r.text(field, raw, true)
	if !ok {
		return nil
	}
	h, problem := parseMeasurement(s, size, zeroOK)
	if problem != "" {
		r.fail(field, ErrBadMeasurement, "%s", problem)
		return nil
	}
	return h
}

// parseMeasurement decodes hex digits (either case, optional 0x) of exactly
// size bytes, or says what is wrong with s.
func parseMeasurement(s string, size int, zeroOK bool) (claims.Hex, string) {
	want := fmt.Sprintf("want %d hex digits (%d bytes)", 2*size, size)
	if strings.TrimSpace(s) == "" {
		return nil, "empty: " + want + "; an empty measurement is never a wildcard"
	}
	h, err := claims.ParseHex(s)
	if err != nil {
		return nil, fmt.Sprintf("%s is not hex: %s", quoteShort(s), want)
	}
	if len(h) != size {
		return nil, fmt.Sprintf("%s is %d bytes: %s", quoteShort(s), len(h), want)
	}
	if !zeroOK && !slices.ContainsFunc(h, func(b byte) bool { return b != 0 }) {
		return nil, "all zeros: a placeholder, not a measurement"
	}
	return h, ""
}

func (r *reader) absent(fields []namedRaw, kind string, tee claims.TEE) {
	for _, f := range fields {
		if present(f.raw) {
			r.fail(f.name, ErrBadValue, "is %s selector; this app's tee is %s", kind, tee)
		}
	}
}

func (r *reader) sgxSelector(f *fileApp) *SGXSelector {
	s := &SGXSelector{
		MrEnclave: r.measurement("mr_enclave", f.MrEnclave, 32, false),
		MrSigner:  r.measurement("mr_signer", f.MrSigner, 32, false),
		ConfigID:  r.measurement("config_id", f.ConfigID, 64, true),
	}
	if v, ok := r.u16("isv_prod_id", f.IsvProdID); ok {
		s.IsvProdID = &v
	}
	s.MinIsvSvn, _ = r.u16("min_isv_svn", f.MinIsvSvn)
	s.MinConfigSvn, _ = r.u16("min_config_svn", f.MinConfigSvn)
	switch {
	case !present(f.MrEnclave) && !present(f.MrSigner):
		r.fail("mr_enclave", ErrNoSelector, "an sgx app needs mr_enclave and/or mr_signer; without them it would match any enclave")
	case !present(f.MrEnclave) && !present(f.IsvProdID):
		r.fail("isv_prod_id", ErrMissingField, "required when mr_signer stands alone: one signer signs many enclaves")
	}
	return s
}

func (r *reader) tdxSelector(f *fileApp) *TDXSelector {
	zero := map[string]string{
		"mr_td":           "all zeros: a placeholder, not a measurement",
		"rtmr0":           "all zeros: an RTMR nothing was measured into; it pins no code",
		"rtmr1":           "all zeros: an RTMR nothing was measured into; it pins no code",
		"rtmr2":           "all zeros: an RTMR nothing was measured into; it pins no code",
		"rtmr3":           "all zeros: the value of every TD whose guest never extended RTMR3; it selects nothing — leave it out",
		"mr_config_id":    "all zeros: the value of every TD whose host set none; it selects nothing — leave it out",
		"mr_owner":        "all zeros: the value of every TD whose host set none; it selects nothing — leave it out",
		"mr_owner_config": "all zeros: the value of every TD whose host set none; it selects nothing — leave it out",
		"mr_servicetd":    "all zeros: no service TD is bound, which is the default; leave it out",
	}
	m := func(field string, raw json.RawMessage) claims.Hex {
		return r.measurementNonZero(field, raw, 48, zero[field])
	}
	s := &TDXSelector{
		MrTd:          m("mr_td", f.MrTd),
		MrConfigID:    m("mr_config_id", f.MrConfigID),
		MrOwner:       m("mr_owner", f.MrOwner),
		MrOwnerConfig: m("mr_owner_config", f.MrOwnerCfg),
		MrServiceTd:   m("mr_servicetd", f.MrServiceTd),
		AllowSeptVE:   r.boolean("allow_sept_ve", f.AllowSeptVE),
	}
	for i, raw := range []json.RawMessage{f.Rtmr0, f.Rtmr1, f.Rtmr2, f.Rtmr3} {
		s.Rtmr[i] = m(rtmrNames[i], raw)
	}
	if !present(f.MrTd) {
		r.fail("mr_td", ErrNoSelector, "a tdx app needs mr_td; without it it would match any trust domain")
		return s
	}
	// MRTD measures only the TD's virtual firmware, which a cloud gives
	// every tenant alike, and RTMR0 the firmware's configuration (TD HOB,
	// ACPI tables, configuration firmware volume), which the VMM hands
	// every TD of an instance type alike. The code is in RTMR1 (the OS
	// loader and kernel) and RTMR2 (the kernel command line and initrd, or
	// with a boot loader the kernel and initrd it loads): a policy without
	// both admits any user space (rdinit=/bin/sh) or any kernel.
	// MRCONFIGID, MROWNER and MROWNERCONFIG are chosen by the host that
	// launches the TD, and RTMR3 is extended by the guest at run time: a TD
	// with the same firmware and an attacker's kernel shows whatever values
	// of those the attacker likes. They, and RTMR0, only narrow a match.
	var missing []string
	for _, nr := range []namedRaw{{"rtmr1", f.Rtmr1}, {"rtmr2", f.Rtmr2}} {
		if !present(nr.raw) {
			missing = append(missing, nr.name)
		}
	}
	if len(missing) > 0 {
		var narrow []string
		for _, nr := range []namedRaw{{"rtmr0", f.Rtmr0}, {"rtmr1", f.Rtmr1}, {"rtmr2", f.Rtmr2}, {"rtmr3", f.Rtmr3},
			{"mr_config_id", f.MrConfigID}, {"mr_owner", f.MrOwner}, {"mr_owner_config", f.MrOwnerCfg}} {
			if present(nr.raw) {
				narrow = append(narrow, nr.name)
			}
		}
		has := "it names only mr_td"
		if len(narrow) > 0 {
			has = "it names mr_td and " + strings.Join(narrow, ", ")
		}
		r.fail(strings.Join(missing, ", "), ErrNoSelector, "a tdx app must pin the TD's code: mr_td, rtmr1 and rtmr2 are required (%s; missing %s). "+
			"mr_td measures only the TD firmware, which other tenants share; rtmr0 measures the firmware's configuration, which the VMM gives every TD of an instance type; "+
			"rtmr1 measures the OS loader and kernel, rtmr2 the kernel command line and initrd: without both, the same firmware boots another kernel or "+
			"the same kernel another user space (rdinit=, initrd). "+
			"rtmr0, rtmr3, mr_config_id, mr_owner and mr_owner_config only narrow a match (the mr_ values are chosen by the host that launches the TD and rtmr3 is extended by the guest at run time). "+
			"Add the rtmr values of your TD (asps quote inspect or asps whoami shows them)", has, strings.Join(missing, " and "))
	}
	return s
}

// measurementNonZero is measurement for fields where all zeros must never
// select: zeroWhy says why, in the error.
func (r *reader) measurementNonZero(field string, raw json.RawMessage, size int, zeroWhy string) claims.Hex {
	h := r.measurement(field, raw, size, true)
	if h != nil && !slices.ContainsFunc(h, func(b byte) bool { return b != 0 }) {
		r.fail(field, ErrBadMeasurement, "%s", zeroWhy)
		return nil
	}
	return h
}

// canonicalStatus finds a TCB status by name, ignoring case.
func canonicalStatus(s string) (string, bool) {
	for _, k := range claims.KnownStatuses {
		if strings.EqualFold(s, k) {
			return k, true
		}
	}
	return "", false
}

func (r *reader) statuses(raw json.RawMessage) []string {
	l, ok := r.list("tcb_statuses", raw)
	if !ok {
		return []string{claims.StatusUpToDate}
	}
	if len(l) == 0 {
		r.fail("tcb_statuses", ErrBadTCBStatus, "the list is empty, so the app could never match; leave it out to accept UpToDate only")
	}
	var out []string
	for _, s := range l {
		k, known := canonicalStatus(s)
		switch {
		case !known:
			r.fail("tcb_statuses", ErrBadTCBStatus, "%s is not a TCB status (known: %s)", quoteShort(s), strings.Join(claims.KnownStatuses, ", "))
		case k == claims.StatusRevoked:
			r.fail("tcb_statuses", ErrBadTCBStatus, "Revoked is never acceptable: the platform's keys are compromised")
		case !slices.Contains(out, k):
			out = append(out, k)
		}
	}
	return out
}

func (r *reader) advisories(raw json.RawMessage) []string {
	l, ok := r.list("advisory_ids", raw)
	if !ok {
		return nil
	}
	var out []string
	for _, s := range l {
		if !validName(s) {
			r.fail("advisory_ids", ErrBadValue, "%s: want an advisory id such as INTEL-SA-00615, or \"*\"", quoteShort(s))
			continue
		}
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, s) }) {
			out = append(out, s)
		}
	}
	return out
}

func (r *reader) secrets(raw json.RawMessage) map[string]string {
	if !present(raw) {
		r.fail("secrets", ErrNoSecrets, "every app names at least one secret it may read")
		return nil
	}
	var m map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		r.fail("secrets", ErrBadValue, "want an object of secret name: store reference")
		return nil
	}
	if len(m) == 0 {
		r.fail("secrets", ErrNoSecrets, "the object is empty")
		return nil
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make(map[string]string, len(m))
	for _, n := range names {
		if !validName(n) {
			r.fail("secrets", ErrBadValue, "secret name %s: 1 to 256 printable characters without blanks", quoteShort(n))
			continue
		}
		field := "secrets." + n
		ref, ok := r.text(field, m[n], false)
		if !ok {
			continue
		}
		if strings.TrimSpace(ref) == "" {
			r.fail(field, ErrEmptySecretRef, "give the store reference of this secret")
			continue
		}
		out[n] = ref
	}
	return out
}
