package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/syncd/syncd/archiver"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/drill"
	"github.com/syncd/syncd/internal/repotest"
)

// writer is a handle on a test repository that snapshots into it, beside
// the reader a test opens with readerOver.
type writer struct {
	s    repotest.Storage
	repo *chunkstore.Repository
	n    int
}

func newWriter(t *testing.T) *writer {
	t.Helper()
	w := &writer{s: repotest.Init(t)}
	w.repo = w.s.Open(t, nil)
	sess, err := w.repo.BeginWrite(context.Background(), chunkstore.WriteOptions{NoLock: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	return w
}

// snapshot writes file f under a new directory and snapshots it as host
// web1, each snapshot an hour after the one before; it returns the
// snapshot and the path of f in it.
func (w *writer) snapshot(t *testing.T) (*chunkstore.Snapshot, string) {
	t.Helper()
	w.n++
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte(fmt.Sprint("content ", w.n)), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := archiver.Snapshot(context.Background(), w.repo, []string{dir}, archiver.Options{Host: "web1", Time: time.Unix(int64(w.n)*3600, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return res.Snapshot, res.Snapshot.Paths[0] + "/f"
}

// reader opens another handle on w's repository, which snapshots through
// w at its first listing of snapshots/: the snapshot is saved between the
// reader's opening (and loading of the index, with index) and its listing.
// The snapshot and the path of its file are set once it is saved.
func (w *writer) reader(t *testing.T, index bool) (r *chunkstore.Repository, saved **chunkstore.Snapshot, file *string) {
	t.Helper()
	saved, file = new(*chunkstore.Snapshot), new(string)
	r = w.s.Open(t, func(be backend.Backend) backend.Backend {
		return &repotest.ListHook{Backend: be, Prefix: "snapshots/", Before: func() { *saved, *file = w.snapshot(t) }}
	})
	if index {
		if _, err := r.LoadIndex(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return r, saved, file
}

// A snapshot saved while a command opens the repository (the daemon
// snapshots while restore, ls, dump, diff, find or stats starts) reads
// with its index: cli.Open loads the index before the command lists the
// snapshots, and the listing (Repository.SnapshotsAndIndex) reloads it after. Without
// the reload the index lacked the snapshot's index objects, and reading
// its root tree failed with "tree …: not in the index".
func TestSnapshotSavedWhileCommandBegins(t *testing.T) {
	ctx := context.Background()
	w := newWriter(t)
	w.snapshot(t)
	for _, tc := range []struct {
		name string
		find func(*chunkstore.Repository) (*chunkstore.Snapshot, error)
	}{
		{"findSnapshot", func(r *chunkstore.Repository) (*chunkstore.Snapshot, error) { return findSnapshot(ctx, r, "latest") }},
		{"pick", func(r *chunkstore.Repository) (*chunkstore.Snapshot, error) {
			return (&pick{hosts: []string{"web1"}}).find(ctx, r, "latest")
		}},
		{"readableSnapshots", func(r *chunkstore.Repository) (*chunkstore.Snapshot, error) {
			snaps, err := readableSnapshots(ctx, r, "")
			if err != nil {
				return nil, err
			}
			return snaps[len(snaps)-1], nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, saved, file := w.reader(t, true)
			sn, err := tc.find(r)
			if err != nil {
				t.Fatal(err)
			}
			if *saved == nil || sn.ID() != (*saved).ID() {
				t.Fatalf("found snapshot %v; want the one saved at the listing, %v", sn, *saved)
			}
			if _, err := lookup(ctx, r, sn, *file); err != nil {
				t.Errorf("lookup %s: %v", *file, err)
			}
		})
	}
}

// A snapshot saved while a drill begins is drilled intact: the drill
// opens the repository without its index and loads it once the snapshots
// are listed (Repository.SnapshotsAndIndex). Loaded before, as it was, the index lacked
// the snapshot's index objects and the drill failed with "tree …: not in
// the index".
func TestDrillSnapshotSavedWhileDrillBegins(t *testing.T) {
	ctx := context.Background()
	w := newWriter(t)
	w.snapshot(t)
	r, saved, _ := w.reader(t, false)
	snaps, bad, badIdx, err := r.SnapshotsAndIndex(ctx)
	if err != nil || len(bad) > 0 || len(badIdx) > 0 {
		t.Fatalf("SnapshotsAndIndex: %v, unreadable %v, %v", err, bad, badIdx)
	}
	picked := drill.Select(snaps, nil, nil)
	if *saved == nil || len(picked) != 1 || picked[0].ID() != (*saved).ID() {
		t.Fatalf("picked %v; want the snapshot saved at the listing, %v", picked, *saved)
	}
	rep, err := drill.Run(ctx, r, picked, drill.Options{Scratch: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Snapshots[0].Files != 1 {
		t.Errorf("drill: ok %v, %+v; want ok, 1 file", rep.OK(), rep.Snapshots)
	}
}
