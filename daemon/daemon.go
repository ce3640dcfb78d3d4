// Package daemon is `syncd run`: for each configured folder a watcher feeds
// an indexer that keeps the local index up to date; snapshots are written
// from the index on the repository's schedule and on demand; an HTTP
// endpoint serves health, readiness and status.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/indexer"
	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/state"
	"github.com/syncd/syncd/transfer"
	"github.com/syncd/syncd/transfer/tlsid"
	"github.com/syncd/syncd/watcher"
)

// Daemon runs the services of one node. Its methods are safe for
// concurrent use.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	db      *state.DB
	repo    *chunkstore.Repository // nil: no repository configured
	folders []*folder
	node    *transfer.Node

	snapMu sync.Mutex // one snapshot at a time
	last   atomic.Pointer[SnapshotInfo]
}

// folder is one configured folder's watcher and indexer.
type folder struct {
	cfg     config.Folder
	st      *state.Folder
	ix      *indexer.Indexer
	w       *watcher.Watcher
	tf      *transfer.Folder
	mu      sync.Mutex         // held while the indexer or the receiver apply a batch
	pending atomic.Int64       // paths handed over and not yet indexed
	scanned atomic.Bool        // the first full scan is done
	health  *health.Conditions // the folder's lasting conditions, shared with the watcher and transfer
}

// New opens the state database under node.state_dir, loads the node's
// TLS identity (creating it on first use) and prepares every folder and
// the transfer service. repo may be nil. A folder that is missing or
// unreadable at start is an error naming it.
func New(cfg *config.Config, repo *chunkstore.Repository, log *slog.Logger) (*Daemon, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Node.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state_dir %s: %w", cfg.Node.StateDir, err)
	}
	db, err := state.Open(filepath.Join(cfg.Node.StateDir, "state.db"))
	if err != nil {
		return nil, err
	}
	id, err := tlsid.LoadOrCreate(cfg.Node.StateDir)
	if err != nil {
		db.Close()
		return nil, err
	}
	db.SetLocalNode(id.ID.Uint64())
	d := &Daemon{cfg: cfg, log: log, db: db, repo: repo}
	if info, ok := d.loadLast(); ok {
		d.last.Store(info)
	}
	var tfs []*transfer.Folder
	for _, fc := range cfg.Folders {
		f, err := d.newFolder(fc)
		if err != nil {
			db.Close()
			return nil, err
		}
		d.folders = append(d.folders, f)
		tfs = append(tfs, f.tf)
	}
	if d.node, err = transfer.New(cfg, id, db, tfs, log.With("svc", "transfer")); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

// chunking returns how the node cuts files: as the repository does, so
// that snapshots reuse the index's chunk IDs, or, without one, with the
// fixed parameters every mirroring node uses.
func (d *Daemon) chunking() chunkstore.Chunking {
	if d.repo != nil {
		return d.repo.Chunking()
	}
	return chunkstore.MirrorChunking()
}

func (d *Daemon) newFolder(fc config.Folder) (*folder, error) {
	fi, err := os.Stat(fc.Path)
	if err != nil {
		return nil, fmt.Errorf("folder %s: %s: %w", fc.ID, fc.Path, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("folder %s: %s is not a directory", fc.ID, fc.Path)
	}
	if _, err := os.ReadDir(fc.Path); err != nil {
		return nil, fmt.Errorf("folder %s: %s: %w", fc.ID, fc.Path, errors.Unwrap(err))
	}
	m, err := config.NewMatcher(fc.Ignore)
	if err != nil {
		return nil, fmt.Errorf("folder %s: %w", fc.ID, err)
	}
	rescan := fc.Watch.Rescan
	if rescan == 0 {
		rescan = -1 // config: 0 = never; watcher: < 0 = never
	}
	hc := health.NewConditions(nil)
	w, err := watcher.New(watcher.Options{Root: fc.Path, Debounce: fc.Watch.Debounce, Rescan: rescan,
		Ignore: m.Match, Logger: d.log.With("folder", fc.ID), Health: hc})
	if err != nil {
		return nil, fmt.Errorf("folder %s: %w", fc.ID, err)
	}
	st := d.db.Folder(fc.ID)
	ch := d.chunking()
	var sp *chunkstore.Splitter // nil: metadata only, for a folder neither mirrored nor backed up
	if d.repo != nil || len(fc.Peers) > 0 {
		sp = ch.NewSplitter()
	}
	ix := indexer.New(indexer.Folder{ID: fc.ID, Root: fc.Path, Ignore: m.Match}, st, sp, d.log.With("folder", fc.ID))
	f := &folder{cfg: fc, st: st, ix: ix, w: w, health: hc}
	f.tf = &transfer.Folder{Config: fc, State: st, Chunking: ch, Ignore: m.Match, Lock: &f.mu, Health: hc}
	return f, nil
}

// Close releases the state database and the folders.
func (d *Daemon) Close() error {
	d.node.Close()
	return d.db.Close()
}

// Run runs every service until ctx ends, then stops them and returns. The
// state is consistent at every moment (each index write is a transaction);
// a snapshot in flight is abandoned and writes no snapshot object.
func (d *Daemon) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, f := range d.folders {
		g.Go(func() error { return d.runFolder(ctx, f) })
	}
	g.Go(func() error { return d.serveHTTP(ctx) })
	g.Go(func() error { return d.node.Run(ctx) })
	if d.repo != nil && d.cfg.Repository.Schedule != "" {
		g.Go(func() error { return d.schedule(ctx) })
	}
	return g.Wait()
}

// runFolder feeds the watcher's batches to the indexer. A failure of the
// folder (gone, unreadable) marks it failed in the status; the other
// folders go on, and the next batch retries.
func (d *Daemon) runFolder(ctx context.Context, f *folder) error {
	ch := make(chan watcher.Batch, 1)
	errc := make(chan error, 1)
	go func() { errc <- f.w.Run(ctx, ch) }()
	for b := range ch {
		f.pending.Store(int64(len(b.Paths)))
		if b.Rescan {
			f.pending.Store(-1) // unknown until the scan is done
		}
		f.mu.Lock()
		paths := b.Paths
		if !b.Rescan {
			// under the lock: what the receiver wrote is recorded by now
			paths = f.tf.NotOwn(paths)
		}
		var err error
		start := time.Now()
		indexed := len(paths) > 0 || b.Rescan
		if indexed {
			err = f.ix.Apply(ctx, paths, b.Rescan)
		}
		f.mu.Unlock()
		d.log.Debug("indexed", "folder", f.cfg.ID, "reported", len(b.Paths), "not_own", len(paths),
			"sample", paths[:min(len(paths), 4)], "rescan", b.Rescan, "took", time.Since(start).Round(time.Millisecond))
		if indexed {
			// (the receiver tells the peers of its own writes itself)
			d.node.Notify(f.cfg.ID)
		}
		f.pending.Store(0)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			if f.health.Set("index", health.Failed, err.Error()) {
				d.log.Error("folder failed", "folder", f.cfg.ID, "err", err)
			}
		default:
			if f.health.Clear("index") {
				d.log.Info("folder recovered", "folder", f.cfg.ID)
			}
			if b.Rescan {
				f.scanned.Store(true)
			}
		}
	}
	if err := <-errc; err != nil && ctx.Err() == nil {
		return fmt.Errorf("folder %s: %w", f.cfg.ID, err)
	}
	return nil
}

// serveHTTP serves the status endpoints on node.http until ctx ends.
func (d *Daemon) serveHTTP(ctx context.Context) error {
	ln, err := net.Listen("tcp", d.cfg.Node.HTTP)
	if err != nil {
		return fmt.Errorf("node.http %s: %w", d.cfg.Node.HTTP, err)
	}
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
