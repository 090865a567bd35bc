package client

import (
	"fmt"
	"github.com/asps-project/asps/internal/termtext"
	"strconv"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// EscapeText makes text a server sent safe to print on a terminal
// (termtext.Escape): control and invisible format characters are written as
// Go escapes, so a hostile server cannot set the terminal title, write the
// clipboard (OSC 52) or fake lines.
func EscapeText(s string) string { return termtext.Escape(s) }

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
