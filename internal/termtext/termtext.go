// Package termtext makes text from others — a server's messages, a
// certificate's subject, a PCCS's error headers — safe to print on a
// terminal.
package termtext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape writes C0 and C1 control characters (ESC, CR, LF, BEL, …), DEL,
// invalid UTF-8 and the invisible format characters that reorder or hide
// text (bidi overrides, zero-width characters, line and paragraph
// separators) as Go escapes (\x1b, \r, \n, \u202e), so the text cannot set
// the terminal title, write the clipboard (OSC 52) or fake lines.
// Printable text, backslashes included, is kept as is.
func Escape(s string) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			writeEscape(&b, 'x', uint32(s[i]), 2)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			writeEscape(&b, 'x', uint32(r), 2)
		case r >= 0x80 && Unsafe(r):
			writeEscape(&b, 'u', uint32(r), 4)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// EscapeAll is Escape of each element.
func EscapeAll(l []string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = Escape(s)
	}
	return out
}

// Unsafe reports the non-ASCII runes Escape escapes: C1 controls, format
// characters (Cf: bidi controls, zero-width joiners, …) and line and
// paragraph separators.
func Unsafe(r rune) bool {
	return r >= 0x80 && r <= 0x9f || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp)
}

// writeEscape writes \x or \u and v in n hex digits.
func writeEscape(b *strings.Builder, kind byte, v uint32, n int) {
	const digits = "0123456789abcdef"
	b.WriteByte('\\')
	b.WriteByte(kind)
	for shift := 4 * (n - 1); shift >= 0; shift -= 4 {
		b.WriteByte(digits[v>>uint(shift)&0xf])
	}
}

// isPlain reports whether s needs no escaping (the common case: ASCII
// without controls).
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}
