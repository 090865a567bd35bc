package store

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxVersion is the largest KV v2 version a reference may name.
const MaxVersion = 1<<31 - 1

// VaultRef is a parsed Vault reference (see the package documentation for
// the syntax). The zero KV and Field mean "the store's default".
type VaultRef struct {
	KV      int    // 1 or 2; 0 when the reference has no kv1:/kv2: prefix
	Mount   string // the mount, when the reference marks it with "//"; else ""
	Path    string // the secret's path (below Mount when Mount is set)
	Field   string // the field in the secret's data; "" for the store's default
	Version int    // KV v2 version; 0 for the latest
}

// RefError reports a malformed reference.
type RefError struct {
	Ref string // the reference as given
	Msg string // what is wrong with it
}

func (e *RefError) Error() string { return fmt.Sprintf("vault reference %q: %s", e.Ref, e.Msg) }

// ParseVaultRef parses a Vault reference:
//
//	[kv1:|kv2:]<path>[#<field>][@<version>]
//
// It never panics; errors quote the reference (references are not secret).
func ParseVaultRef(s string) (VaultRef, error) {
	var r VaultRef
	fail := func(format string, a ...any) (VaultRef, error) {
		return VaultRef{}, &RefError{Ref: s, Msg: fmt.Sprintf(format, a...)}
	}
	switch {
	case s == "":
		return fail("empty")
	case !utf8.ValidString(s):
		return fail("not valid UTF-8")
	case hasControl(s):
		return fail("holds control characters")
	case strings.TrimSpace(s) != s:
		return fail("leading or trailing white space")
	}
	rest := s
	switch {
	case strings.HasPrefix(rest, "kv1:"):
		r.KV, rest = 1, rest[4:]
	case strings.HasPrefix(rest, "kv2:"):
		r.KV, rest = 2, rest[4:]
	default:
		if p, _, ok := strings.Cut(rest, ":"); ok && len(p) > 2 && strings.HasPrefix(p, "kv") && isDigits(p[2:]) {
			return fail("unknown KV version %q (use kv1: or kv2:)", p+":")
		}
	}

	path, field, hasField := strings.Cut(rest, "#")
	// The version is a trailing "@<digits>" on the last part.
	last := &path
	if hasField {
		last = &field
	}
	if i := strings.LastIndexByte(*last, '@'); i >= 0 && isDigits((*last)[i+1:]) {
		digits := (*last)[i+1:]
		if digits[0] == '0' {
			return fail("version %q: must be a positive decimal number without leading zeros (omit it for the latest)", digits)
		}
		v, err := strconv.ParseUint(digits, 10, 31)
		if err != nil {
			return fail("version %q: too large", digits)
		}
		r.Version = int(v)
		*last = (*last)[:i]
	}
	if hasField {
		if field == "" {
			return fail("empty field after '#'")
		}
		r.Field = field
	}

	if path == "" {
		return fail("empty path")
	}
	if strings.ContainsAny(path, "?\\") {
		return fail("the path must not contain '?' or '\\'")
	}
	if strings.HasPrefix(path, "/") {
		return fail("the path must not start with '/' (write it without /v1/)")
	}
	if strings.HasSuffix(path, "/") {
		return fail("the path must not end with '/'")
	}
	if m, p, ok := strings.Cut(path, "//"); ok {
		if strings.Contains(p, "//") {
			return fail("more than one mount boundary '//'")
		}
		if err := checkSegments(m); err != nil {
			return fail("mount: %v", err)
		}
		if err := checkSegments(p); err != nil {
			return fail("path: %v", err)
		}
		r.Mount, r.Path = m, p
	} else {
		if err := checkSegments(path); err != nil {
			return fail("path: %v", err)
		}
		r.Path = path
	}
	if r.KV == 1 && r.Version != 0 {
		return fail("a version needs KV v2 (kv2:)")
	}
	if r.KV == 2 && r.Mount == "" && !strings.Contains(r.Path, "/") {
		return fail("KV v2 needs a mount and a path (kv2:<mount>/<path>)")
	}
	return r, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func checkSegments(p string) error {
	if p == "" {
		return errors.New("empty")
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch {
		case seg == "":
			return errors.New("empty segment")
		case seg == "." || seg == "..":
			return fmt.Errorf("segment %q not allowed", seg)
		case strings.TrimFunc(seg, unicode.IsSpace) != seg:
			return fmt.Errorf("segment %q has leading or trailing white space", seg)
		}
	}
	return nil
}

// String returns the reference in canonical form; ParseVaultRef of it
// gives r back.
func (r VaultRef) String() string {
	var b strings.Builder
	switch r.KV {
	case 1:
		b.WriteString("kv1:")
	case 2:
		b.WriteString("kv2:")
	}
	if r.Mount != "" {
		b.WriteString(r.Mount)
		b.WriteString("//")
	}
	b.WriteString(r.Path)
	if r.Field != "" {
		b.WriteString("#")
		b.WriteString(r.Field)
	}
	if r.Version > 0 {
		b.WriteString("@")
		b.WriteString(strconv.Itoa(r.Version))
	}
	return b.String()
}

// APIPath returns the path to read below /v1/ and its query, for a
// reference whose KV version, if not given, is defaultKV (1 or 2).
func (r VaultRef) APIPath(defaultKV int) (string, url.Values, error) {
	kv := r.KV
	if kv == 0 {
		kv = defaultKV
	}
	switch kv {
	case 1:
		if r.Version != 0 {
			return "", nil, &RefError{Ref: r.String(), Msg: "a version needs KV v2 (kv2:)"}
		}
		if r.Mount != "" {
			return r.Mount + "/" + r.Path, nil, nil
		}
		return r.Path, nil, nil
	case 2:
		mount, p := r.Mount, r.Path
		if mount == "" {
			var ok bool
			mount, p, ok = strings.Cut(r.Path, "/")
			if !ok {
				return "", nil, &RefError{Ref: r.String(), Msg: "KV v2 needs a mount and a path (<mount>/<path>)"}
			}
		}
		var q url.Values
		if r.Version > 0 {
			q = url.Values{"version": {strconv.Itoa(r.Version)}}
		}
		return mount + "/data/" + p, q, nil
	default:
		return "", nil, fmt.Errorf("KV version %d: must be 1 or 2", kv)
	}
}
