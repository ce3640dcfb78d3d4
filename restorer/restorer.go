// Package restorer writes the files of a snapshot into a target directory.
//
// It plans the whole restore from the snapshot's trees, then reads each
// needed pack once, on several goroutines, and writes every blob to all
// the places that need it. A blob whose copy cannot be read or does not
// hash to its ID is read from its next copy, when the index lists one. A
// file is built under a temporary name and renamed into place when its
// last blob is written, so a file that cannot be restored never appears
// half-written. Every write goes through an
// os.Root: nothing is ever written outside the target, whatever the
// snapshot says.
package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/atdir"
	"github.com/syncd/syncd/internal/freelist"
)

// Options configures a restore.
type Options struct {
	Target    string   // directory to restore into; created if missing
	Include   []string // snapshot paths to restore (with everything below); empty: all
	Overwrite bool     // allow a non-empty target and replace what is there
	Workers   int      // packs read at once; 0: 2×GOMAXPROCS
	Logger    *slog.Logger
	Progress  *Progress
	// Stop, if set, is called with the error of each file that cannot be
	// restored; when it returns true the restore stops and Restore returns
	// that error (a full target disk, where every further file would fail).
	Stop func(error) bool
	// Planned, if set, is called once the restore is planned (every tree
	// read, every directory made), before the first pack is read: a
	// drill times the two apart.
	Planned func()
}

// Progress holds counters a progress display may read during the restore.
type Progress struct {
	FilesDone    atomic.Int64
	BytesWritten atomic.Int64
	BytesTotal   atomic.Int64
}

// FileError is a file that could not be restored.
type FileError struct {
	Path string // path in the snapshot
	Err  error
}

func (e FileError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e FileError) Unwrap() error { return e.Err }

// PackError is the error of a pack whose copy of a blob could not be used
// (missing, truncated, or not decrypting and hashing to the blob's ID).
// A FileError's Err matches it (errors.As) when a pack is at fault.
type PackError struct {
	Pack string // object name, "data/<id>"
	Err  error
}

func (e *PackError) Error() string {
	if strings.Contains(e.Err.Error(), e.Pack) {
		return e.Err.Error()
	}
	return e.Pack + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *PackError) Unwrap() error { return e.Err }

// Result is what Restore did.
type Result struct {
	Files, Dirs, Symlinks, Hardlinks int64
	Bytes                            int64 // of every file planned, restored or not
	FileBytes                        int64 // of the files restored
	Errors                           []FileError
	// TreeEntries counts the entries of the trees read to plan the
	// restore: of every tree, or of those on the way to the includes.
	TreeEntries int64
	// BadPacks names each pack (data/<id>) whose copy of a needed blob
	// could not be used, in the order found, whether or not another copy
	// of the blob restored the files that needed it.
	BadPacks []string
}

// ErrTargetNotEmpty is matched by Restore's error for a non-empty target
// without Options.Overwrite.
var ErrTargetNotEmpty = errors.New("target is not empty")

// Restore restores snapshot sn into opts.Target. Files that cannot be
// restored (missing or damaged packs) are reported in Result.Errors and the
// rest is restored; an error is returned only when the restore cannot
// proceed at all.
func Restore(ctx context.Context, repo *chunkstore.Repository, sn *chunkstore.Snapshot, opts Options) (*Result, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		opts.Progress = new(Progress)
	}
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	parent := ctx
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	res, err := restore(ctx, stop, repo, sn, opts)
	if parent.Err() == nil && context.Cause(ctx) != nil {
		return nil, context.Cause(ctx) // stopped by opts.Stop, maybe by the last file
	}
	return res, err
}

func restore(ctx context.Context, stop context.CancelCauseFunc, repo *chunkstore.Repository, sn *chunkstore.Snapshot, opts Options) (*Result, error) {
	includes, err := cleanIncludes(opts.Include)
	if err != nil {
		return nil, err
	}
	if err := repo.CheckDataIdentity(ctx); err != nil {
		return nil, err
	}
	if err := prepareTarget(opts.Target, opts.Overwrite); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(opts.Target)
	if err != nil {
		return nil, fmt.Errorf("open target: %w", err)
	}
	defer root.Close()
	p := &planner{ctx: ctx, stop: stop, repo: repo, root: root, opts: opts, includes: includes, fds: atdir.New(root, 1024),
		packs: make(map[chunkstore.ID]*packJob), links: make(map[[2]uint64]*file), res: &Result{}}
	defer p.fds.Close()
	p.packBufs = freelist.New(opts.Workers, 0)
	if err := p.walk(sn.Tree, "", 0); err != nil {
		p.cleanup()
		return nil, err
	}
	for inc, found := range p.includes {
		if !found {
			p.cleanup()
			return nil, fmt.Errorf("include /%s: no such path in snapshot %s", inc, sn.ID().Short())
		}
	}
	opts.Progress.BytesTotal.Store(p.res.Bytes)
	if opts.Planned != nil {
		opts.Planned()
	}
	err = p.fetch()
	p.cleanup()
	if err != nil {
		return nil, err
	}
	p.finishLinks()
	p.finishDirs()
	return p.res, nil
}

// cleanIncludes turns include paths into clean snapshot paths without the
// leading slash, and refuses ones with "..".
func cleanIncludes(in []string) (map[string]bool, error) {
	out := make(map[string]bool)
	for _, inc := range in {
		if strings.Contains(inc, "\x00") {
			return nil, fmt.Errorf("include %q: invalid path", inc)
		}
		for _, el := range strings.Split(inc, "/") {
			if el == ".." {
				return nil, fmt.Errorf("include %q: \"..\" is not allowed", inc)
			}
		}
		c := strings.TrimPrefix(path.Clean("/"+inc), "/")
		out[c] = false
	}
	// An include below another one is restored with it: the walk does not
	// look at it on its own, so it is dropped (else it would count as not
	// found in the snapshot).
	for c := range out {
		for p := c; p != "" && p != "."; {
			p = path.Dir(p)
			if p == "." {
				p = ""
			}
			if _, ok := out[p]; ok && p != c {
				delete(out, c)
				break
			}
			if p == "" {
				break
			}
		}
	}
	return out, nil
}

// prepareTarget creates the target or checks that it may be written to.
func prepareTarget(target string, overwrite bool) error {
	if target == "" {
		return errors.New("no target directory given (--target)")
	}
	fi, err := os.Lstat(target)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(target, 0o700); err != nil {
			return fmt.Errorf("create target: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("target %s: %w", target, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("target %s is not a directory", target)
	}
	if overwrite {
		return nil
	}
	d, err := os.Open(target)
	if err != nil {
		return fmt.Errorf("target %s: %w", target, err)
	}
	defer d.Close()
	if _, err := d.Readdirnames(1); err != io.EOF {
		if err != nil {
			return fmt.Errorf("target %s: %w", target, err)
		}
		return fmt.Errorf("target %s: %w; use --overwrite to restore into it", target, ErrTargetNotEmpty)
	}
	return nil
}
