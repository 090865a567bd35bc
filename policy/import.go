package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// InlinePrefix starts a secret reference whose value was written inline in
// an imported file (Intel ASPS with "kms": "none", Occlum's
// secret_config.json). The values are in Imported.Inline under the full
// reference; the server serves them from a memory store.
const InlinePrefix = "inline:"

// Imported is the result of importing another system's configuration.
type Imported struct {
	// Format names what was imported: "intel-asps", "intel-asps-template",
	// "occlum", or "asps" (a file already in this package's format).
	Format string
	// Policy is the equivalent policy, validated like a hand-written one.
	// Its apps carry the Inline values (see SecretRef.InlineValue).
	Policy *Policy
	// Inline maps each InlinePrefix reference of Policy to its value,
	// verbatim as the original server sent it (Occlum's secret_config holds
	// base64 text, and its server sends that text). Never log these.
	Inline map[string][]byte
	// VaultAddr is Intel ASPS's "addr": where the Vault store should point.
	// Its secret references are Vault KV version 1 paths whose value is in
	// the field "key" (`vault kv put occlum/1/image_key key=...`).
	VaultAddr string
	// Warnings lists, one sentence each, everything the original accepted
	// that the policy does not (or does only with a dangerous setting), and
	// every app or secret left out with the reason. Never a token or value.
	Warnings []string
}

// Import reads one file of a known format, telling it by its content:
//
//   - Intel ASPS policy_vault.json / policy_no_kms.json (an object with
//     "kms" and "app_list") and policy_template.json (a list of those):
//     as ImportIntelASPS(data, nil);
//   - an RA-TLS verification config (Intel ASPS / Occlum dynamic_config.json,
//     Occlum ra_config_template.json: "verify_*" switches and "sgx_mrs"): as
//     ImportOcclum(data, nil) — refused with ErrNoSecrets, since such a file
//     says who may connect but not which secrets they may read;
//   - a policy in this package's format: as Parse;
//   - files that are not policies are refused with ErrNotPolicy and what to
//     do instead: a Vault ACL (HCL), a secret file (name → value), Occlum's
//     init client config (its ra_config describes the key server, not the
//     workload).
func Import(data []byte) (*Imported, error) {
	if len(data) > MaxFileSize {
		return nil, &LoadError{Reason: ErrSyntax, Detail: fmt.Sprintf("larger than %d bytes", MaxFileSize)}
	}
	if !looksJSON(bytes.TrimPrefix(data, utf8BOM)) && bytes.Contains(data, []byte("path \"")) && bytes.Contains(data, []byte("capabilities")) {
		return nil, &LoadError{Reason: ErrNotPolicy, Detail: "a Vault ACL policy (HCL): it limits what a Vault token may read. " +
			"asps does not load it; keep it in Vault for the token you give the app as store_token (Intel ASPS's app_token)"}
	}
	js, err := toJSON(data, "")
	if err != nil {
		return nil, &LoadError{Reason: ErrUnknownFormat, Detail: "neither JSON nor YAML: " + err.Error()}
	}
	if t := bytes.TrimLeft(js, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(js, &list) != nil || len(list) == 0 ||
			slices.ContainsFunc(list, func(v json.RawMessage) bool { return len(v) == 0 || v[0] != '{' }) {
			return nil, &LoadError{Reason: ErrUnknownFormat, Detail: "a list, but not of Intel ASPS policies"}
		}
		return ImportIntelASPS(data, nil)
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(js, &top) != nil || len(top) == 0 {
		return nil, &LoadError{Reason: ErrUnknownFormat, Detail: "not an object with known fields"}
	}
	has := func(keys ...string) bool {
		return slices.ContainsFunc(keys, func(k string) bool { _, ok := top[k]; return ok })
	}
	switch {
	case has("apps"):
		p, err := Parse(data, "")
		if err != nil {
			return nil, err
		}
		return &Imported{Format: "asps", Policy: p}, nil
	case has("app_list", "kms"):
		return ImportIntelASPS(data, nil)
	case has("ra_config", "kms_server", "kms_keys"):
		return nil, occlumClientConfig(js)
	case has("sgx_mrs", "verify_mr_enclave", "verify_mr_signer"):
		return ImportOcclum(data, nil)
	}
	for _, v := range top {
		if len(v) == 0 || v[0] != '"' {
			return nil, &LoadError{Reason: ErrUnknownFormat, Detail: "an object with none of the fields of a known policy format"}
		}
	}
	return nil, &LoadError{Reason: ErrNotPolicy, Detail: "a secret file (name → value, like Occlum's secret_config.json): it names no workload. " +
		"Import it together with the server's RA-TLS config (ImportOcclum, `asps policy import --secrets`)"}
}

// occlumClientConfig explains why Occlum's init_grpc_ratls.json is no policy.
func occlumClientConfig(js []byte) error {
	var f struct {
		KmsServer string `json:"kms_server"`
		KmsKeys   []struct {
			Key string `json:"key"`
		} `json:"kms_keys"`
	}
	_ = json.Unmarshal(js, &f)
	var names []string
	for _, k := range f.KmsKeys {
		if len(names) == 8 {
			names = append(names, "…")
			break
		}
		names = append(names, quoteShort(k.Key))
	}
	asks := "no secret"
	if len(names) > 0 {
		asks = strings.Join(names, ", ")
	}
	return &LoadError{Reason: ErrNotPolicy, Detail: fmt.Sprintf("an Occlum init client config: its ra_config describes the key server "+
		"(kms_server %s) that the enclave trusts, not the enclave, so it cannot say which workloads may read secrets. "+
		"The enclave asks for %s. Import the server's dynamic_config/ra_config with its secret_config instead",
		quoteShort(f.KmsServer), asks)}
}

// importJSON turns an imported file into checked JSON.
func importJSON(data []byte, rootIsMap bool) ([]byte, error) {
	if len(data) > MaxFileSize {
		return nil, &LoadError{Reason: ErrSyntax, Detail: fmt.Sprintf("larger than %d bytes", MaxFileSize)}
	}
	js, err := toJSON(data, "")
	if err != nil {
		return nil, err
	}
	if err := checkKeys(js, rootIsMap); err != nil {
		return nil, err
	}
	return js, nil
}

type intelPolicy struct {
	KMS        string            `json:"kms"`
	Addr       string            `json:"addr"`
	AuthMethod string            `json:"auth_method"`
	RootKey    string            `json:"root_key"`
	UnsealKey  string            `json:"unseal_key"`
	AppList    []json.RawMessage `json:"app_list"`
}

type intelApp struct {
	ID        json.RawMessage   `json:"id"`
	MrEnclave *string           `json:"mr_enclave"`
	AppToken  *string           `json:"app_token"`
	AppID     *string           `json:"app_id"`  // ehsm only
	APIKey    *string           `json:"api_key"` // ehsm only
	Secrets   map[string]string `json:"secrets"`
}

// ImportIntelASPS converts an Intel ASPS policy (policy_vault.json,
// policy_no_kms.json, or the list of policy_template.json) into a policy.
// Each app becomes an SGX app matching its mr_enclave; an app whose
// mr_enclave is missing, empty, not hex or of the wrong length — all of
// which Intel's ASPS treats as matching any enclave — is left out with the
// reason. With "kms": "vault" the secret references are the Vault paths
// (KV v1) and app_token becomes store_token; with "kms": "none" the values
// are inline (see InlinePrefix; reference "inline:<app id>/<name>", both
// path-escaped). "ehsm" is refused: Intel's ASPS never implemented it.
//
// dynamicConfig, if not nil, is the dynamic_config.json the same server used
// to verify RA-TLS peers; its sgx_mrs entries then narrow each app (mr_signer,
// isv_prod_id, isv_svn), one app per entry that admits the app's mr_enclave.
//
// The error joins a *LoadError for each reason when nothing can be imported.
func ImportIntelASPS(policy, dynamicConfig []byte) (*Imported, error) {
	js, err := importJSON(policy, false)
	if err != nil {
		return nil, err
	}
	imp := &Imported{Format: "intel-asps", Inline: make(map[string][]byte)}
	var ras []raIdentity
	if dynamicConfig != nil {
		var raErrs []error
		ras, raErrs = imp.parseRAConfig(dynamicConfig)
		if len(ras) == 0 {
			return nil, fmt.Errorf("dynamic config: %w", errors.Join(raErrs...))
		}
		imp.leftOut(raErrs)
	}
	var apps []encApp
	var errs []error
	if t := bytes.TrimLeft(js, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		imp.Format = "intel-asps-template"
		var variants []json.RawMessage
		if err := json.Unmarshal(js, &variants); err != nil || len(variants) == 0 {
			return nil, &LoadError{Reason: ErrUnknownFormat, Detail: "want a non-empty list of Intel ASPS policies"}
		}
		for i, v := range variants {
			a, e := imp.intelVariant(v, fmt.Sprintf("variant %d: ", i+1))
			apps, errs = append(apps, a...), append(errs, e...)
		}
	} else {
		apps, errs = imp.intelVariant(js, "")
	}
	if ras != nil {
		var e []error
		apps, e = combineRA(apps, ras)
		errs = append(errs, e...)
	}
	return imp.finish(apps, errs)
}

// intelVariant imports one Intel ASPS policy object.
func (imp *Imported) intelVariant(js []byte, label string) ([]encApp, []error) {
	wrap := func(err error) error {
		if label == "" {
			return err
		}
		return fmt.Errorf("%s%w", label, err)
	}
	var f intelPolicy
	if err := strictUnmarshal(js, &f); err != nil {
		return nil, []error{wrap(decodeError(err, "", 0, "an Intel ASPS policy"))}
	}
	switch f.KMS {
	case "vault", "none":
	case "ehsm":
		return nil, []error{wrap(&LoadError{Field: "kms", Reason: ErrUnsupportedKMS, Detail: `"ehsm": Intel's ASPS never implemented it; use "vault", or "none" for inline values`})}
	default:
		return nil, []error{wrap(&LoadError{Field: "kms", Reason: ErrUnsupportedKMS, Detail: quoteShort(f.KMS) + `: want "vault" or "none"`})}
	}
	if f.KMS == "vault" {
		if f.Addr != "" {
			if imp.VaultAddr != "" && imp.VaultAddr != f.Addr {
				imp.warn("%saddr %s differs from %s given earlier: only the first is kept", label, quoteShort(f.Addr), quoteShort(imp.VaultAddr))
			} else {
				imp.VaultAddr = f.Addr
			}
		}
		if f.AuthMethod != "" && f.AuthMethod != "token" {
			imp.warn("%sauth_method %s not imported: configure the Vault store's authentication", label, quoteShort(f.AuthMethod))
		}
	}
	if f.RootKey != "" {
		imp.warn("%sroot_key is set (not imported, not shown): asps never needs Vault's root token; remove it from the file and revoke it if it was shared", label)
	}
	if f.UnsealKey != "" {
		imp.warn("%sunseal_key is set (not imported, not shown): asps never needs it; remove it from the file", label)
	}
	if len(f.AppList) == 0 {
		return nil, []error{wrap(&LoadError{Field: "app_list", Reason: ErrMissingField, Detail: "no apps"})}
	}
	var apps []encApp
	var errs []error
	for i, raw := range f.AppList {
		a, err := imp.intelApp(raw, i+1, f.KMS, label)
		if err != nil {
			errs = append(errs, wrap(err))
			continue
		}
		apps = append(apps, a)
	}
	return apps, errs
}

func (imp *Imported) intelApp(raw json.RawMessage, index int, kms, label string) (encApp, error) {
	var ia intelApp
	if err := strictUnmarshal(raw, &ia); err != nil {
		return encApp{}, decodeError(err, "", index, "an app")
	}
	id := idText(ia.ID)
	if !validName(id) {
		return encApp{}, &LoadError{Index: index, Field: "id", Reason: ErrMissingField, Detail: "want a number or a name"}
	}
	if ia.MrEnclave == nil {
		return encApp{}, &LoadError{App: id, Field: "mr_enclave", Reason: ErrNoSelector,
			Detail: "refused: Intel's ASPS matches any enclave for an app without mr_enclave"}
	}
	mr, problem := parseMeasurement(*ia.MrEnclave, 32, false)
	if problem != "" {
		return encApp{}, &LoadError{App: id, Field: "mr_enclave", Reason: ErrBadMeasurement,
			Detail: problem + "; refused (Intel's ASPS matches any enclave on an empty or non-hex mr_enclave)"}
	}
	if ia.AppID != nil || ia.APIKey != nil {
		imp.warn("%sapp %q: app_id/api_key are eHSM fields, ignored", label, id)
	}
	a := encApp{ID: id, TEE: "sgx", MrEnclave: mr.String(), Secrets: make(map[string]string)}
	names := make([]string, 0, len(ia.Secrets))
	for n := range ia.Secrets {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v := ia.Secrets[n]
		switch {
		case !validName(n):
			imp.warn("%sapp %q: secret name %s is not usable (blanks or control characters) — left out", label, id, quoteShort(n))
		case kms == "vault" && strings.TrimSpace(v) == "":
			imp.warn("%sapp %q: secret %q has no Vault path — left out", label, id, n)
		case kms == "vault":
			a.Secrets[n] = v
		case v == "":
			imp.warn("%sapp %q: secret %q has an empty value (a placeholder?) — left out", label, id, n)
		default:
			ref := InlinePrefix + url.PathEscape(id) + "/" + url.PathEscape(n)
			imp.Inline[ref] = []byte(v)
			a.Secrets[n] = ref
		}
	}
	if len(a.Secrets) == 0 {
		return encApp{}, &LoadError{App: id, Field: "secrets", Reason: ErrNoSecrets, Detail: "no usable secret"}
	}
	if kms == "vault" {
		if ia.AppToken != nil && *ia.AppToken != "" {
			a.StoreToken = *ia.AppToken
		} else {
			imp.warn("%sapp %q has no app_token: the Vault store will read its secrets with its own token", label, id)
		}
	}
	return a, nil
}

// raIdentity is one usable entry of an RA-TLS config's sgx_mrs, as selectors.
type raIdentity struct {
	index                   int // position in sgx_mrs, from 0
	mrEnclave, mrSigner     string
	isvProdID               *uint16
	minIsvSvn, minConfigSvn uint16
	allowDebug              bool
}

type raConfigFile struct {
	VerifyMrEnclave         *string           `json:"verify_mr_enclave"`
	VerifyMrSigner          *string           `json:"verify_mr_signer"`
	VerifyIsvProdID         *string           `json:"verify_isv_prod_id"`
	VerifyIsvSvn            *string           `json:"verify_isv_svn"`
	VerifyConfigSvn         *string           `json:"verify_config_svn"`
	VerifyEnclaveDebuggable *string           `json:"verify_enclave_debuggable"`
	SgxMrs                  []json.RawMessage `json:"sgx_mrs"`
}

type raEntry struct {
	MrEnclave  *string         `json:"mr_enclave"`
	MrSigner   *string         `json:"mr_signer"`
	IsvProdID  json.RawMessage `json:"isv_prod_id"`
	IsvSvn     json.RawMessage `json:"isv_svn"`
	ConfigSvn  json.RawMessage `json:"config_svn"`
	Debuggable *bool           `json:"debuggable"`
}

// parseRAConfig reads the RA-TLS verification config shared by Intel's ASPS
// and Occlum. A switch that is absent counts as "off", as in their code. It
// returns the usable sgx_mrs entries and, for the rest, why not; if the
// switches themselves make every entry unsafe, no entry is usable.
func (imp *Imported) parseRAConfig(data []byte) ([]raIdentity, []error) {
	js, err := importJSON(data, false)
	if err != nil {
		return nil, []error{err}
	}
	var f raConfigFile
	if err := strictUnmarshal(js, &f); err != nil {
		return nil, []error{decodeError(err, "", 0, "an RA-TLS config")}
	}
	on := map[string]bool{}
	var errs []error
	for name, v := range map[string]*string{
		"verify_mr_enclave": f.VerifyMrEnclave, "verify_mr_signer": f.VerifyMrSigner,
		"verify_isv_prod_id": f.VerifyIsvProdID, "verify_isv_svn": f.VerifyIsvSvn,
		"verify_config_svn": f.VerifyConfigSvn, "verify_enclave_debuggable": f.VerifyEnclaveDebuggable,
	} {
		switch {
		case v == nil || *v == "off":
		case *v == "on":
			on[name] = true
		default:
			errs = append(errs, &LoadError{Field: name, Reason: ErrBadValue, Detail: quoteShort(*v) + `: want "on" or "off"`})
		}
	}
	switch {
	case len(errs) > 0:
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errs
	case !on["verify_mr_enclave"] && !on["verify_mr_signer"]:
		return nil, []error{&LoadError{Field: "verify_mr_enclave", Reason: ErrNoSelector,
			Detail: "verify_mr_enclave and verify_mr_signer are off: this app would match any enclave — refused"}}
	case !on["verify_mr_enclave"] && !on["verify_isv_prod_id"]:
		return nil, []error{&LoadError{Field: "verify_isv_prod_id", Reason: ErrMissingField,
			Detail: "off while only mr_signer is checked: every enclave of this signer would match — refused"}}
	case len(f.SgxMrs) == 0:
		return nil, []error{&LoadError{Field: "sgx_mrs", Reason: ErrNoSelector, Detail: "no entries"}}
	}
	if on["verify_isv_svn"] {
		imp.warn("verify_isv_svn compared isv_svn for equality; it is imported as min_isv_svn (that version or later)")
	}
	if on["verify_config_svn"] {
		imp.warn("verify_config_svn compared config_svn for equality; it is imported as min_config_svn (that version or later)")
	}
	var ids []raIdentity
	for i, raw := range f.SgxMrs {
		label := fmt.Sprintf("sgx_mrs[%d]", i)
		var e raEntry
		if err := strictUnmarshal(raw, &e); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label, decodeError(err, "", 0, "an sgx_mrs entry")))
			continue
		}
		id := raIdentity{index: i}
		bad := func(field string, reason error, detail string) {
			errs = append(errs, &LoadError{Field: label + "." + field, Reason: reason, Detail: detail})
		}
		n := len(errs)
		for _, m := range []struct {
			field, sw string
			v         *string
			out       *string
		}{{"mr_enclave", "verify_mr_enclave", e.MrEnclave, &id.mrEnclave}, {"mr_signer", "verify_mr_signer", e.MrSigner, &id.mrSigner}} {
			switch {
			case !on[m.sw]:
				if m.v != nil && *m.v != "" {
					imp.warn("%s.%s ignored: %s is off", label, m.field, m.sw)
				}
			case m.v == nil:
				bad(m.field, ErrBadMeasurement, "missing while "+m.sw+" is on")
			default:
				h, problem := parseMeasurement(*m.v, 32, false)
				if problem != "" {
					bad(m.field, ErrBadMeasurement, problem)
				}
				*m.out = h.String()
			}
		}
		for _, s := range []struct {
			field, sw string
			raw       json.RawMessage
			set       func(uint16)
		}{
			{"isv_prod_id", "verify_isv_prod_id", e.IsvProdID, func(v uint16) { id.isvProdID = &v }},
			{"isv_svn", "verify_isv_svn", e.IsvSvn, func(v uint16) { id.minIsvSvn = v }},
			{"config_svn", "verify_config_svn", e.ConfigSvn, func(v uint16) { id.minConfigSvn = v }},
		} {
			if !on[s.sw] {
				continue
			}
			v, err := raNumber(s.raw)
			if err != nil {
				bad(s.field, ErrBadValue, err.Error()+" (while "+s.sw+" is on)")
				continue
			}
			s.set(v)
		}
		if len(errs) > n {
			continue
		}
		switch {
		case e.Debuggable != nil && *e.Debuggable:
			id.allowDebug = true
			imp.warn("%s: debuggable: true → allow_debug: a debug enclave's host can read its memory; never use it in production", label)
		case !on["verify_enclave_debuggable"]:
			imp.warn("%s: the debug attribute was not checked (verify_enclave_debuggable off or absent), so debug enclaves were accepted; asps refuses them unless allow_debug is set", label)
		}
		ids = append(ids, id)
	}
	return ids, errs
}

// raNumber reads a number written as a JSON number or a string of digits.
func raNumber(raw json.RawMessage) (uint16, error) {
	if len(raw) == 0 {
		return 0, errors.New("missing")
	}
	s := string(raw)
	if raw[0] == '"' {
		if json.Unmarshal(raw, &s) != nil {
			return 0, errors.New("not a string")
		}
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%s: want a whole number 0..65535", quoteShort(s))
	}
	return uint16(v), nil
}

// combineRA narrows Intel ASPS apps by the sgx_mrs entries of its dynamic
// config: Intel's server served an app only to a peer that passed one entry.
func combineRA(apps []encApp, ras []raIdentity) ([]encApp, []error) {
	var out []encApp
	var errs []error
	for _, a := range apps {
		var fit []raIdentity
		for _, r := range ras {
			if r.mrEnclave == "" || r.mrEnclave == a.MrEnclave {
				fit = append(fit, r)
			}
		}
		if len(fit) == 0 {
			errs = append(errs, &LoadError{App: a.ID, Field: "mr_enclave", Reason: ErrNoSelector,
				Detail: "no sgx_mrs entry of the dynamic config admits this mr_enclave, so Intel's ASPS could never serve the app"})
			continue
		}
		for _, r := range fit {
			c := a
			if len(fit) > 1 {
				c.ID = fmt.Sprintf("%s-%d", a.ID, r.index+1)
			}
			c.MrSigner, c.IsvProdID, c.MinIsvSvn, c.MinConfigSvn, c.AllowDebug = r.mrSigner, r.isvProdID, r.minIsvSvn, r.minConfigSvn, r.allowDebug
			out = append(out, c)
		}
	}
	return out, errs
}

// ImportOcclum converts Occlum's gRPC RA-TLS server configuration: the RA
// config it verifies clients with (dynamic_config.json, in the format of
// ra_config_template.json) and its secret file (secret_config.json, name →
// value). Occlum's server gives every client that passes the RA config every
// secret, so each sgx_mrs entry becomes an app "occlum-<n>" (n from 1) that
// may read all the secrets, inline (reference "inline:<name>", path-escaped).
// Switches that are off are not inherited: an entry that would match any
// enclave is refused, and debug enclaves are refused unless the entry says
// debuggable: true. secretConfig may be nil only to check the RA config: the
// result is then ErrNoSecrets.
func ImportOcclum(raConfig, secretConfig []byte) (*Imported, error) {
	if js, err := toJSON(raConfig, ""); err == nil {
		var top map[string]json.RawMessage
		if json.Unmarshal(js, &top) == nil {
			if _, client := top["ra_config"]; client {
				return nil, occlumClientConfig(js)
			}
		}
	}
	imp := &Imported{Format: "occlum", Inline: make(map[string][]byte)}
	ids, errs := imp.parseRAConfig(raConfig)
	secrets := make(map[string]string)
	if secretConfig == nil {
		errs = append(errs, &LoadError{Field: "secrets", Reason: ErrNoSecrets,
			Detail: "an RA-TLS config says who may connect, not what they may read; import it with the secrets it guarded " +
				"(Occlum: ImportOcclum with secret_config.json; Intel ASPS: ImportIntelASPS with the policy file)"})
	} else if err := imp.occlumSecrets(secretConfig, secrets); err != nil {
		errs = append(errs, err)
	}
	var apps []encApp
	if len(secrets) > 0 {
		for _, id := range ids {
			apps = append(apps, encApp{
				ID: fmt.Sprintf("occlum-%d", id.index+1), TEE: "sgx",
				MrEnclave: id.mrEnclave, MrSigner: id.mrSigner, IsvProdID: id.isvProdID,
				MinIsvSvn: id.minIsvSvn, MinConfigSvn: id.minConfigSvn, AllowDebug: id.allowDebug,
				Secrets: secrets,
			})
		}
		if len(apps) > 0 {
			imp.warn("Occlum's server gives every verified enclave every secret: each imported app may read all %d; narrow the lists", len(secrets))
		}
	}
	return imp.finish(apps, errs)
}

func (imp *Imported) occlumSecrets(data []byte, out map[string]string) error {
	js, err := importJSON(data, true)
	if err != nil {
		return fmt.Errorf("secret file: %w", err)
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(js, &m) != nil {
		return &LoadError{Field: "secrets", Reason: ErrBadValue, Detail: "want an object of name: value"}
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		var v string
		switch {
		case !validName(n):
			imp.warn("secret name %s is not usable (blanks or control characters) — left out", quoteShort(n))
		case json.Unmarshal(m[n], &v) != nil:
			imp.warn("secret %q is not a string — left out", n)
		case v == "":
			imp.warn("secret %q has an empty value — left out", n)
		default:
			ref := InlinePrefix + url.PathEscape(n)
			imp.Inline[ref] = []byte(v)
			out[n] = ref
		}
	}
	if len(out) == 0 {
		return &LoadError{Field: "secrets", Reason: ErrNoSecrets, Detail: "the secret file has no usable secret"}
	}
	return nil
}

func (imp *Imported) warn(format string, args ...any) {
	imp.Warnings = append(imp.Warnings, fmt.Sprintf(format, args...))
}

// leftOut records, as warnings, what was refused while something else was imported.
func (imp *Imported) leftOut(errs []error) {
	for _, e := range errs {
		imp.warn("left out: %v", e)
	}
}

// finish builds the policy from the imported apps, through Parse, so that an
// imported policy passes exactly the checks of a hand-written one.
func (imp *Imported) finish(apps []encApp, errs []error) (*Imported, error) {
	if len(apps) == 0 {
		if len(errs) == 0 {
			errs = append(errs, &LoadError{Field: "apps", Reason: ErrMissingField, Detail: "nothing to import"})
		}
		return nil, errors.Join(errs...)
	}
	imp.leftOut(errs)
	var buf bytes.Buffer
	if err := encode(&buf, "json", encPolicy{Apps: apps}); err != nil {
		return nil, err
	}
	p, err := Parse(buf.Bytes(), "json")
	if err != nil {
		return nil, err
	}
	used := make(map[string]bool)
	for _, a := range p.Apps {
		for _, ref := range a.secrets {
			used[ref] = true
		}
	}
	for ref := range imp.Inline {
		if !used[ref] {
			delete(imp.Inline, ref)
		}
	}
	// The values travel with the policy they belong to.
	if imp.Policy, err = p.WithInline(imp.Inline); err != nil {
		return nil, err
	}
	imp.warn("imported apps accept TCB status UpToDate only, tolerate no advisory and refuse debug enclaves unless stated above; " +
		"the original did not check these: add tcb_statuses and advisory_ids where your platforms need them")
	return imp, nil
}
