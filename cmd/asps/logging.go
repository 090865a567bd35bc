package main

import (
	"io"
	"log/slog"

	flag "github.com/spf13/pflag"
)

// logFormatFlag adds --log-format: every record a process writes is in
// that one format (JSON lines or logfmt text) on stderr; what is meant
// for scripts (a pin, a next step) goes to stdout only.
func logFormatFlag(fs *flag.FlagSet, def string) *string {
	return fs.String("log-format", envDefault("ASPS_LOG_FORMAT", def), "log `FORMAT` on stderr: json or text [ASPS_LOG_FORMAT]")
}

// newLogger is the process's logger in format.
func newLogger(format string, w io.Writer, opts *slog.HandlerOptions) (*slog.Logger, error) {
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usageError("--log-format: json or text, not %s", quoteText(format))
}
