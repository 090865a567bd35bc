package ratls

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// displayText makes text taken from a certificate (its subject, the names
// of TCG claims, error text that quotes them) safe to print on a terminal:
// C0 and C1 control characters, DEL, invalid UTF-8 and invisible format
// characters (bidi overrides, zero-width characters, line and paragraph
// separators) are written as Go escapes (\x1b, \n, \u202e). It escapes
// exactly what client.EscapeText escapes (a test checks the two agree);
// ratls cannot import client.
func displayText(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	const digits = "0123456789abcdef"
	esc := func(b *strings.Builder, kind byte, v uint32, n int) {
		b.WriteByte('\\')
		b.WriteByte(kind)
		for shift := 4 * (n - 1); shift >= 0; shift -= 4 {
			b.WriteByte(digits[v>>uint(shift)&0xf])
		}
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			esc(&b, 'x', uint32(s[i]), 2)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			esc(&b, 'x', uint32(r), 2)
		case r >= 0x80 && (r <= 0x9f || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp)):
			esc(&b, 'u', uint32(r), 4)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// displayList is displayText of each element.
func displayList(l []string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = displayText(s)
	}
	return out
}
