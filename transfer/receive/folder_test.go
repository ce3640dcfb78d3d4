package receive

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/indexer"
	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/localfolder"
	"github.com/syncd/syncd/state"
)

// testFolder is a folder as a node's receivers see it, with its index
// and an indexer run by hand, and no peer: for the tests of the
// receiver's parts. (The tests of whole nodes are in package transfer.)
type testFolder struct {
	dir string
	f   *Folder
	ix  *indexer.Indexer
}

// newTestFolder makes an empty folder, its root open until the test ends.
func newTestFolder(t *testing.T) *testFolder {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "www")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(filepath.Join(base, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetLocalNode(1)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	ch := chunkstore.MirrorChunking()
	lf := localfolder.New(dir, db.Folder("www"), nil)
	return &testFolder{dir: dir,
		f: &Folder{Config: config.Folder{ID: "www", Path: dir}, Chunking: ch, Local: lf,
			Health: health.NewConditions(nil), Root: func() *os.Root { return root }, Clock: clock.System},
		ix: indexer.New(indexer.Folder{ID: "www", Root: dir}, lf, ch.NewSplitter(), nil)}
}

// index runs the indexer over the whole folder under the folder's lock.
func (tf *testFolder) index(t *testing.T) {
	t.Helper()
	tf.f.Local.Lock()
	err := tf.ix.Apply(context.Background(), nil, true)
	tf.f.Local.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}
