package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/internal/fileread"
	"github.com/asps-project/asps/policy"
)

// A workload that talks to a server in a TEE (mutual attestation) judges
// the server's verified claims with the same policy engine, format and
// defaults as the server judges workloads: TCB status (UpToDate unless
// tcb_statuses widens it), advisories (none unless advisory_ids tolerates
// them), debug (refused unless allow_debug), product id, minimum SVNs, and
// the rule a TDX identity must pin code, not only firmware. A server policy
// is a policy file whose apps describe the acceptable server; an app needs
// no secrets list there.

// serverSecretName is the placeholder secret of a server-policy app that
// lists none (the policy format requires one; nothing reads it).
const serverSecretName = "asps-server"

// ErrServerPolicy marks a server policy that cannot be used (not a policy,
// or one that cannot judge a server).
var ErrServerPolicy = errors.New("unusable server policy")

// LoadServerPolicy reads a server policy file (YAML or JSON, by extension
// or content as policy.Load does). allowSimulated says whether the
// policy may admit simulated evidence (dev mode only).
func LoadServerPolicy(path string, allowSimulated bool) (*policy.Policy, error) {
	// Regular files only, refused before they are opened (a FIFO would
	// block the open), and never more than the policy limit.
	data, err := fileread.Read(path, policy.MaxFileSize)
	switch {
	case errors.Is(err, fileread.ErrNotRegular):
		return nil, fmt.Errorf("server policy %s: %w: %w", path, ErrServerPolicy, err)
	case errors.Is(err, fileread.ErrTooLarge):
		return nil, fmt.Errorf("server policy %s: %w: larger than %d bytes", path, ErrServerPolicy, policy.MaxFileSize)
	case err != nil:
		return nil, fmt.Errorf("server policy: %w", err)
	}
	format := ""
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		format = "json"
	case ".yaml", ".yml":
		format = "yaml"
	}
	p, err := ParseServerPolicy(data, format, allowSimulated)
	if err != nil {
		return nil, fmt.Errorf("server policy %s: %w", path, err)
	}
	return p, nil
}

// ParseServerPolicy parses a server policy with policy.Parse, so every
// rule of the policy package applies. Apps without a secrets list get a
// placeholder one. allow_simulated is refused unless allowSimulated.
func ParseServerPolicy(data []byte, format string, allowSimulated bool) (*policy.Policy, error) {
	if len(data) > policy.MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrServerPolicy, policy.MaxFileSize)
	}
	written := data
	data, changed, err := addPlaceholderSecrets(data)
	if err != nil {
		return nil, err
	}
	if changed {
		// A problem with the document's form (YAML or JSON syntax, an
		// alias, a repeated key, a field name) is reported on the document
		// as written: the re-encoded one has other line numbers and offsets.
		// Parse reports such a problem alone, as one *LoadError.
		if _, perr := policy.Parse(written, format); perr != nil {
			if le, ok := perr.(*policy.LoadError); ok {
				return nil, le
			}
		}
		format = "yaml" // re-encoded; JSON is YAML too, so the input was read as such
	}
	p, err := policy.Parse(data, format)
	if err != nil {
		return nil, err
	}
	if p.AllowSimulated && !allowSimulated {
		return nil, fmt.Errorf("%w: allow_simulated admits a simulated server, which only dev mode may do", ErrServerPolicy)
	}
	return p, nil
}

// addPlaceholderSecrets adds a placeholder secrets list to every app of
// the document that has none, re-encoding it as YAML (which keeps scalars
// as written). A document it cannot read is returned as is, for
// policy.Parse to explain; changed says whether it was re-encoded.
func addPlaceholderSecrets(data []byte) ([]byte, bool, error) {
	dec := yaml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	var doc yaml.Node
	if dec.Decode(&doc) != nil || len(doc.Content) == 0 {
		return data, false, nil
	}
	var more yaml.Node
	if dec.Decode(&more) != io.EOF {
		return data, false, nil // more than one document: policy.Parse refuses it
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return data, false, nil
	}
	changed := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "apps" || root.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for _, app := range root.Content[i+1].Content {
			if app.Kind != yaml.MappingNode || mappingHas(app, "secrets") {
				continue
			}
			app.Content = append(app.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "secrets"},
				&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
					{Kind: yaml.ScalarNode, Tag: "!!str", Value: serverSecretName},
					{Kind: yaml.ScalarNode, Tag: "!!str", Value: serverSecretName},
				}})
			changed = true
		}
	}
	if !changed {
		return data, false, nil
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrServerPolicy, err)
	}
	return out, true, nil
}

func mappingHas(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// ServerIdentity is what the --server-mr-* shorthands say about a server
// in a TEE. Measurements are hex as given; the policy package validates
// them. Policy turns it into a server policy with the policy defaults, so
// a shorthand can never accept less than a policy file would.
type ServerIdentity struct {
	MrEnclave, MrSigner string
	IsvProdID           *uint16
	MinIsvSvn           uint16
	MrTd                string
	// Rtmr are rtmr0..rtmr2 ("" when not given).
	Rtmr [3]string
	// AllowSimulated admits a simulated server (dev mode).
	AllowSimulated bool
}

// Policy returns the one-app server policy the identity describes.
func (id ServerIdentity) Policy() (*policy.Policy, error) {
	app := map[string]any{"id": "server", "secrets": map[string]string{serverSecretName: serverSecretName}}
	sgx := id.MrEnclave != "" || id.MrSigner != "" || id.IsvProdID != nil || id.MinIsvSvn != 0
	tdx := id.MrTd != "" || id.Rtmr != [3]string{}
	switch {
	case sgx && tdx:
		return nil, fmt.Errorf("%w: a server is either in an SGX enclave (mr_enclave, mr_signer, isv_prod_id, min_isv_svn) or in a TDX guest (mr_td, rtmr0-2), not both", ErrServerPolicy)
	case sgx:
		app["tee"] = string(claims.SGX)
		set(app, "mr_enclave", id.MrEnclave)
		set(app, "mr_signer", id.MrSigner)
		if id.IsvProdID != nil {
			app["isv_prod_id"] = *id.IsvProdID
		}
		if id.MinIsvSvn != 0 {
			app["min_isv_svn"] = id.MinIsvSvn
		}
	case tdx:
		app["tee"] = string(claims.TDX)
		set(app, "mr_td", id.MrTd)
		for i, r := range id.Rtmr {
			set(app, fmt.Sprintf("rtmr%d", i), r)
		}
	default:
		return nil, fmt.Errorf("%w: no measurement of the server given", ErrServerPolicy)
	}
	js, err := json.Marshal(map[string]any{"allow_simulated": id.AllowSimulated, "apps": []any{app}})
	if err != nil {
		return nil, err
	}
	return policy.Parse(js, "json")
}

func set(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// ServerJudge checks a server's verified claims against a server policy:
// pass its Check as ratls.VerifyOptions.Check (and AllowDebug as
// VerifyOptions.AllowDebug, so the policy decides on debug). It is safe for
// concurrent use.
type ServerJudge struct {
	p    *policy.Policy
	mu   sync.Mutex
	last *ServerRefusedError
}

// NewServerJudge returns a judge for p.
func NewServerJudge(p *policy.Policy) (*ServerJudge, error) {
	if p == nil || len(p.Apps) == 0 {
		return nil, fmt.Errorf("%w: no app describes the server", ErrServerPolicy)
	}
	return &ServerJudge{p: p}, nil
}

// AllowDebug reports whether an app of the policy admits a debug server;
// otherwise the RA-TLS layer refuses it before the policy is asked.
func (j *ServerJudge) AllowDebug() bool {
	for _, a := range j.p.Apps {
		if a.AllowDebug {
			return true
		}
	}
	return false
}

// Check matches the server's claims against the policy; a refusal is a
// *ServerRefusedError wrapping the policy's *policy.Denial (errors.Is
// works with policy.ErrTCBStatusNotAllowed and the other reasons).
func (j *ServerJudge) Check(c *claims.Claims) error {
	_, err := j.p.Match(c)
	if err == nil {
		return nil
	}
	var d *policy.Denial
	if !errors.As(err, &d) {
		d = &policy.Denial{Reason: policy.ErrBadClaims, Detail: err.Error()}
	}
	r := &ServerRefusedError{Denial: d}
	j.mu.Lock()
	j.last = r
	j.mu.Unlock()
	return r
}

// Refusal returns the last refusal, or nil.
func (j *ServerJudge) Refusal() *ServerRefusedError {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.last
}

// ServerRefusedError is a server in a TEE that the server policy refused:
// the client sent it nothing (the check runs in the TLS handshake, before
// the client's own certificate and any request).
type ServerRefusedError struct {
	Denial *policy.Denial
}

func (e *ServerRefusedError) Error() string {
	return "the server's attestation does not satisfy the server policy (nothing was sent to it): " + EscapeText(e.Denial.Error())
}

func (e *ServerRefusedError) Unwrap() error { return e.Denial }
