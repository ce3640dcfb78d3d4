package archiver

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/repotest"
	"github.com/syncd/syncd/restorer"
)

func newRepo(t *testing.T) *chunkstore.Repository { return repotest.New(t) }

// TestFileChangingWhileRead rewrites a file over and over, each version
// all one byte value, while snapshots run. Each snapshot must either hold
// one whole version of the file or report it: never a silent mix.
func TestFileChangingWhileRead(t *testing.T) {
	repo := newRepo(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "busy")
	const size = 6 << 20
	if err := os.WriteFile(path, bytes.Repeat([]byte{0}, size), 0o644); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		for v := byte(1); !stop.Load(); v++ {
			block := bytes.Repeat([]byte{v}, 64<<10)
			for off := 0; off < size; off += len(block) {
				f.WriteAt(block, int64(off))
			}
		}
	})
	reported, whole := 0, 0
	for i := range 5 {
		res, err := Snapshot(context.Background(), repo, []string{dir}, Options{Host: "h"})
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(t.TempDir(), "r")
		rres, err := restorer.Restore(context.Background(), repo, res.Snapshot, restorer.Options{Target: target})
		if err != nil || len(rres.Errors) > 0 {
			t.Fatalf("restore %d: %v %v", i, err, rres)
		}
		if len(res.Errors) > 0 {
			if res.Errors[0].Path != path || !res.Snapshot.Partial {
				t.Errorf("snapshot %d: reported %v, partial %v", i, res.Errors, res.Snapshot.Partial)
			}
			reported++
			if _, err := os.Stat(filepath.Join(target, path)); err == nil {
				t.Errorf("snapshot %d: a file reported as changing without a previous version was stored", i)
			}
			continue
		}
		got, err := os.ReadFile(filepath.Join(target, path))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != size || !bytes.Equal(got, bytes.Repeat(got[:1], size)) {
			t.Fatalf("snapshot %d stored a mix of versions of a changing file", i)
		}
		whole++
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d snapshots held one whole version, %d reported the file as changing", whole, reported)
}

// TestUnchangedFilesAreNotRead checks the parent comparison: a second
// snapshot reads nothing, a touched file is read again.
func TestUnchangedFilesAreNotRead(t *testing.T) {
	repo := newRepo(t)
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		os.WriteFile(filepath.Join(dir, n), []byte("content "+n), 0o644)
	}
	ctx := context.Background()
	first, err := Snapshot(ctx, repo, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Snapshot(ctx, repo, []string{dir}, Options{Parent: first.Snapshot})
	if err != nil {
		t.Fatal(err)
	}
	// The directories above dir (/tmp…) change as other tests run; dir's
	// own tree must not.
	if second.Snapshot.Stats.FilesRead != 0 || subtree(t, repo, second, dir) != subtree(t, repo, first, dir) {
		t.Errorf("unchanged: read %d files, tree of %s changed; want 0 and the same tree",
			second.Snapshot.Stats.FilesRead, dir)
	}
	os.WriteFile(filepath.Join(dir, "b"), []byte("content B"), 0o644) // same size
	third, err := Snapshot(ctx, repo, []string{dir}, Options{Parent: second.Snapshot})
	if err != nil {
		t.Fatal(err)
	}
	if third.Snapshot.Stats.FilesRead != 1 || subtree(t, repo, third, dir) == subtree(t, repo, second, dir) {
		t.Errorf("one file changed: read %d files; want 1 and a new tree", third.Snapshot.Stats.FilesRead)
	}
}

// subtree returns the tree ID of the directory at path in a snapshot.
func subtree(t *testing.T, repo *chunkstore.Repository, res *Result, path string) chunkstore.ID {
	t.Helper()
	id := res.Snapshot.Tree
	for _, name := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		tree, err := repo.LoadTree(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		n, ok := tree.Find(name)
		if !ok || n.Subtree == nil {
			t.Fatalf("%s: no directory %q in the snapshot", path, name)
		}
		id = *n.Subtree
	}
	return id
}

func TestPathErrors(t *testing.T) {
	repo := newRepo(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		paths []string
	}{
		{"none", nil},
		{"missing", []string{filepath.Join(dir, "nope")}},
		{"twice", []string{dir, dir}},
		{"nested", []string{dir, filepath.Join(dir, "x")}},
	} {
		os.MkdirAll(filepath.Join(dir, "x"), 0o755)
		if _, err := Snapshot(context.Background(), repo, c.paths, Options{}); err == nil {
			t.Errorf("%s: snapshot of %v succeeded", c.name, c.paths)
		}
	}
	snaps, _, _ := repo.Snapshots(context.Background())
	if len(snaps) != 0 {
		t.Errorf("failed snapshots wrote %d snapshot objects", len(snaps))
	}
}
