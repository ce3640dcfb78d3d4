package main

import (
	"io"
	"log/slog"

	"github.com/syncd/syncd/internal/cli"
)

// newLogger returns the logger of syncd run: slog's text handler
// (key=value) or, with format "json", its JSON handler (one object a
// line, with time, level and msg), writing to w from level up. Any other
// format is a usage error naming the flag.
func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, cli.Usage("--log-format %q: want text or json", format)
}
