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

	"github.com/syncd/syncd/alert"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/state"
	"github.com/syncd/syncd/transfer"
	"github.com/syncd/syncd/transfer/tlsid"
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
	access  access // who may use node.http

	snapMu sync.Mutex // one snapshot at a time
	last   atomic.Pointer[SnapshotInfo]
	met    metrics // what /metrics counts (metrics.go)

	chk    checker        // the node's problems (checks.go)
	alerts *alert.Alerter // nil: no webhooks configured

	drill drills      // the repository's drill records (drill.go)
	cp    copies      // repository.copies (copy.go)
	clk   clock.Clock // the time of the drill reads and of the transfer service
}

// New opens the state database under node.state_dir, loads the node's
// TLS identity (creating it on first use) and prepares every folder and
// the transfer service. repo may be nil. A folder that is missing or
// unreadable at start is not an error: Run reports it failed and retries
// it, and the other folders run.
func New(cfg *config.Config, repo *chunkstore.Repository, log *slog.Logger) (*Daemon, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	acc, err := newAccess(cfg.Node.HTTP, cfg.Node.HTTPTokenFile)
	if err != nil {
		return nil, err
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
	d := &Daemon{cfg: cfg, log: log, db: db, repo: repo, access: acc, clk: clock.System}
	d.drill.poke = make(chan struct{}, 1)
	if len(cfg.Alerts.Webhooks) > 0 {
		hooks := make([]alert.Webhook, len(cfg.Alerts.Webhooks))
		for i, w := range cfg.Alerts.Webhooks {
			hooks[i] = alert.Webhook{URL: w.URL, TokenFile: w.TokenFile, Timeout: w.Timeout}
		}
		if d.alerts, err = alert.New(alert.Options{Node: cfg.Node.Name, Webhooks: hooks, Repeat: cfg.Alerts.Repeat,
			Logger: log.With("svc", "alerts")}); err != nil {
			db.Close()
			return nil, fmt.Errorf("alerts: %w", err)
		}
	}
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
	if d.node, err = transfer.New(cfg, id, db, tfs, transfer.Options{Logger: log.With("svc", "transfer"), Clock: d.clk}); err != nil {
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
	if d.repo != nil {
		g.Go(func() error { return d.watchDrills(ctx) })
		g.Go(func() error { return d.runCopies(ctx) })
	}
	g.Go(func() error { return d.watchProblems(ctx) })
	if d.alerts != nil {
		g.Go(func() error { return d.alerts.Run(ctx) })
	}
	return g.Wait()
}

// serveHTTP serves the status endpoints on node.http until ctx ends.
func (d *Daemon) serveHTTP(ctx context.Context) error {
	ln, err := net.Listen("tcp", d.cfg.Node.HTTP)
	if err != nil {
		return fmt.Errorf("node.http %s: %w", d.cfg.Node.HTTP, err)
	}
	// Requests run under ctx: a POST /snapshot in flight stops with the daemon.
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
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
