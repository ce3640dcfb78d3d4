package daemon

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/syncd/syncd/archiver"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/health"
)

// ErrNoRepository is returned by Snapshot when no repository is configured.
var ErrNoRepository = errors.New("no repository configured (repository: in the config)")

// Snapshot writes a snapshot of every folder from the local index (no
// walk: only what changed since the last snapshot is read) and records
// the result for Status. Concurrent calls wait for each other. It always
// writes one: only scheduled snapshots skip an unchanged tree
// (repository.skip_unchanged).
func (d *Daemon) Snapshot(ctx context.Context) (*SnapshotInfo, error) {
	return d.snapshot(ctx, false)
}

// snapshot is Snapshot; a scheduled one writes no snapshot object when
// repository.skip_unchanged is on and nothing changed since the last
// snapshot this daemon wrote (see unchangedParent).
func (d *Daemon) snapshot(ctx context.Context, scheduled bool) (*SnapshotInfo, error) {
	if d.repo == nil {
		return nil, ErrNoRepository
	}
	d.snapMu.Lock()
	defer d.snapMu.Unlock()
	start := time.Now()
	// The write session's shared lock keeps a prune from deleting what
	// this snapshot references; the index is read again under it, as a
	// prune may have removed packs since the last snapshot. The session
	// fails when the repository is gone (a backup disk not mounted): the
	// snapshot then fails with that reason instead of filling an empty
	// directory.
	sess, err := d.repo.BeginWrite(ctx, chunkstore.WriteOptions{LockOptions: chunkstore.LockOptions{
		Program: "syncd run", Wait: 24 * time.Hour,
		OnWait: func(h []chunkstore.LockInfo) {
			d.log.Info("snapshot waits for the repository lock", "holder", h[0].String())
		},
		OnStale: func(name string, l chunkstore.LockInfo, why string) {
			d.log.Warn("removing stale repository lock", "object", name, "why", why, "holder", l.String())
		}}})
	if err != nil {
		err = fmt.Errorf("repository %s: %w", d.cfg.Repository.URL, err)
		info := &SnapshotInfo{Time: start.UTC(), Result: "failed", Error: err.Error()}
		d.record(info)
		d.log.Error("snapshot failed", "err", err)
		return info, err
	}
	defer sess.Close()
	for _, e := range sess.BadIndex {
		d.log.Warn("index object unreadable; its blobs will be stored again", "object", e.Name, "err", e.Err)
	}
	for _, name := range sess.Dropped {
		d.log.Warn("pack missing or truncated; its blobs will be stored again", "object", name)
	}
	if sess.SealedKeyErr != nil {
		d.log.Warn("the sealed index key could not be written; restoring with the data identity alone will need the index key", "err", sess.SealedKeyErr)
	}
	full := d.fullPass(sess)
	var folders []archiver.IndexedFolder
	for _, f := range d.folders {
		since := d.since(f.cfg.ID)
		if full {
			since = 0
		}
		folders = append(folders, archiver.IndexedFolder{Path: f.cfg.Path, State: f.local.Index(), Since: since})
	}
	// Parent: the newest snapshot of this host and these paths, for the
	// record; the index, not the parent, decides what is read.
	opts := archiver.Options{Host: d.cfg.Node.Name}
	if scheduled && d.cfg.Repository.SkipUnchanged && !full {
		opts.Parent = d.unchangedParent(ctx)
		opts.SkipUnchanged = opts.Parent != nil
	}
	res, err := archiver.SnapshotIndexed(ctx, d.repo, folders, opts)
	info := &SnapshotInfo{Time: start.UTC(), Took: time.Since(start).Round(time.Millisecond).String()}
	if err != nil {
		info.Result, info.Error = "failed", err.Error()
		d.record(info)
		d.log.Error("snapshot failed", "err", err)
		return info, err
	}
	info.ID, info.Files, info.Result = res.ID.String(), res.Snapshot.Stats.FilesRead, "ok"
	// files the indexer could not read are not in the index, so not in
	// the snapshot: it is partial
	skipped := len(res.Errors)
	first := ""
	if skipped > 0 {
		first = res.Errors[0].Error()
	}
	for _, f := range d.folders {
		for _, fe := range f.ix.Failed() {
			if skipped == 0 {
				first = filepath.Join(f.cfg.Path, fe.Error())
			}
			skipped++
		}
	}
	if skipped > 0 {
		info.Result = "partial"
		info.Error = fmt.Sprintf("%d file(s) could not be read, first: %s", skipped, first)
	}
	for _, f := range d.folders {
		// a stopped folder's snapshot is its last indexed state, not now's
		if cs := f.health.List(); len(cs) > 0 && cs[0].Severity == health.Failed {
			info.Result = "partial"
			info.Error = strings.TrimPrefix(info.Error+"; ", "; ") + fmt.Sprintf("folder %s is failed, its last indexed state was saved: %s", f.cfg.ID, cs[0].Reason)
		}
	}
	for i, f := range d.folders {
		d.setSince(f.cfg.ID, res.Seqs[i])
	}
	d.setSnapshotRepo()
	info.Skipped = res.Unchanged
	d.record(info)
	if res.Unchanged {
		d.log.Info("snapshot skipped: nothing changed since the last one (repository.skip_unchanged)", "id", res.ID.Short(), "took", info.Took)
	} else {
		d.log.Info("snapshot saved", "id", res.ID.Short(), "files_read", info.Files, "took", info.Took, "result", info.Result)
	}
	d.pokeCopies() // to repository.copies, in the copy service's goroutine
	return info, nil
}

// unchangedParent returns the snapshot a scheduled one may be skipped
// for: the last one this daemon wrote (or found unchanged), if it was
// complete, no folder is failed or has files it could not index, and it
// is still in the repository (not forgotten). nil: write a snapshot.
func (d *Daemon) unchangedParent(ctx context.Context) *chunkstore.Snapshot {
	last := d.last.Load()
	if last == nil || last.Result != "ok" || last.ID == "" {
		return nil
	}
	for _, f := range d.folders {
		if len(f.ix.Failed()) > 0 {
			return nil
		}
		if cs := f.health.List(); len(cs) > 0 && cs[0].Severity == health.Failed {
			return nil
		}
	}
	id, err := chunkstore.ParseID(last.ID)
	if err != nil {
		return nil
	}
	sn, err := d.repo.LoadSnapshot(ctx, id)
	if err != nil || sn.Host != d.cfg.Node.Name {
		return nil // forgotten, or unreadable: a new snapshot is written
	}
	return sn
}

func (d *Daemon) since(folder string) uint64 {
	v, ok, err := d.db.GetMeta("snapshot-seq/" + folder)
	if err != nil || !ok || len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (d *Daemon) setSince(folder string, seq uint64) {
	if err := d.db.PutMeta("snapshot-seq/"+folder, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		d.log.Error("cannot record the snapshot sequence", "folder", folder, "err", err)
	}
}

func (d *Daemon) record(info *SnapshotInfo) {
	d.last.Store(info)
	d.snapshotDone(info)
	d.pokeDrills() // a drill may have written a record since the last read
	b, _ := json.Marshal(info)
	if err := d.db.PutMeta("last-snapshot", b); err != nil {
		d.log.Error("cannot record the last snapshot", "err", err)
	}
}

func (d *Daemon) loadLast() (*SnapshotInfo, bool) {
	b, ok, err := d.db.GetMeta("last-snapshot")
	if err != nil || !ok {
		return nil, false
	}
	var info SnapshotInfo
	if json.Unmarshal(b, &info) != nil {
		return nil, false
	}
	return &info, true
}

// schedule takes a snapshot at each time of the repository's cron
// schedule until ctx ends. A failed snapshot is logged and recorded; the
// next one is taken at the next scheduled time. After each snapshot that
// was saved (complete or partial) it forgets what repository.retention
// does not keep.
func (d *Daemon) schedule(ctx context.Context) error {
	sched, err := cron.ParseStandard(d.cfg.Repository.Schedule)
	if err != nil {
		return fmt.Errorf("repository.schedule: %w", err)
	}
	for {
		next := sched.Next(time.Now())
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		// a partial snapshot is a snapshot, as in restic; a node with one
		// file it can never read must not pile up snapshots forever
		if _, err := d.snapshot(ctx, true); err == nil {
			if err := d.retain(ctx); err != nil {
				d.log.Error("retention failed", "err", err)
			}
		}
	}
}

// retain applies the retention policy (forget) in a write session of its
// own, without the index.
func (d *Daemon) retain(ctx context.Context) error {
	sess, err := d.repo.BeginWrite(ctx, chunkstore.WriteOptions{NoIndex: true,
		LockOptions: chunkstore.LockOptions{Program: "syncd run (retention)", Wait: time.Hour}})
	if err != nil {
		return fmt.Errorf("retention: repository %s: %w", d.cfg.Repository.URL, err)
	}
	defer sess.Close()
	_, err = d.forget(ctx, time.Now())
	return err
}
