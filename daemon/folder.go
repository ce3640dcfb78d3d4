package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/indexer"
	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/localfolder"
	"github.com/syncd/syncd/transfer"
	"github.com/syncd/syncd/watcher"
)

// guardEvery is how often a folder's guard is checked while the folder
// is quiet or stopped: an unmount makes no file-system event.
var guardEvery = 2 * time.Second

// folder is one configured folder: its guard, watcher and indexer.
type folder struct {
	cfg     config.Folder
	local   *localfolder.Folder // its index and lock, shared by ix and tf
	ix      *indexer.Indexer
	tf      *transfer.Folder
	pending atomic.Int64 // paths handed over and not yet indexed
	scanned atomic.Bool  // the first full scan is done
	health  *health.Conditions
	match   func(rel string, isDir bool) bool
	confirm chan chan error             // confirm-deletes requests
	dev     uint64                      // the folder's device when its guard first passed (under local's lock)
	watch   atomic.Pointer[watchCounts] // the watcher's counters, for /metrics (metrics.go)
}

func (d *Daemon) newFolder(fc config.Folder) (*folder, error) {
	m, err := config.NewMatcher(fc.Ignore)
	if err != nil {
		return nil, fmt.Errorf("folder %s: %w", fc.ID, err)
	}
	hc := health.NewConditions(nil)
	lf := localfolder.New(fc.Path, d.db.Folder(fc.ID), d.clk)
	ch := d.chunking()
	var sp *chunkstore.Splitter // nil: metadata only, for a folder neither mirrored nor backed up
	if d.repo != nil || len(fc.Peers) > 0 {
		sp = ch.NewSplitter()
	}
	f := &folder{cfg: fc, local: lf, health: hc, match: m.Match, confirm: make(chan chan error)}
	f.ix = indexer.New(indexer.Folder{ID: fc.ID, Root: fc.Path, Ignore: m.Match, MaxDelete: fc.MaxDelete,
		MinHeld: config.MinHeldDeletes, Check: func() error { return d.check(f) }}, lf, sp, d.log.With("folder", fc.ID))
	f.tf = &transfer.Folder{Config: fc, Local: lf, Chunking: ch, Ignore: m.Match, Health: hc}
	return f, nil
}

// runFolder keeps one folder indexed until ctx ends. While its guard
// fails (missing, no marker, another device) it sends and applies
// nothing and is checked again every guardEvery; once it passes, a
// watcher feeds the indexer, starting with a full scan.
func (d *Daemon) runFolder(ctx context.Context, f *folder) error {
	for {
		if !d.waitGuard(ctx, f) {
			return nil
		}
		if err := d.watchFolder(ctx, f); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// waitGuard returns true once the folder's guard passes, false when ctx
// ends first. Confirmations that arrive meanwhile are refused.
func (d *Daemon) waitGuard(ctx context.Context, f *folder) bool {
	t := time.NewTicker(guardEvery)
	defer t.Stop()
	for {
		f.local.Lock()
		err := d.check(f)
		f.local.Unlock()
		if err == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		case reply := <-f.confirm:
			reply <- fmt.Errorf("folder %s is stopped: %v", f.cfg.ID, err)
		}
	}
}

// watchFolder runs a watcher on the folder and feeds its batches to the
// indexer until ctx ends (nil) or the folder's guard fails (nil, after
// the watcher stopped). An error is one the daemon cannot go on from.
func (d *Daemon) watchFolder(ctx context.Context, f *folder) error {
	rescan := f.cfg.Watch.Rescan
	if rescan == 0 {
		rescan = -1 // config: 0 = never; watcher: < 0 = never
	}
	w, err := watcher.New(watcher.Options{Root: f.cfg.Path, Debounce: f.cfg.Watch.Debounce, Rescan: rescan,
		Ignore: f.match, Arrivals: f.local, Logger: d.log.With("folder", f.cfg.ID), Health: f.health})
	if err != nil {
		f.health.Set(condMissing, health.Failed, fmt.Sprintf("folder %s: %v", f.cfg.ID, err))
		return nil
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	ch := make(chan watcher.Batch, 1)
	errc := make(chan error, 1)
	f.watchStart(w)
	defer f.watchEnd() // deferred first, so run once Run returned (the drain below)
	go func() { errc <- w.Run(wctx, ch) }()
	defer func() {
		stop()
		for range ch { // Run closes ch when it returns
		}
	}()
	t := time.NewTicker(guardEvery)
	defer t.Stop()
	for {
		var b watcher.Batch
		var reply chan error
		select {
		case <-ctx.Done():
			return nil
		case bb, ok := <-ch:
			if !ok {
				if err := <-errc; err != nil && ctx.Err() == nil {
					return fmt.Errorf("folder %s: %w", f.cfg.ID, err)
				}
				return nil
			}
			b = bb
		case <-t.C:
			f.local.Lock()
			err := d.check(f)
			f.local.Unlock()
			if err != nil {
				return nil
			}
			continue
		case <-f.local.UnrecordedReady():
			// placed by the receiver, whose commit then failed: the
			// watcher dropped their arrivals as the receiver's own
			b = watcher.Batch{Paths: f.local.TakeUnrecorded()}
			if len(b.Paths) == 0 {
				continue
			}
		case reply = <-f.confirm:
			if _, held := f.health.Get(condHeld); !held {
				reply <- fmt.Errorf("folder %s holds no deletes back", f.cfg.ID)
				continue
			}
			f.ix.ConfirmDeletes()
			b = watcher.Batch{Rescan: true, Reason: "confirm-deletes"}
		}
		if _, held := f.health.Get(condHeld); held {
			// while deletes are held, every batch is a full scan: the held
			// paths come back (or are confirmed) as a whole
			b.Rescan = true
		}
		err := d.indexBatch(ctx, f, b)
		if reply != nil {
			reply <- err
		}
		if errors.Is(err, errGuard) {
			return nil
		}
	}
}

// indexBatch hands one batch to the indexer and records the outcome in
// the folder's conditions.
func (d *Daemon) indexBatch(ctx context.Context, f *folder, b watcher.Batch) error {
	f.pending.Store(int64(len(b.Paths)))
	if b.Rescan {
		f.pending.Store(-1) // unknown until the scan is done
	}
	f.local.Lock()
	paths := b.Paths
	if !b.Rescan {
		// under the lock: what the receiver wrote is recorded by now
		paths = f.local.NotOwn(paths)
	}
	var err error
	start := time.Now()
	indexed := len(paths) > 0 || b.Rescan
	if indexed {
		err = f.ix.Apply(ctx, paths, b.Rescan)
	}
	f.local.Unlock()
	d.log.Debug("indexed", "folder", f.cfg.ID, "reported", len(b.Paths), "not_own", len(paths),
		"sample", paths[:min(len(paths), 4)], "rescan", b.Rescan, "took", time.Since(start).Round(time.Millisecond))
	if indexed {
		// (the receiver tells the peers of its own writes itself)
		f.local.Notify()
	}
	f.pending.Store(0)
	var held *indexer.HeldError
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, errGuard):
		// check set the condition and logged it
	case errors.As(err, &held):
		if f.health.Set(condHeld, health.Failed, err.Error()) {
			d.log.Error("deletes held back", "folder", f.cfg.ID, "files", held.Files, "of", held.Total, "reason", err)
		}
	case err != nil:
		if f.health.Set("index", health.Failed, err.Error()) {
			d.log.Error("folder failed", "folder", f.cfg.ID, "err", err)
		}
	default:
		if f.health.Clear("index") {
			d.log.Info("folder recovered", "folder", f.cfg.ID)
		}
		if b.Rescan && f.health.Clear(condHeld) {
			d.log.Info("held deletes resolved", "folder", f.cfg.ID, "by", b.Reason)
		}
		if b.Rescan {
			f.scanned.Store(true)
		}
	}
	return err
}

// ConfirmDeletes lets the deletes that max_delete holds back in folder go
// through: the folder is scanned again now and records them. It returns
// the scan's error, or an error when the folder holds nothing back.
func (d *Daemon) ConfirmDeletes(ctx context.Context, folder string) error {
	for _, f := range d.folders {
		if f.cfg.ID != folder {
			continue
		}
		reply := make(chan error, 1)
		select {
		case f.confirm <- reply:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err := <-reply:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("no folder %q", folder)
}
