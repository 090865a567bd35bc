package store

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseVaultRef(t *testing.T) {
	tests := []struct {
		in   string
		want VaultRef
		err  string // substring of the error; "" for success
	}{
		// Intel ASPS's plain paths.
		{in: "occlum/1/image_key", want: VaultRef{Path: "occlum/1/image_key"}},
		{in: "occlum/1/rsa_prikey", want: VaultRef{Path: "occlum/1/rsa_prikey"}},
		{in: "kv1:occlum/1/image_key#key", want: VaultRef{KV: 1, Path: "occlum/1/image_key", Field: "key"}},
		{in: "secret", want: VaultRef{Path: "secret"}},
		// KV v2.
		{in: "kv2:secret/myapp/db", want: VaultRef{KV: 2, Path: "secret/myapp/db"}},
		{in: "kv2:secret/myapp/db#password", want: VaultRef{KV: 2, Path: "secret/myapp/db", Field: "password"}},
		{in: "kv2:secret/myapp/db#password@3", want: VaultRef{KV: 2, Path: "secret/myapp/db", Field: "password", Version: 3}},
		{in: "kv2:secret/myapp/db@12", want: VaultRef{KV: 2, Path: "secret/myapp/db", Version: 12}},
		{in: "kv2:teams/a//myapp/db#password", want: VaultRef{KV: 2, Mount: "teams/a", Path: "myapp/db", Field: "password"}},
		{in: "kv2:kv//x", want: VaultRef{KV: 2, Mount: "kv", Path: "x"}},
		{in: "secret/myapp/db@2", want: VaultRef{Path: "secret/myapp/db", Version: 2}},
		{in: "kv2:secret/a@b/c", want: VaultRef{KV: 2, Path: "secret/a@b/c"}},
		{in: "kv2:secret/users/bob@example.com#pw", want: VaultRef{KV: 2, Path: "secret/users/bob@example.com", Field: "pw"}},
		{in: "kv2:secret/users/bob@7#pw", want: VaultRef{KV: 2, Path: "secret/users/bob@7", Field: "pw"}},
		{in: "kv2:secret/x#user@host", want: VaultRef{KV: 2, Path: "secret/x", Field: "user@host"}},
		{in: "kv2:secret/x#a@1@2", want: VaultRef{KV: 2, Path: "secret/x", Field: "a@1", Version: 2}},
		{in: "kv2:secret/x#a#b", want: VaultRef{KV: 2, Path: "secret/x", Field: "a#b"}},
		{in: "kv2:secret/x#with space", want: VaultRef{KV: 2, Path: "secret/x", Field: "with space"}},
		{in: "kv2:secret/x@2147483647", want: VaultRef{KV: 2, Path: "secret/x", Version: 2147483647}},
		{in: "a:b/c", want: VaultRef{Path: "a:b/c"}},
		{in: "kvx:a/b", want: VaultRef{Path: "kvx:a/b"}},
		{in: "clé/ü", want: VaultRef{Path: "clé/ü"}},
		// Errors.
		{in: "", err: "empty"},
		{in: " occlum/1/image_key", err: "white space"},
		{in: "occlum/1/image_key\n", err: "control"},
		{in: "occlum/1/\x00", err: "control"},
		{in: "a/\xff", err: "UTF-8"},
		{in: "kv1:", err: "empty path"},
		{in: "#key", err: "empty path"},
		{in: "a/b#", err: "empty field"},
		{in: "a/b#@2", err: "empty field"},
		{in: "/v1/occlum/1/image_key", err: "start with '/'"},
		{in: "occlum/1/", err: "end with '/'"},
		{in: "occlum//1//x", err: "more than one"},
		{in: "kv2://x", err: "start with '/'"},
		{in: "kv2:a//", err: "end with"},
		{in: "kv2:a/.//b", err: "mount"},
		{in: "occlum/./x", err: `"."`},
		{in: "occlum/../sys/seal", err: `".."`},
		{in: "a/b?version=2", err: "'?'"},
		{in: `a\b`, err: "'\\'"},
		{in: "a/ b", err: "white space"},
		{in: "kv1:a/b@2", err: "KV v2"},
		{in: "kv1:a/b#k@2", err: "KV v2"},
		{in: "kv2:a/b@0", err: "positive"},
		{in: "kv2:a/b@007", err: "leading zeros"},
		{in: "kv2:a/b@2147483648", err: "too large"},
		{in: "kv2:a/b@99999999999999999999999", err: "too large"},
		{in: "kv2:secret", err: "mount and a path"},
		{in: "kv3:secret/x", err: "unknown KV version"},
		{in: "kv0:secret/x", err: "unknown KV version"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseVaultRef(tt.in)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("ParseVaultRef(%q) = %+v, want an error with %q", tt.in, got, tt.err)
				}
				var re *RefError
				if !errors.As(err, &re) || re.Ref != tt.in {
					t.Errorf("error %v is not a *RefError for the input", err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %q does not contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseVaultRef(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseVaultRef(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.in {
				t.Errorf("String() = %q, want %q", s, tt.in)
			}
		})
	}
}

func TestVaultRefAPIPath(t *testing.T) {
	tests := []struct {
		in        string
		defaultKV int
		path      string
		query     url.Values
		err       string
	}{
		{"occlum/1/image_key", 1, "occlum/1/image_key", nil, ""},
		{"occlum/1//image_key", 1, "occlum/1/image_key", nil, ""},
		{"kv1:occlum/1/image_key", 2, "occlum/1/image_key", nil, ""},
		{"secret/myapp/db", 2, "secret/data/myapp/db", nil, ""},
		{"kv2:secret/myapp/db#password@3", 1, "secret/data/myapp/db", url.Values{"version": {"3"}}, ""},
		{"kv2:teams/a//myapp/db", 1, "teams/a/data/myapp/db", nil, ""},
		{"occlum/1/image_key@3", 1, "", nil, "KV v2"},
		{"secret", 2, "", nil, "mount and a path"},
		{"secret", 3, "", nil, "must be 1 or 2"},
	}
	for _, tt := range tests {
		r, err := ParseVaultRef(tt.in)
		if err != nil {
			t.Fatalf("ParseVaultRef(%q): %v", tt.in, err)
		}
		p, q, err := r.APIPath(tt.defaultKV)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("APIPath(%q, %d) error = %v, want %q", tt.in, tt.defaultKV, err, tt.err)
			}
			continue
		}
		if err != nil || p != tt.path || !reflect.DeepEqual(q, tt.query) {
			t.Errorf("APIPath(%q, %d) = %q, %v, %v; want %q, %v", tt.in, tt.defaultKV, p, q, err, tt.path, tt.query)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"occlum/1/image_key", "occlum/1/rsa_pubkey", "occlum/2/master_key",
		"kv1:occlum/1/image_key#key", "kv2:secret/myapp/db#password@3",
		"kv2:teams/a//myapp/db#password", "kv2:secret/users/bob@example.com#pw@2",
		"secret/myapp/db@2", "kv2:secret/x#a@1@2", "kv3:x/y", "/v1/secret/data/x",
		"a/../b", "a//b//c", "kv2:a/b@0", "#", "@1", "kv2:", "a/b#c#d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseVaultRef(s)
		if err != nil {
			if r != (VaultRef{}) {
				t.Fatalf("error with a non-zero result: %+v", r)
			}
			return
		}
		// The canonical form parses back to the same reference.
		c := r.String()
		r2, err := ParseVaultRef(c)
		if err != nil || r2 != r {
			t.Fatalf("ParseVaultRef(%q) = %+v; its String %q parses to %+v, %v", s, r, c, r2, err)
		}
		if r.Path == "" || r.KV < 0 || r.KV > 2 || r.Version < 0 || r.Version > MaxVersion {
			t.Fatalf("bad result %+v", r)
		}
		for _, kv := range []int{1, 2} {
			p, _, err := r.APIPath(kv)
			if err != nil {
				continue
			}
			for seg := range strings.SplitSeq(p, "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("APIPath(%d) of %q = %q: bad segment", kv, s, p)
				}
			}
			if strings.ContainsAny(p, "?#\\") || hasControl(p) {
				t.Fatalf("APIPath(%d) of %q = %q", kv, s, p)
			}
		}
	})
}
