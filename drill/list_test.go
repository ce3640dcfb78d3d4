package drill

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/syncd/syncd/archiver"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/repotest"
)

// listSerial is List as a plain walk with LoadTree: what List must return.
func listSerial(ctx context.Context, t *testing.T, repo *chunkstore.Repository, id chunkstore.ID, rel string) []File {
	tree, err := repo.LoadTree(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []File
	for _, n := range tree.Nodes {
		p := path.Join(rel, n.FileName())
		out = append(out, File{Path: p, Type: n.Type, Size: int64(n.Size), Target: n.LinkTarget(), Pack: onePack(repo, n.Content)})
		if n.Type == chunkstore.NodeDir {
			out = append(out, listSerial(ctx, t, repo, *n.Subtree, p)...)
		}
	}
	return out
}

func TestList(t *testing.T) {
	ctx := context.Background()
	repo := repotest.New(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 9))
	// directories of every depth up to 4, wide and narrow, empty ones,
	// names that JSON escapes or that are not UTF-8, symlinks, and files
	// of one chunk and of several
	var mk func(d string, depth int)
	mk = func(d string, depth int) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 2 + rng.IntN(10) {
			name := fmt.Sprintf("f%d%s", i, []string{"", ".php", "&x", "é", "\xff"}[rng.IntN(5)])
			size := rng.IntN(3000)
			if rng.IntN(20) == 0 {
				size = 3<<20 + rng.IntN(1<<20)
			}
			data := make([]byte, size)
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			if err := os.WriteFile(filepath.Join(d, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(3) == 0 {
			if err := os.Symlink("../target\xfe", filepath.Join(d, "link")); err != nil {
				t.Fatal(err)
			}
		}
		if depth == 4 {
			return
		}
		for i := range 1 + rng.IntN(2) {
			mk(filepath.Join(d, fmt.Sprintf("d%d", i)), depth+1)
		}
	}
	mk(dir, 0)
	os.MkdirAll(filepath.Join(dir, "empty"), 0o755)
	res, err := archiver.Snapshot(ctx, repo, []string{dir}, archiver.Options{})
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("snapshot: %v %v", err, res.Errors)
	}
	got, err := List(ctx, repo, res.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	want := listSerial(ctx, t, repo, res.Snapshot.Tree, "")
	if len(want) < 100 {
		t.Fatalf("the test tree has %d entries; want a larger one", len(want))
	}
	if !reflect.DeepEqual(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("entry %d: got %+v, want %+v (%d entries, want %d)", i, got[i], want[i], len(got), len(want))
			}
		}
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	packed := 0
	for _, f := range got {
		if f.Pack != (chunkstore.ID{}) {
			packed++
		}
	}
	if packed == 0 {
		t.Errorf("no file listed with its pack")
	}
}
