package archiver

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/syncd/syncd/indexer"
	"github.com/syncd/syncd/localfolder"
	"github.com/syncd/syncd/restorer"
	"github.com/syncd/syncd/state"
)

// TestSnapshotIndexed snapshots a folder from its index: everything the
// first time, only the changed file later, nothing when nothing changed,
// and a file changed after indexing as it is on disk.
func TestSnapshotIndexed(t *testing.T) {
	repo := newRepo(t)
	ctx := context.Background()
	db, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	root := filepath.Join(t.TempDir(), "www")
	for _, f := range []string{"index.php", "wp-content/a.css", "wp-content/uploads/b.jpg", "c/d/e.txt"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(root, f), []byte("content of "+f), 0o644)
	}
	os.Symlink("index.php", filepath.Join(root, "link"))
	st := db.Folder("www")
	ix := indexer.New(indexer.Folder{ID: "www", Root: root}, localfolder.New(root, st, nil), repo.NewSplitter(), nil)
	if err := ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	folder := IndexedFolder{Path: root, State: st}
	snap := func(want int64) *IndexedResult {
		t.Helper()
		prog := new(Progress)
		res, err := SnapshotIndexed(ctx, repo, []IndexedFolder{folder}, Options{Host: "h", Progress: prog})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Snapshot.Stats.FilesRead; got != want {
			t.Errorf("snapshot read %d files, want %d", got, want)
		}
		if res.Snapshot.Stats.Files != 4 {
			t.Errorf("snapshot counts %d files, want 4", res.Snapshot.Stats.Files)
		}
		folder.Since = res.Seqs[0]
		target := t.TempDir()
		rres, err := restorer.Restore(ctx, repo, res.Snapshot, restorer.Options{Target: target, Overwrite: true})
		if err != nil || len(rres.Errors) > 0 {
			t.Fatalf("restore: %v %v", err, rres)
		}
		for _, f := range []string{"index.php", "wp-content/a.css", "wp-content/uploads/b.jpg", "c/d/e.txt"} {
			want, _ := os.ReadFile(filepath.Join(root, f))
			got, err := os.ReadFile(filepath.Join(target, root, f))
			if err != nil || string(got) != string(want) {
				t.Errorf("%s restored as %q (%v), want %q", f, got, err, want)
			}
		}
		if l, _ := os.Readlink(filepath.Join(target, root, "link")); l != "index.php" {
			t.Errorf("link restored as %q", l)
		}
		return res
	}
	snap(4)
	snap(0)
	os.WriteFile(filepath.Join(root, "c/d/e.txt"), []byte("changed"), 0o644)
	if err := ix.Apply(ctx, []string{"c/d/e.txt"}, false); err != nil {
		t.Fatal(err)
	}
	snap(1)
	// changed again after indexing: split afresh at snapshot time
	os.WriteFile(filepath.Join(root, "index.php"), []byte("edited twice"), 0o644)
	if err := ix.Apply(ctx, []string{"index.php"}, false); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "index.php"), []byte("edited thrice, after indexing"), 0o644)
	snap(1)
}
