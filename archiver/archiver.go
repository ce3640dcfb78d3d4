// Package archiver writes snapshots of directories on the local file
// system into a chunkstore.Repository.
//
// A walker goroutine lists directories and compares each entry with the
// parent snapshot; files that are new or changed go to a pool of readers
// that chunk and hash them and hand new chunks to a chunkstore.Saver,
// which compresses, packs, encrypts and uploads them on the other cores. A
// directory's tree blob is written as soon as its last entry is done, so
// memory follows the work in flight, not the size of the tree.
package archiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncd/syncd/chunkstore"
)

// Options configures a snapshot.
type Options struct {
	Host    string
	Tags    []string
	Time    time.Time            // snapshot time; zero: now
	Parent  *chunkstore.Snapshot // unchanged files are taken from it; nil: read everything
	Readers int                  // concurrent file readers; 0: 2×GOMAXPROCS
	Saver   chunkstore.SaverOptions
	Logger  *slog.Logger
	// Progress, if set, receives the running counters now and then.
	Progress *Progress
	// SkipUnchanged writes no snapshot when the new one would hold what
	// Parent holds: the same paths, the same tree below each of them
	// (every name, metadata and content; the metadata of the directories
	// above them is not compared), no file skipped, and Parent itself
	// complete (not partial). SnapshotIndexed honours it; Snapshot
	// ignores it.
	SkipUnchanged bool
}

// Progress holds counters that a progress display may read while the
// snapshot runs.
type Progress struct {
	Files     atomic.Int64 // entries walked
	FilesRead atomic.Int64 // files read
	BytesRead atomic.Int64 // bytes read
	// BytesMatched counts the bytes of changed files found unchanged by
	// hashing them against the chunks of the previous version (part of
	// BytesRead, but not chunked).
	BytesMatched atomic.Int64
}

// FileError is a file that could not be (consistently) read.
type FileError struct {
	Path string
	Err  error
}

func (e FileError) Error() string { return e.Path + ": " + e.Err.Error() }

// Result is what Snapshot did.
type Result struct {
	Snapshot *chunkstore.Snapshot
	ID       chunkstore.ID
	Errors   []FileError // files skipped or recorded as changed while read
	// Unchanged is set when Options.SkipUnchanged found nothing changed
	// since Options.Parent: no snapshot was written, and Snapshot and ID
	// are the parent's.
	Unchanged bool
}

// Snapshot writes a snapshot of paths (files or directories) into repo.
// Paths are stored under their absolute names. A file that cannot be read
// is reported in Result.Errors and the snapshot is marked partial; any other
// error aborts the snapshot and nothing is referenced by a snapshot object.
func Snapshot(ctx context.Context, repo *chunkstore.Repository, paths []string, opts Options) (*Result, error) {
	abs, err := cleanPaths(paths)
	if err != nil {
		return nil, err
	}
	if opts.Time.IsZero() {
		opts.Time = time.Now()
	}
	if opts.Readers <= 0 {
		opts.Readers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		opts.Progress = new(Progress)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a := &arch{
		ctx: ctx, cancel: cancel, repo: repo, opts: opts, log: opts.Logger,
		saver: repo.NewSaver(ctx, opts.Saver),
		jobs:  make(chan fileJob, 64), done: make(chan struct{}),
		links: make(map[[2]uint64]linkEntry),
	}
	var readers sync.WaitGroup
	for range opts.Readers {
		readers.Go(a.reader)
	}
	var parentRoot *chunkstore.Tree
	if opts.Parent != nil {
		if parentRoot, err = repo.LoadTree(ctx, opts.Parent.Tree); err != nil {
			a.log.Warn("parent snapshot unreadable; reading every file", "snapshot", opts.Parent.ID().Short(), "err", err)
			parentRoot = nil
		}
	}
	a.walkRoot(abs, parentRoot)
	close(a.jobs)
	readers.Wait()
	if err := context.Cause(ctx); err != nil {
		a.saver.Abort()
		return nil, err
	}
	<-a.done
	if err := context.Cause(ctx); err != nil {
		a.saver.Abort()
		return nil, err
	}
	if _, err := a.saver.Finish(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return saveSnapshot(ctx, repo, opts, a.saver, abs, a.root, a.errors,
		chunkstore.Stats{Files: a.files.Load(), Dirs: a.dirs.Load(), Bytes: a.bytes.Load()})
}

// saveSnapshot writes the snapshot object of a finished run: paths, root
// tree, the totals in stats completed with what the run read and added.
func saveSnapshot(ctx context.Context, repo *chunkstore.Repository, opts Options, saver *chunkstore.Saver,
	paths []string, root chunkstore.ID, errs []FileError, stats chunkstore.Stats) (*Result, error) {
	host := opts.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	stats.FilesRead = opts.Progress.FilesRead.Load()
	stats.BlobsAdded, stats.BytesAdded = saver.Added()
	stats.Errors = int64(len(errs))
	sn := &chunkstore.Snapshot{Time: opts.Time, Host: host, Paths: paths, Tags: opts.Tags, Tree: root,
		Program: "syncd", Partial: len(errs) > 0, Stats: stats}
	if opts.Parent != nil {
		pid := opts.Parent.ID()
		sn.Parent = &pid
	}
	id, err := repo.SaveSnapshot(ctx, sn)
	if err != nil {
		return nil, err
	}
	return &Result{Snapshot: sn, ID: id, Errors: errs}, nil
}

// cleanPaths makes the paths absolute and clean, sorted, and refuses
// duplicates and paths inside one another.
func cleanPaths(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("nothing to back up: no paths given")
	}
	var out []string
	for _, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", p, err)
		}
		if _, err := os.Lstat(a); err != nil {
			return nil, fmt.Errorf("path %s: %w", p, unwrapPathError(err))
		}
		out = append(out, a)
	}
	slices.Sort(out)
	for i := 1; i < len(out); i++ {
		if out[i] == out[i-1] {
			return nil, fmt.Errorf("path %s given twice", out[i])
		}
		if strings.HasPrefix(out[i], out[i-1]+"/") || out[i-1] == "/" {
			return nil, fmt.Errorf("path %s is inside %s; give only the outer one", out[i], out[i-1])
		}
	}
	return out, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// arch is one snapshot run.
type arch struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	repo   *chunkstore.Repository
	opts   Options
	log    *slog.Logger
	saver  *chunkstore.Saver
	jobs   chan fileJob

	root chunkstore.ID
	done chan struct{}

	errMu  sync.Mutex
	errors []FileError

	linkMu sync.Mutex
	links  map[[2]uint64]linkEntry // (device, inode) → content, for hard links

	files, dirs, bytes atomic.Int64
}

type linkEntry struct {
	node    chunkstore.Node
	content []chunkstore.ID
}

func (a *arch) fail(err error) { a.cancel(err) }

func (a *arch) fileError(path string, err error) {
	a.log.Warn("file not backed up", "path", path, "err", err)
	a.errMu.Lock()
	a.errors = append(a.errors, FileError{Path: path, Err: err})
	a.errMu.Unlock()
}
