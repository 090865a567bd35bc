package policy

import (
	"fmt"
	"log/slog"
)

// Token is a credential a secret store uses on behalf of one app (Intel
// ASPS's app_token: a Vault token allowed to read only that app's paths).
// It never prints: fmt verbs, JSON and slog all show "[redacted]". Only
// Reveal gives the value, for the store.
type Token struct{ v string }

// NewToken wraps a credential.
func NewToken(v string) Token { return Token{v} }

// Reveal returns the credential, for the store that uses it.
func (t Token) Reveal() string { return t.v }

// IsSet reports whether there is a credential.
func (t Token) IsSet() bool { return t.v != "" }

const redacted = "[redacted]"

func (t Token) String() string {
	if t.v == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from showing the value.
func (t Token) GoString() string { return fmt.Sprintf("policy.Token(%q)", t.String()) }

// Format makes every fmt verb (%s, %v, %x, %q, ...) print the redacted form.
func (t Token) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(t.GoString()))
		return
	}
	_, _ = f.Write([]byte(t.String()))
}

// MarshalJSON writes the redacted form: a Token never reaches JSON logs.
func (t Token) MarshalJSON() ([]byte, error) { return []byte(`"` + t.String() + `"`), nil }

// MarshalText writes the redacted form.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// LogValue writes the redacted form in slog records.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }
