// Package copier copies snapshots from one repository to another (syncd
// copy, and the daemon's repository.copies) with the index key alone.
//
// The target is a copy target of the source (chunkstore.InitCopy): the
// same chunker, chunk-ID key, index key and data recipients. So objects
// travel as they are, still encrypted: a content pack the copier cannot
// open (it has no data identity) is copied byte for byte, and so are tree
// packs and snapshot objects. Only the index objects are new: the target
// gets one listing the packs each copy sent.
//
// A copy writes in the order every writer does (docs/FORMAT.md): packs,
// then the index object that lists them, then the snapshot objects, so
// that a copy stopped at any point (even kill -9) leaves no snapshot in
// the target that points at data it lacks. The next copy finds the packs
// the stopped one uploaded (present, not yet listed by an index) and does
// not send them again.
package copier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
)

// Options configure a copy. Zero values choose the defaults.
type Options struct {
	// Select chooses the snapshots of the source to copy (those the
	// target lacks among them); nil copies every snapshot the target
	// lacks.
	Select func(*chunkstore.Snapshot) bool
	// SourceLock and TargetLock configure the shared locks the copy holds
	// on each repository (Program, Wait, OnWait, OnStale): the source's
	// keeps a prune there from deleting packs being copied, the target's
	// keeps a prune there from deleting packs uploaded and not yet listed.
	SourceLock, TargetLock chunkstore.LockOptions
	// Workers is how many packs are copied at once (default 8); each holds
	// one pack in memory (about 16 MiB).
	Workers int
	// Logger receives warnings (a snapshot of the source that cannot be
	// copied, index objects that cannot be read); nil discards them.
	Logger *slog.Logger
	// Progress, when not nil, is updated as the copy goes.
	Progress *Progress
	// Hook, when not nil, is called with "pack copied" after each pack
	// upload, "index written" after the target's new index object, and
	// "snapshot copied" after each snapshot object; one call at a time.
	// The end-to-end tests use it to stop a copy at a chosen point.
	Hook func(event string)
}

// Progress counts what a running copy has done; safe for concurrent use.
type Progress struct {
	Trees       atomic.Int64 // tree blobs of the source read
	PacksToCopy atomic.Int64 // packs to send, once known
	Packs       atomic.Int64 // packs sent
	Bytes       atomic.Int64 // bytes of the packs sent
}

// Result says what a copy did.
type Result struct {
	// Copied are the snapshots copied, oldest first.
	Copied []*chunkstore.Snapshot `json:"-"`
	// Present counts the selected snapshots the target already had.
	Present int `json:"snapshots_present"`
	// Failed are the selected snapshots that could not be copied because
	// the source lacks or cannot read part of them; the others were.
	Failed []Failure `json:"failed,omitempty"`
	// Packs and Bytes count the packs sent and their stored size.
	Packs int   `json:"packs_copied"`
	Bytes int64 `json:"bytes_copied"`
	// Resumed counts the packs an earlier, interrupted copy had already
	// uploaded: found in the target, not sent again.
	Resumed int `json:"packs_resumed"`
	// BlobsNeeded counts the blobs the copied snapshots reference, and
	// BlobsPresent those of them the target already had.
	BlobsNeeded  int `json:"blobs_needed"`
	BlobsPresent int `json:"blobs_present"`
	// Index names the index objects written to the target.
	Index []string `json:"index_objects"`
}

// Failure is a snapshot that was not copied, and why.
type Failure struct {
	Snapshot string `json:"snapshot"`
	Error    string `json:"error"`
}

// ErrNotTarget is matched by the error of Copy when the target cannot
// receive the source's objects unchanged (chunkstore.CheckCopyTarget).
var ErrNotTarget = errors.New("not a copy target of the source")

// Copy copies the snapshots of src that opts selects and dst lacks into
// dst, with every blob they reference that dst lacks. It first checks that
// dst is a copy target of src, before writing anything anywhere; then it
// holds a shared lock on each (a write session). It returns the error
// that stopped it; a snapshot the source cannot provide in full is not
// copied and is listed in Result.Failed, and the others are.
func Copy(ctx context.Context, src, dst *chunkstore.Repository, opts Options) (*Result, error) {
	if err := chunkstore.CheckCopyTarget(src.Config(), dst.Config()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotTarget, err)
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		opts.Progress = new(Progress)
	}
	c := &copier{src: src, dst: dst, opts: opts}
	if opts.Hook != nil {
		var mu sync.Mutex
		c.hook = func(e string) {
			mu.Lock()
			defer mu.Unlock()
			opts.Hook(e)
		}
	} else {
		c.hook = func(string) {}
	}
	// Write sessions: the locks, and the target's index loaded under its
	// lock without the blobs of missing packs. The source's is loaded
	// once its snapshots are listed (sourceIndex).
	ss, err := src.BeginWrite(ctx, chunkstore.WriteOptions{LockOptions: opts.SourceLock, NoIndex: true})
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer ss.Close()
	ds, err := dst.BeginWrite(ctx, chunkstore.WriteOptions{LockOptions: opts.TargetLock})
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	defer ds.Close()
	for _, e := range ds.BadIndex {
		opts.Logger.Warn("target index object unreadable; its blobs are copied again", "object", e.Name, "err", e.Err)
	}
	c.dstLock = ds.Lock()
	return c.run(ctx)
}

type copier struct {
	src, dst *chunkstore.Repository
	opts     Options
	hook     func(string)
	dstLock  *chunkstore.Lock
}

func (c *copier) run(ctx context.Context) (*Result, error) {
	res := &Result{Index: []string{}}
	todo, err := c.pending(ctx, res)
	if err != nil || len(todo) == 0 {
		return res, err
	}
	if err := c.sourceIndex(ctx); err != nil {
		return res, err
	}
	needed, todo, err := c.neededBlobs(ctx, todo, res)
	if err != nil || len(todo) == 0 {
		return res, nil
	}
	packs := c.packsToCopy(needed, res)
	if err := c.copyPacks(ctx, packs, res); err != nil {
		return res, err
	}
	if len(packs) > 0 {
		ids, err := c.dst.SaveIndex(ctx, c.indexEntries(packs))
		for _, id := range ids {
			res.Index = append(res.Index, chunkstore.IndexName(id))
		}
		if err != nil {
			return res, fmt.Errorf("target: %w", err)
		}
		c.hook("index written")
	}
	for _, sn := range todo {
		if err := c.copySnapshot(ctx, sn); err != nil {
			return res, err
		}
		res.Copied = append(res.Copied, sn)
		c.hook("snapshot copied")
	}
	return res, nil
}

// pending returns the selected snapshots of the source that the target
// lacks, oldest first. A snapshot is the same object in both (named by
// the SHA-256 of its sealed bytes), so the names say which are there.
func (c *copier) pending(ctx context.Context, res *Result) ([]*chunkstore.Snapshot, error) {
	snaps, bad, err := c.src.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	for _, e := range bad {
		c.opts.Logger.Warn("source snapshot unreadable; not copied", "object", e.Name, "err", e.Err)
	}
	have := map[string]bool{}
	err = c.dst.Backend().List(ctx, "snapshots/", func(fi backend.Info) error {
		have[strings.TrimPrefix(fi.Name, "snapshots/")] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("target: list snapshots: %w", err)
	}
	var todo []*chunkstore.Snapshot
	for _, sn := range snaps {
		if c.opts.Select != nil && !c.opts.Select(sn) {
			continue
		}
		if have[sn.ID().String()] {
			res.Present++
			continue
		}
		todo = append(todo, sn)
	}
	return todo, nil
}

// sourceIndex brings the source's in-memory index up to date, without the
// blobs of missing packs, once pending has listed the snapshots. Every
// writer saves the index objects of a snapshot's packs before the
// snapshot object (docs/FORMAT.md), so the index read now lists the blobs
// of every snapshot listed before, even of one saved while the copy
// began. Read before the listing (when the session began), it lacked
// those of a snapshot saved in between, which then failed to copy.
func (c *copier) sourceIndex(ctx context.Context) error {
	bad, err := c.src.ReloadIndex(ctx)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	for _, e := range bad {
		c.opts.Logger.Warn("source index object unreadable; snapshots that need its blobs are not copied", "object", e.Name, "err", e.Err)
	}
	if _, err := c.src.DropMissingPacks(ctx); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	return nil
}

// copySnapshot copies the snapshot object of sn as it is, once the
// target lock is known to be held (a prune of the target may otherwise
// have deleted packs the copy uploaded).
func (c *copier) copySnapshot(ctx context.Context, sn *chunkstore.Snapshot) error {
	name := chunkstore.SnapshotName(sn.ID())
	data, err := backend.ReadAll(ctx, c.src.Backend(), name)
	if err != nil {
		return fmt.Errorf("source: read %s: %w", name, err)
	}
	if chunkstore.Hash(data) != sn.ID() {
		return fmt.Errorf("source: %s: content does not match its name: %w", name, chunkstore.ErrCorrupt)
	}
	if c.dstLock != nil {
		if err := c.dstLock.Check(); err != nil {
			return fmt.Errorf("target: copy of %s stopped: %w", name, err)
		}
	}
	if err := backend.SaveBytes(ctx, c.dst.Backend(), name, data); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	return nil
}

// sortedPacks returns the packs of m sorted by name, for a stable order.
func sortedPacks(m map[chunkstore.ID]chunkstore.Location) []chunkstore.Location {
	out := make([]chunkstore.Location, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b chunkstore.Location) int {
		return strings.Compare(a.Pack.String(), b.Pack.String())
	})
	return out
}
