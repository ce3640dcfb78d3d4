package checker

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
	"github.com/syncd/syncd/internal/repotest"
)

// snapshot writes a file of seed under a new directory and snapshots it
// into w (which holds a write session), as host web1 at hour seed.
func snapshot(t *testing.T, w *chunkstore.Repository, seed int) *chunkstore.Snapshot {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte(fmt.Sprint("content ", seed)), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := archiver.Snapshot(context.Background(), w, []string{dir}, archiver.Options{Host: "web1", Time: time.Unix(int64(seed)*3600, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return res.Snapshot
}

// A snapshot saved while a check begins (the daemon snapshots while
// `restore verify` runs) is checked with its index: the check reads the
// index after listing the snapshots, and writers save a snapshot's index
// objects before the snapshot. Read before, the index missed those of the
// snapshot saved in between, and the check reported its root tree as in
// no index: a problem that was not there.
func TestCheckSnapshotSavedWhileCheckBegins(t *testing.T) {
	ctx := context.Background()
	s := repotest.Init(t)
	w := s.Open(t, nil) // the writer: another handle, with an index of its own
	sess, err := w.BeginWrite(ctx, chunkstore.WriteOptions{NoLock: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	snapshot(t, w, 1)
	var second *chunkstore.Snapshot
	r := s.Open(t, func(be backend.Backend) backend.Backend {
		return &repotest.ListHook{Backend: be, Prefix: "snapshots/", Before: func() { second = snapshot(t, w, 2) }}
	})
	rep, err := Check(ctx, r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if second == nil {
		t.Fatal("the check listed no snapshots")
	}
	if !rep.OK() || rep.Snapshots != 2 {
		t.Errorf("checked %d snapshots, problems %v; want 2, none", rep.Snapshots, rep.Problems)
	}
}
