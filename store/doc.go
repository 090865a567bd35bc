// Package store holds the secret stores of asps. A store has one job: given
// a reference, return the secret's bytes.
//
// Every Store is safe for concurrent use. Secret values and credentials
// never appear in errors (nor does this package log anything). Every error
// from Get is an *Error that wraps exactly one of ErrNotFound,
// ErrPermissionDenied and ErrUnavailable; callers branch with errors.Is.
//
// # File store
//
// OpenFile reads a JSON or YAML mapping of secret name to value; the
// reference of a secret is its name. A value is one of
//
//	"plain text"                      the bytes of the string, as is
//	"base64:SGVsbG8="                 base64 (standard alphabet, padding optional)
//	"hex:48656c6c6f"                  hex
//	{"base64": "SGVsbG8="}            base64, as an object
//	{"hex": "48656c6c6f"}             hex, as an object
//	{"text": "base64:not decoded"}    text taken literally (to escape a prefix)
//
// In YAML the objects read {base64: SGVsbG8=} (or a nested mapping), and a
// !!binary scalar is base64 too; block scalars (|) suit PEM text, and a
// base64 value may span lines.
//
// Numbers, booleans, nulls and lists are refused (in YAML, quote the value:
// an unquoted 0123 or yes would not survive as typed). Names must be unique
// and non-empty. The format is chosen by the extension (.json, .yaml,
// .yml), else by the first byte ('{' is JSON), or fixed with WithFormat.
//
// Occlum's demo secret file (secret_config.json: name → base64 value) is
// read with the Base64Values option, which makes every plain string base64:
//
//	s, err := store.OpenFile("secret_config.json", store.Base64Values())
//
// Reload re-reads the file and keeps the old content if the new one is bad.
// NewMemory serves a map held in memory: this is what Intel's ASPS calls
// "kms": "none" (values inline in the policy).
//
// # Vault store
//
// NewVault serves HashiCorp Vault and OpenBao KV v1 and v2 secrets through
// the official client (github.com/hashicorp/vault/api), with a static token,
// a per-request token (Request.Token, which takes precedence: Intel's ASPS
// gives every application its own token), or AppRole (login at first use,
// renewal, login again at expiry or when the token is refused). A
// reference is
//
//	[kv1:|kv2:]<path>[#<field>][@<version>]
//
//	occlum/1/image_key            the store's default KV version (1 unless configured),
//	                              field "key": GET /v1/occlum/1/image_key → data.key
//	                              (Intel ASPS's reference, unchanged)
//	kv1:occlum/1/image_key#key    the same, explicit
//	kv2:secret/myapp/db#password  GET /v1/secret/data/myapp/db → data.data.password
//	kv2:secret/myapp/db#password@3    version 3: GET /v1/secret/data/myapp/db?version=3
//	kv2:teams/a//myapp/db#password    mount "teams/a" (marked by "//"), path "myapp/db":
//	                              GET /v1/teams/a/data/myapp/db
//
// The rules:
//   - kv1: reads GET /v1/<path> and the value at data.<field>.
//   - kv2: reads GET /v1/<mount>/data/<path> and the value at
//     data.data.<field>. The mount is the first segment of the path, or
//     everything before "//" when the mount has several segments.
//   - Without a prefix, VaultConfig.KVVersion decides (default 1).
//   - The field follows the first '#'; without one, VaultConfig.DefaultField
//     applies (default "key", as in Intel's ASPS). An empty field is an error.
//   - A version is a trailing "@<n>" (n ≥ 1, no leading zeros) on the field,
//     or on the path when there is no field; KV v2 only; omitted means the
//     latest. A path that itself ends in "@<digits>" therefore needs an
//     explicit field.
//   - Paths are relative (no leading '/', no /v1/), without empty, "." or
//     ".." segments, trailing '/', '?', '\', white space at either end or
//     control characters.
//
// A string value is returned as is; any other JSON value (number, object,
// list, boolean) is returned JSON-encoded; null is ErrNotFound.
//
// Error kinds: no answer, timeout, 5xx (503: sealed or standby trouble),
// 429 and 412 are ErrUnavailable; 401 and 403 (after one fresh AppRole
// login), a missing or malformed token, and a refused AppRole login are
// ErrPermissionDenied; 404, a missing field, a deleted or destroyed
// version, other 4xx and a malformed reference are ErrNotFound.
//
// The client ignores the VAULT_* environment variables (address, token,
// namespace, TLS, wrapping): the configuration is explicit. Proxies follow
// the usual HTTPS_PROXY/NO_PROXY variables.
package store
