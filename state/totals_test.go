package state

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// walkTotals counts by a walk what Totals and LocalChanged keep.
func walkTotals(t *testing.T, f *Folder, node uint64) (want totals) {
	t.Helper()
	err := f.Walk("", func(rel string, e Entry) error {
		if e.Type == "file" && !e.Deleted {
			want.files++
			want.bytes += e.Size
		}
		if rel != "" && e.Vector.Get(node) > 0 {
			want.local++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func checkTotals(t *testing.T, f *Folder, node uint64, when string) {
	t.Helper()
	want := walkTotals(t, f, node)
	files, bytes := f.Totals()
	local, ok := f.LocalChanged()
	if files != want.files || bytes != want.bytes || local != want.local || !ok {
		t.Fatalf("%s: Totals = %d files, %d bytes, LocalChanged = %d, %v; a walk counts %d, %d, %d",
			when, files, bytes, local, ok, want.files, want.bytes, want.local)
	}
}

// TestTotalsRandom applies random puts (new paths, overwrites, type
// changes, peers' versions with and without a local counter), deletes and
// forgets, in transactions of a few changes, some of which fail: after
// each, the totals equal a walk's count, and after a reopen too.
func TestTotalsRandom(t *testing.T) {
	t.Parallel()
	const node = 7
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetLocalNode(node)
	f := db.Folder("f")
	rnd := rand.New(rand.NewPCG(3, 4))
	paths := []string{""}
	for i := range 40 {
		paths = append(paths, fmt.Sprintf("d%d/p%d", i%3, i), fmt.Sprintf("d%d", i%3))
	}
	types := []string{"file", "file", "file", "dir", "symlink"}
	errRollback := errors.New("roll back")
	for round := range 300 {
		fail := rnd.IntN(8) == 0
		err := f.Update(func(tx *Tx) error {
			for range 1 + rnd.IntN(5) {
				rel := paths[rnd.IntN(len(paths))]
				var err error
				switch op := rnd.IntN(10); {
				case op < 6:
					e := Entry{Type: types[rnd.IntN(len(types))], Size: rnd.Int64N(1000), ModTime: rnd.Int64N(3)}
					if e.Type != "file" {
						e.Size = 0
					}
					switch rnd.IntN(3) {
					case 0: // a peer's version this node never changed
						e.Vector = Vector{{3, rnd.Uint64N(100) + 1}}
					case 1: // a peer's version over one of ours
						e.Vector = Vector{{3, rnd.Uint64N(100) + 1}, {node, 5}}
					}
					if rnd.IntN(10) == 0 && e.Vector != nil {
						e.Deleted = true
					}
					err = tx.Put(rel, e)
				case op < 9:
					err = tx.Delete(rel)
				default:
					err = tx.Forget(rel)
				}
				if err != nil {
					return err
				}
			}
			if fail {
				return errRollback
			}
			return nil
		})
		if err != nil && !(fail && errors.Is(err, errRollback)) {
			t.Fatal(err)
		}
		checkTotals(t, f, node, fmt.Sprintf("round %d", round))
	}
	files, bytes := f.Totals()
	if files == 0 || bytes == 0 {
		t.Fatalf("the random changes left %d files of %d bytes: not a test", files, bytes)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetLocalNode(node)
	f = db.Folder("f")
	if f2, b2 := f.Totals(); f2 != files || b2 != bytes {
		t.Errorf("after reopen: %d files, %d bytes; before: %d, %d", f2, b2, files, bytes)
	}
	checkTotals(t, f, node, "reopen")
}

// TestTotalsMigration opens a database written before the totals were
// kept: Open counts them, once.
func TestTotalsMigration(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	fill(t, path, 500) // sizes 0..499
	dropTotals(t, path)
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored bool
	db.bolt.View(func(tx *bolt.Tx) error {
		_, stored = readTotals(tx.Bucket(bucketFolders).Bucket([]byte("f")))
		return nil
	})
	if !stored {
		t.Error("Open did not store the totals")
	}
	if files, bytes := db.Folder("f").Totals(); files != 500 || bytes != 499*500/2 {
		t.Errorf("Totals = %d files, %d bytes, want 500, %d", files, bytes, 499*500/2)
	}
	checkTotals(t, db.Folder("f"), 0, "migrated")
}

// TestTotalsMigrationBadEntry: an entry that does not decode makes Open
// of an old database fail as damaged, naming the file.
func TestTotalsMigrationBadEntry(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	fill(t, path, 10)
	dropTotals(t, path)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFolders).Bucket([]byte("f")).Bucket(bucketEntries).Put(pathKey("d1/file00001"), []byte{1, 0, 9})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path)
	wantDamaged(t, err, path)
}

// dropTotals removes the totals records of the closed database at path.
func dropTotals(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketFolders)
		return all.ForEachBucket(func(id []byte) error { return all.Bucket(id).Delete(keyTotals) })
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTotalsNodeChange: the local count follows the node set by
// SetLocalNode; until a transaction counts it again, it is not known.
func TestTotalsNodeChange(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	f := db.Folder("f")
	ours := Entry{Type: "file", Size: 1, Vector: Vector{{5, 1}}}
	theirs := Entry{Type: "file", Size: 2, Vector: Vector{{6, 1}}}
	err := f.Update(func(tx *Tx) error {
		return errors.Join(tx.Put("a", ours), tx.Put("b", theirs), tx.Put("c", theirs))
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := f.LocalChanged(); n != 0 || !ok {
		t.Errorf("node 0: LocalChanged = %d, %v, want 0, true", n, ok)
	}
	db.SetLocalNode(6)
	if _, ok := f.LocalChanged(); ok {
		t.Error("LocalChanged is known for a node it was not counted for")
	}
	if err := f.Update(func(tx *Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n, ok := f.LocalChanged(); n != 2 || !ok {
		t.Errorf("node 6: LocalChanged = %d, %v, want 2, true", n, ok)
	}
	checkTotals(t, f, 6, "node 6")
	if n, ok := db.Folder("new").LocalChanged(); n != 0 || !ok {
		t.Errorf("a folder without entries: LocalChanged = %d, %v", n, ok)
	}
}
