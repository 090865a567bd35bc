package client

import (
	"github.com/asps-project/asps/internal/termtext"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestEscapeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, même accentué", "plain text, même accentué"},
		{"\x1b]0;title\x07", `\x1b]0;title\x07`},
		{"\x1b]52;c;ZXZpbA==\x07", `\x1b]52;c;ZXZpbA==\x07`},
		{"ok\rfake\nline\t", `ok\rfake\nline\t`},
		{"\u009b31m", `\u009b31m`},
		{"\u202etxt", `\u202etxt`},
		{"a\u2028b", `a\u2028b`},
		{"\xff\x7f", `\xff\x7f`},
		{`back\slash`, `back\slash`},
	} {
		if got := EscapeText(tc.in); got != tc.want {
			t.Errorf("EscapeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestServerErrorKeepsStatus(t *testing.T) {
	err := serverError(status.Error(codes.PermissionDenied, "no\x1b[2K"))
	if status.Code(err) != codes.PermissionDenied || strings.ContainsRune(err.Error(), 0x1b) {
		t.Fatalf("%v (%v)", err, status.Code(err))
	}
}

// TestServerErrorBounded: a server's megabyte of message is shown
// shortened, on a rune boundary, saying how much was left out.
func TestServerErrorBounded(t *testing.T) {
	msg := strings.Repeat("é\x1b", 1<<18)
	got := serverError(status.Error(codes.Internal, msg)).Error()
	if len(got) > 4*maxMessage || !strings.HasSuffix(got, " more bytes)") || !utf8.ValidString(got) {
		t.Fatalf("%d bytes: …%q", len(got), got[max(0, len(got)-40):])
	}
}

// FuzzEscapeText: the output is valid UTF-8 without a control or format
// character, and text that needs no escaping is kept as is.
func FuzzEscapeText(f *testing.F) {
	for _, s := range []string{"", "abc", "\x1b]0;t\x07", "\u009b", "\u202e", "\xff", "é\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := EscapeText(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q", s)
		}
		clean := true
		for _, r := range s {
			if r < 0x20 || r == 0x7f || termtext.Unsafe(r) || r == utf8.RuneError {
				clean = false
			}
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || termtext.Unsafe(r) {
				t.Fatalf("EscapeText(%q) = %q keeps %U", s, out, r)
			}
		}
		if clean && utf8.ValidString(s) && out != s {
			t.Fatalf("EscapeText(%q) = %q changed clean text", s, out)
		}
	})
}

func BenchmarkEscapeText(b *testing.B) {
	for name, s := range map[string]string{
		"plain":   strings.Repeat("policy: no matching app: mr_enclave abc not allowed; ", 20),
		"hostile": strings.Repeat("\x1b]52;c;ZXZpbA==\x07\r\u009b\u202e", 40),
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				EscapeText(s)
			}
		})
	}
}
