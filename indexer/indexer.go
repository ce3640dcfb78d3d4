// Package indexer keeps a folder's local index (package state) equal to
// the folder on disk. File-system events are hints: the indexer looks at
// the hinted places, compares them with the index, reads and chunks only
// the files whose size, mtime, ctime, inode or type changed, and records
// their chunk IDs and lengths. A restart, a lost event or an overflow
// costs a rescan, never data.
package indexer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/ownname"
	"github.com/syncd/syncd/localfolder"
	"github.com/syncd/syncd/state"
)

// Folder is what the indexer needs to know of a configured folder.
type Folder struct {
	ID     string
	Root   string                            // absolute path
	Ignore func(rel string, isDir bool) bool // nil: nothing ignored
	// MaxDelete is the share of the folder's files (0 < MaxDelete < 1)
	// that may be recorded as deleted within DeleteWindow (default a
	// minute: an rm -rf reaches the indexer in several batches), once at
	// least MinHeld files are; an Apply that would go over it holds its
	// deletes back: see [HeldError]. 0 or 1: no limit.
	MaxDelete    float64
	MinHeld      int
	DeleteWindow time.Duration
	Now          func() time.Time // the clock of DeleteWindow; nil: time.Now
	// Check, if not nil, guards the folder (its marker, its device): it is
	// called before Apply looks at the folder and again right before Apply
	// records deletes. An error stops Apply; no delete is recorded.
	Check func() error
}

// FileError is a path that could not be indexed (unreadable, say).
type FileError struct {
	Path string // relative to the folder root
	Err  error
}

func (e FileError) Error() string { return e.Path + ": " + e.Err.Error() }

// Indexer indexes one folder. Apply and Scan are not safe for concurrent
// use (one goroutine owns an Indexer); Failed and Pending are.
type Indexer struct {
	f   Folder
	st  *state.Folder
	sp  *chunkstore.Splitter
	log *slog.Logger

	filesRead, bytesRead, bytesMatched, filesMoved atomic.Int64

	mv moves // what this Apply learned of renamed directories (moved.go)

	batch      []op      // writes not yet committed
	batchSince time.Time // when batch was last empty: the start of the Apply, or its last commit

	// The deletes one Apply finds are recorded last, after everything that
	// exists (a renamed entry's new name is numbered before its old name's
	// delete), and only once the folder's guard and max_delete allow it.
	deferred []op            // deletes, and puts that must follow them, in order
	goneSet  map[string]bool // paths in deferred as deletes
	after    map[string]bool // puts to defer: a directory replaced by a file
	confirm  atomic.Bool     // an operator confirmed a held delete
	recent   []deleted       // deletes recorded within the window

	mu     sync.Mutex
	failed map[string]error
}

// op is one pending write to the index.
type op struct {
	rel   string
	e     state.Entry
	erase bool
}

// flushEvery bounds the writes in one index transaction: large enough to
// amortize bbolt's commit (an fsync), small enough to bound memory. And
// what has waited flushAfter is committed after the next write, so that
// peers take it while the rest is read: the bench's mutation round
// indexes its edited 512 MiB dump (first, by its path) and then a renamed
// directory of 776 files in one Apply, and the receivers began on the dump
// only once both were done.
const (
	flushEvery = 2000
	flushAfter = 250 * time.Millisecond
)

// New returns an indexer of f, recording into the index of lf and cutting
// files with sp (nil: metadata only, for a node without a repository). Its
// caller holds lf's lock while Apply runs (see [localfolder.Folder.Lock]).
func New(f Folder, lf *localfolder.Folder, sp *chunkstore.Splitter, log *slog.Logger) *Indexer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Indexer{f: f, st: lf.Index(), sp: sp, log: log, failed: map[string]error{}}
}

// Stats are the indexer's counters since it was made.
type Stats struct {
	FilesRead    int64 // files read and chunked
	BytesRead    int64
	BytesMatched int64 // of which matched against the previous chunks by hash
	FilesMoved   int64 // files found unchanged under a renamed directory: not read
}

// Stats returns the counters. It is safe for concurrent use.
func (ix *Indexer) Stats() Stats {
	return Stats{FilesRead: ix.filesRead.Load(), BytesRead: ix.bytesRead.Load(), BytesMatched: ix.bytesMatched.Load(),
		FilesMoved: ix.filesMoved.Load()}
}

// Failed lists the paths that could not be indexed, sorted.
func (ix *Indexer) Failed() []FileError {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make([]FileError, 0, len(ix.failed))
	for p, err := range ix.failed {
		out = append(out, FileError{Path: p, Err: err})
	}
	slices.SortFunc(out, func(a, b FileError) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func (ix *Indexer) fail(rel string, err error) {
	ix.log.Warn("cannot index", "folder", ix.f.ID, "path", rel, "err", err)
	ix.mu.Lock()
	ix.failed[rel] = err
	ix.mu.Unlock()
}

func (ix *Indexer) ok(rel string) {
	ix.mu.Lock()
	delete(ix.failed, rel)
	ix.mu.Unlock()
}

// Apply brings the index up to date for the hinted paths (relative to the
// folder root), or for the whole folder when rescan is set. It returns a
// *[HeldError] when it held deletes back.
func (ix *Indexer) Apply(ctx context.Context, paths []string, rescan bool) error {
	ix.deferred, ix.goneSet, ix.after = nil, nil, nil
	ix.batchSince = time.Now()
	ix.mv = moves{}
	if ix.f.Check != nil {
		if err := ix.f.Check(); err != nil {
			return err
		}
	}
	if err := ix.apply(ctx, paths, rescan); err != nil {
		ix.deferred, ix.goneSet, ix.after = nil, nil, nil
		ix.batch = nil
		return err
	}
	held := len(ix.deferred) > 0
	err := ix.commitDeletes()
	if rescan && !held {
		ix.confirm.Store(false)
	}
	if rescan && err == nil {
		// a folder adopting its peers' versions may take them now: every
		// file on disk is in the index (state.Folder.BeginAdoption)
		err = ix.st.AdoptionScanned()
	}
	return err
}

// apply is Apply without the deletes' commit.
func (ix *Indexer) apply(ctx context.Context, paths []string, rescan bool) error {
	if fi, err := os.Stat(ix.f.Root); err != nil || !fi.IsDir() {
		// no hint is believed while the folder itself is missing: its
		// paths would all look deleted
		return ix.scan(ctx, "")
	}
	if rescan {
		paths = []string{""}
	}
	parents := map[string]bool{}
	// What exists first, what is gone after: the new name of a renamed
	// file or directory gets its sequence numbers before the old name's
	// deletes, so a peer taking the changes in batches finds the content
	// still at the old name when it builds the new one.
	type goneRel struct {
		rel string
		err error
	}
	var gone []goneRel
	for _, p := range dedupe(paths) {
		if p != "" {
			parents[path.Dir(p)] = true
		}
		fi, err := ix.lstat(p)
		if p != "" && isGone(err) {
			gone = append(gone, goneRel{p, err})
			continue
		}
		if err := ix.scanStat(ctx, p, fi, err); err != nil {
			return err
		}
	}
	for _, g := range gone {
		if err := ix.scanStat(ctx, g.rel, nil, g.err); err != nil {
			return err
		}
	}
	// A created, removed or renamed entry changes its directory's mtime.
	for dir := range parents {
		if err := ix.refreshDir(dir); err != nil {
			return err
		}
	}
	return ix.flush()
}

// Scan brings the index up to date for the whole folder.
func (ix *Indexer) Scan(ctx context.Context) error { return ix.Apply(ctx, nil, true) }

// dedupe drops paths below another path of the list (scanning a directory
// covers what is below it) and duplicates.
func dedupe(paths []string) []string {
	ps := slices.Clone(paths)
	slices.Sort(ps)
	out := ps[:0]
	for _, p := range ps {
		if len(out) > 0 {
			last := out[len(out)-1]
			if p == last || last == "" || (len(p) > len(last) && p[:len(last)] == last && p[len(last)] == '/') {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// refreshDir updates the metadata of directory dir ("." is the root,
// which has no entry) without looking at its entries.
func (ix *Indexer) refreshDir(dir string) error {
	if dir == "." {
		return nil
	}
	fi, err := os.Lstat(ix.abs(dir))
	if err != nil || !fi.IsDir() {
		return nil // gone or replaced: the scan of its own hint handles it
	}
	return ix.put(dir, state.EntryOf(fi))
}

func (ix *Indexer) abs(rel string) string { return filepath.Join(ix.f.Root, filepath.FromSlash(rel)) }

// scan compares the place rel (and, for a directory, everything below it)
// with the index.
func (ix *Indexer) scan(ctx context.Context, rel string) error {
	fi, err := ix.lstat(rel)
	return ix.scanStat(ctx, rel, fi, err)
}

// lstat is os.Lstat of rel, but follows the folder root itself when it is
// a symlink: a folder's path may be a link to where the content is.
func (ix *Indexer) lstat(rel string) (fs.FileInfo, error) {
	if rel == "" {
		return os.Stat(ix.f.Root)
	}
	return os.Lstat(ix.abs(rel))
}

// scanStat is scan with rel's lstat already taken.
func (ix *Indexer) scanStat(ctx context.Context, rel string, fi fs.FileInfo, err error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rel == "" && (err != nil || !fi.IsDir()) {
		// The folder itself is gone or unreadable: an unmounted disk more
		// often than a deliberate deletion of everything. Keep the index
		// (no mass deletes) and fail; the daemon marks the folder failed.
		if err == nil {
			err = errors.New("not a directory")
		}
		return fmt.Errorf("folder %s: %w", ix.f.Root, err)
	}
	gone := isGone(err)
	if gone || (err == nil && rel != "" && ix.ignored(rel, fi.IsDir())) {
		return ix.removeTree(rel)
	}
	if err != nil {
		ix.fail(rel, err)
		return nil
	}
	return ix.entry(ctx, rel, fi)
}

func (ix *Indexer) ignored(rel string, isDir bool) bool {
	return ix.f.Ignore != nil && ix.f.Ignore(rel, isDir)
}

// entry indexes rel, whose lstat is fi.
func (ix *Indexer) entry(ctx context.Context, rel string, fi fs.FileInfo) error {
	e := state.EntryOf(fi)
	if !fi.IsDir() && rel != "" {
		// a directory replaced by a file or a link: what was below it is gone
		if old, have, err := ix.st.Get(rel); err != nil {
			return err
		} else if have && !old.Deleted && old.Type == "dir" {
			if err := ix.removeBelow(rel); err != nil {
				return err
			}
			if ix.after == nil {
				ix.after = map[string]bool{}
			}
			ix.after[rel] = true
		}
	}
	switch {
	case fi.IsDir():
		if rel != "" { // the folder root has no entry of its own
			if err := ix.put(rel, e); err != nil {
				return err
			}
		}
		return ix.dir(ctx, rel)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(ix.abs(rel))
		if err != nil {
			ix.fail(rel, err)
			return nil
		}
		e.Target = target
		return ix.put(rel, e)
	case fi.Mode().IsRegular():
		return ix.file(ctx, rel, e)
	}
	return ix.removeTree(rel) // sockets, devices, fifos: not content
}

// dir scans the entries of directory rel and forgets those gone from disk.
func (ix *Indexer) dir(ctx context.Context, rel string) error {
	d, err := os.Open(ix.abs(rel))
	if err != nil {
		ix.fail(rel, err)
		return nil
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		ix.fail(rel, err)
		return nil
	}
	ix.ok(rel)
	slices.Sort(names)
	onDisk := make(map[string]bool, len(names))
	for _, name := range names {
		if ownname.Is(name) {
			if ownname.IsTemp(name) {
				ix.removeStale(path.Join(rel, name))
			}
			continue
		}
		child := path.Join(rel, name)
		onDisk[child] = true
		if err := ix.scan(ctx, child); err != nil {
			return err
		}
	}
	// entries the index has below rel that are no longer on disk: in the
	// index, or put by this Apply and not yet committed (a commit per
	// directory, an fsync each, made a renamed tree of a hundred
	// directories cost a second)
	var gone []string
	err = ix.st.WalkTree(rel, func(p string, e state.Entry) error {
		if p == rel {
			return nil
		}
		if !onDisk[p] && !e.Deleted {
			gone = append(gone, p)
		}
		if e.Type == "dir" {
			return fs.SkipDir // only direct children here
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, o := range ix.batch {
		// (the prefix test first: this runs for every directory of a scan)
		if len(o.rel) > len(rel) && strings.HasPrefix(o.rel, rel) && !o.erase && parentOf(o.rel) == rel &&
			!onDisk[o.rel] && !slices.Contains(gone, o.rel) {
			gone = append(gone, o.rel)
		}
	}
	for _, p := range gone {
		if err := ix.removeTree(p); err != nil {
			return err
		}
	}
	return nil
}

// A temporary file of the transfer receiver whose inode has not changed
// since before this process started, or for staleAfter, was left by a
// crash: a file being received changes with every block, and a stalled
// transfer is given up within a minute.
var staleAfter = 10 * time.Minute // a variable for tests

// started is when this process started: a temporary file of the receiver
// older than that was left by an earlier run, whatever its age.
var started = time.Now()

// removeStale removes the receiver's temporary file rel if it is stale.
func (ix *Indexer) removeStale(rel string) {
	fi, err := os.Lstat(ix.abs(rel))
	if err != nil {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	ctime := time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	if !ok || ctime.After(started) && time.Since(ctime) < staleAfter {
		return
	}
	if err := os.Remove(ix.abs(rel)); err == nil {
		ix.log.Info("removed a temporary file left by a crash", "path", rel)
	}
}

// removeTree records rel and everything below it as deleted.
func (ix *Indexer) removeTree(rel string) error { return ix.remove(rel, true) }

// removeBelow records everything below rel as deleted, not rel itself.
func (ix *Indexer) removeBelow(rel string) error { return ix.remove(rel, false) }

func (ix *Indexer) remove(rel string, self bool) error {
	within := func(p string) bool {
		return p != "" && (self || p != rel) && (rel == "" || p == rel || strings.HasPrefix(p, rel+"/"))
	}
	types := map[string]string{} // what is gone, and its type
	err := ix.st.WalkTree(rel, func(p string, e state.Entry) error {
		if !e.Deleted && within(p) {
			types[p] = e.Type
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, o := range ix.batch { // put by this Apply, not yet committed
		if !o.erase && within(o.rel) {
			types[o.rel] = o.e.Type
		}
	}
	ix.ok(rel)
	// Deleted in reverse order of their paths: everything in a directory
	// (a longer path with it as prefix) gets a lower sequence number than
	// the directory, so a peer that takes the changes in batches never
	// meets a directory's delete before those of its contents (it could
	// not remove it yet, and would retry later).
	if ix.goneSet == nil {
		ix.goneSet = map[string]bool{}
	}
	gone := slices.Sorted(maps.Keys(types))
	for _, p := range slices.Backward(gone) {
		if !ix.goneSet[p] {
			ix.goneSet[p] = true
			ix.deferred = append(ix.deferred, op{rel: p, e: state.Entry{Type: types[p]}, erase: true})
		}
	}
	return nil
}

// parentOf is the directory of rel, "" for the folder root.
func parentOf(rel string) string {
	if d := path.Dir(rel); d != "." {
		return d
	}
	return ""
}

// put records e for rel unless the index already has it.
func (ix *Indexer) put(rel string, e state.Entry) error {
	if ix.after[rel] {
		// a directory replaced by a file: the file after its contents' deletes
		ix.deferred = append(ix.deferred, op{rel: rel, e: e})
		return nil
	}
	ix.batch = append(ix.batch, op{rel: rel, e: e})
	return ix.maybeFlush()
}

func (ix *Indexer) maybeFlush() error {
	if len(ix.batch) >= flushEvery || time.Since(ix.batchSince) >= flushAfter {
		return ix.flush()
	}
	return nil
}

// flush commits the pending writes in one transaction.
func (ix *Indexer) flush() error {
	if len(ix.batch) == 0 {
		return nil
	}
	batch := ix.batch
	ix.batch, ix.batchSince = nil, time.Now()
	return ix.st.Update(func(tx *state.Tx) error {
		for _, o := range batch {
			var err error
			if o.erase {
				err = tx.Delete(o.rel)
			} else {
				err = tx.Put(o.rel, o.e)
			}
			if err != nil {
				return fmt.Errorf("index %s: %w", o.rel, err)
			}
		}
		return nil
	})
}

// isGone reports whether an lstat error says the path is not there
// (ENOTDIR: a directory on the way became a file; the path is gone too).
func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
