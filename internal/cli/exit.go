package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strings"
)

// Exit codes, the same for every command (documented in --help).
const (
	ExitOK      = 0 // success
	ExitError   = 1 // failed; nothing (more) was written
	ExitUsage   = 2 // wrong flags or arguments
	ExitPartial = 3 // done, but some files were skipped (listed on stderr)
)

// ExitCodesHelp is the paragraph each command's --help ends with.
const ExitCodesHelp = `Exit codes:
  0  success
  1  error (a one-line message on stderr says what and where)
  2  wrong usage (flags, arguments)
  3  partial: completed, but some files were skipped or could not be
     restored; each one is listed on stderr`

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Usage returns an error that exits with ExitUsage.
func Usage(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// Exit returns an error that makes [Main] exit with code and print
// nothing: the command has said what it had to (syncd status --check).
func Exit(code int) error { return exitStatus(code) }

type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Partial is returned by a command that completed with skipped files.
type Partial struct{ Msg string }

func (p Partial) Error() string { return p.Msg }

// Main runs a command's Execute and exits with the code for its error,
// printing the error as one line prefixed by the program name.
//
// With SYNCD_CPUPROFILE=FILE set, a CPU profile of the run is written to
// FILE (for `go tool pprof`); with SYNCD_MEMPROFILE=FILE, a profile of
// what the run allocated, written as it ends (`go tool pprof
// -sample_index=alloc_space`); with SYNCD_TRACE=FILE, an execution trace
// (for `go tool trace`: where goroutines wait, on what system calls).
func Main(prog string, execute func(context.Context) error) {
	// Some libraries print to the standard logger (the S3 upload manager
	// does when a multipart upload fails); the error they also return is
	// what the operator sees, once, on one line. SYNCD_DEBUG=1 keeps them.
	if os.Getenv("SYNCD_DEBUG") == "" {
		log.SetOutput(io.Discard)
	}
	ctx, stop := signalContext()
	if path := os.Getenv("SYNCD_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer f.Close()
		}
	}
	if path := os.Getenv("SYNCD_TRACE"); path != "" {
		if f, err := os.Create(path); err == nil {
			trace.Start(f)
			defer f.Close()
		}
	}
	err := execute(ctx)
	trace.Stop()
	pprof.StopCPUProfile()
	if path := os.Getenv("SYNCD_MEMPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	stop()
	os.Exit(report(prog, err))
}

func report(prog string, err error) int {
	if err == nil {
		return ExitOK
	}
	var es exitStatus
	if errors.As(err, &es) {
		return int(es)
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintf(os.Stderr, "%s: %s\n", prog, msg)
	var u usageError
	var p Partial
	switch {
	case errors.As(err, &u) || strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "unknown command") ||
		strings.Contains(msg, "arg(s)") || strings.HasPrefix(msg, "flag needs an argument") ||
		strings.HasPrefix(msg, "invalid argument") || strings.HasPrefix(msg, "if any flags in the group"):
		return ExitUsage
	case errors.As(err, &p):
		return ExitPartial
	}
	return ExitError
}
