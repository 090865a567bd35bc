package client

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// EscapeText makes text a server sent safe to print on a terminal: C0 and
// C1 control characters (ESC, CR, LF, BEL, …), DEL, invalid UTF-8 and the
// invisible format characters that reorder or hide text (bidi overrides,
// zero-width characters, line and paragraph separators) are written as Go
// escapes (\x1b, \r, \n, \u202e), so a hostile server cannot set the
// terminal title, write the clipboard (OSC 52) or fake lines. Printable
// text, backslashes included, is kept as is.
func EscapeText(s string) string {
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
		case r >= 0x80 && unsafeRune(r):
			writeEscape(&b, 'u', uint32(r), 4)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
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

// unsafeRune reports the non-ASCII runes EscapeText escapes: C1 controls,
// format characters (Cf: bidi controls, zero-width joiners, …) and line
// and paragraph separators.
func unsafeRune(r rune) bool {
	return r >= 0x80 && r <= 0x9f || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp)
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

// ServerError is a call that failed with a gRPC status: a refusal by the
// server or a connection failure. Its message is the server's (or gRPC's)
// text, kept as sent in Message and escaped by Error, so printing the error
// never passes control characters to a terminal. status.Code works on it.
type ServerError struct {
	Code    codes.Code
	Message string
	st      *status.Status
}

// maxMessage bounds how much of a server's message an error shows.
const maxMessage = 2048

func (e *ServerError) Error() string {
	return "rpc error: code = " + e.Code.String() + " desc = " + EscapeText(truncate(e.Message, maxMessage))
}

// truncate shortens s to at most n bytes (on a rune boundary), saying how
// much was left out.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "… (" + strconv.Itoa(len(s)-cut) + " more bytes)"
}

// GRPCStatus returns the status the call ended with (for status.Code and
// status.FromError).
func (e *ServerError) GRPCStatus() *status.Status { return e.st }

// serverError wraps an error of a gRPC call as a *ServerError.
func serverError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("client: %s", EscapeText(err.Error()))
	}
	return &ServerError{Code: st.Code(), Message: st.Message(), st: st}
}
