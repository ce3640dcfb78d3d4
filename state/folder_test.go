package state

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/syncd/syncd/chunkstore"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// put stores each path as a file entry (a dir if it ends in '/') in one
// transaction.
func put(t *testing.T, f *Folder, paths ...string) {
	t.Helper()
	err := f.Update(func(tx *Tx) error {
		for _, p := range paths {
			e := Entry{Type: "file", Size: int64(len(p))}
			if d, ok := strings.CutSuffix(p, "/"); ok {
				p, e = d, Entry{Type: "dir", Mode: 0o755}
			}
			if err := tx.Put(p, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type change struct {
	Rel     string
	Version uint64
	Deleted bool
}

func changed(t *testing.T, f *Folder, since uint64) []change {
	t.Helper()
	var got []change
	err := f.Changed(since, func(rel string, e Entry) error {
		got = append(got, change{rel, e.Version, e.Deleted})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func walk(t *testing.T, f *Folder, prefix string, skip ...string) []string {
	t.Helper()
	var got []string
	err := f.Walk(prefix, func(rel string, e Entry) error {
		got = append(got, rel)
		if slices.Contains(skip, rel) {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFolderRoundTrip(t *testing.T) {
	f := openTest(t).Folder("f1")
	want := fullEntry()
	const name = "new\nline/\xff\xfe invalid"
	if err := f.Update(func(tx *Tx) error { return tx.Put(name, want) }); err != nil {
		t.Fatal(err)
	}
	got, ok, err := f.Get(name)
	if err != nil || !ok {
		t.Fatalf("Get: %v, %v", ok, err)
	}
	want.Version = 1
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, ok, err := f.Get("new\nline"); ok || err != nil {
		t.Errorf("Get of a path without an entry: %v, %v", ok, err)
	}
	if got := walk(t, f, ""); !slices.Equal(got, []string{name}) {
		t.Errorf("Walk = %q", got)
	}
	if got := changed(t, f, 0); len(got) != 1 || got[0].Rel != name {
		t.Errorf("Changed = %v", got)
	}
	// the folder root has an entry like any other
	for _, mode := range []uint32{0o755, 0o700} {
		if err := f.Update(func(tx *Tx) error { return tx.Put("", Entry{Type: "dir", Mode: mode}) }); err != nil {
			t.Fatal(err)
		}
	}
	if e, ok, err := f.Get(""); !ok || err != nil || e.Mode != 0o700 || e.Version != 3 || f.Seq() != 3 {
		t.Errorf("root = %+v, %v, %v; Seq %d", e, ok, err, f.Seq())
	}
}

func TestVersionsAndChanged(t *testing.T) {
	f := openTest(t).Folder("f")
	if f.Seq() != 0 || len(changed(t, f, 0)) != 0 {
		t.Fatal("new folder not empty")
	}
	put(t, f, "a", "b", "c")
	put(t, f, "a/") // a turns into a directory
	if s := f.Seq(); s != 4 {
		t.Errorf("Seq = %d, want 4", s)
	}
	want := []change{{"b", 2, false}, {"c", 3, false}, {"a", 4, false}}
	if got := changed(t, f, 0); !slices.Equal(got, want) {
		t.Errorf("Changed(0) = %v, want %v", got, want)
	}
	if got := changed(t, f, 3); !slices.Equal(got, want[2:]) {
		t.Errorf("Changed(3) = %v, want %v", got, want[2:])
	}
	put(t, f, "b") // unchanged: keeps its version
	if s := f.Seq(); s != 4 {
		t.Errorf("Seq after an unchanged Put = %d, want 4", s)
	}

	err := f.Update(func(tx *Tx) error {
		for _, p := range []string{"b", "b", "nothing"} { // repeats and unknown paths are no-ops
			if err := tx.Delete(p); err != nil {
				return err
			}
		}
		e, ok, err := tx.Get("b")
		if err != nil || !ok || !e.Deleted || e.Type != "file" || e.Version != 5 {
			return fmt.Errorf("tombstone in tx: %+v %v %v", e, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if e, ok, _ := f.Get("b"); !ok || !e.Deleted || e.Version != 5 || e.Size != 0 {
		t.Errorf("tombstone = %+v, %v", e, ok)
	}
	if got, want := changed(t, f, 4), []change{{"b", 5, true}}; !slices.Equal(got, want) {
		t.Errorf("Changed(4) = %v, want %v", got, want)
	}
	put(t, f, "b") // back from the dead
	if got, want := changed(t, f, 4), []change{{"b", 6, false}}; !slices.Equal(got, want) {
		t.Errorf("Changed(4) = %v, want %v", got, want)
	}

	// a failed Update leaves no trace
	boom := errors.New("boom")
	err = f.Update(func(tx *Tx) error {
		if err := tx.Put("x", Entry{Type: "file"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Update = %v, want %v", err, boom)
	}
	if _, ok, _ := f.Get("x"); ok || f.Seq() != 6 {
		t.Errorf("rolled-back Put visible: %v, Seq %d", ok, f.Seq())
	}
	// bad input
	var saved *Tx
	err = f.Update(func(tx *Tx) error {
		saved = tx
		for _, err := range []error{
			tx.Put("a/../b", Entry{Type: "file"}),
			tx.Put("ok", Entry{Type: "pipe"}),
			tx.Delete("/abs"),
		} {
			if err == nil {
				return errors.New("bad input accepted")
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if err := saved.Put("late", Entry{Type: "file"}); !errors.Is(err, errTxClosed) {
		t.Errorf("Put after Update = %v, want %v", err, errTxClosed)
	}
	// folders are separate
	if g := openTest(t).Folder("other"); g.Seq() != 0 {
		t.Error("other folder not empty")
	}
}

func TestChangedBatches(t *testing.T) {
	defer func(n int) { walkBatch = n }(walkBatch)
	walkBatch = 3
	f := openTest(t).Folder("f")
	var paths []string
	for i := range 10 {
		paths = append(paths, fmt.Sprint(i))
	}
	put(t, f, paths...)
	put(t, f, "3/") // moves 3 to version 11
	got := changed(t, f, 2)
	var rels []string
	for _, c := range got {
		rels = append(rels, c.Rel)
	}
	if want := []string{"2", "4", "5", "6", "7", "8", "9", "3"}; !slices.Equal(rels, want) {
		t.Errorf("Changed(2) = %q, want %q", rels, want)
	}
}

// tree lists paths as a depth-first walk would, children in name order.
var tree = []string{"", "a", "a/\n", "a/b", "a/b/c", "a/b/d", "a/\xff", "a b", "a-b", "ab", "ab/x", "b"}

func TestWalkOrder(t *testing.T) {
	for _, batch := range []int{1, 2, 5, 1024} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			defer func(n int) { walkBatch = n }(walkBatch)
			walkBatch = batch
			f := openTest(t).Folder("f")
			shuffled := slices.Clone(tree)
			slices.Reverse(shuffled)
			put(t, f, shuffled...)
			if got := walk(t, f, ""); !slices.Equal(got, tree) {
				t.Errorf("Walk(\"\") =\n %q\nwant\n %q", got, tree)
			}
			for prefix, want := range map[string][]string{
				"a/":  {"a/\n", "a/b", "a/b/c", "a/b/d", "a/\xff"},
				"a/b": {"a/b", "a/b/c", "a/b/d"},
				"ab":  {"ab", "ab/x"},
				"c":   nil,
			} {
				if got := walk(t, f, prefix); !slices.Equal(got, want) {
					t.Errorf("Walk(%q) = %q, want %q", prefix, got, want)
				}
			}
			want := []string{"", "a", "a b", "a-b", "ab", "b"} // the root's children: skip every directory
			if got := walk(t, f, "", tree[1:]...); !slices.Equal(got, want) {
				t.Errorf("Walk skipping below %q = %q, want %q", tree[1:], got, want)
			}
			if got := walk(t, f, "", ""); !slices.Equal(got, []string{""}) {
				t.Errorf("Walk skipping below the root = %q", got)
			}
			want = []string{"", "a", "a/\n", "a/b", "a/\xff", "a b", "a-b", "ab", "ab/x", "b"}
			if got := walk(t, f, "", "a/b"); !slices.Equal(got, want) {
				t.Errorf("Walk skipping a/b = %q, want %q", got, want)
			}
			n := 0
			err := f.Walk("", func(string, Entry) error {
				if n++; n == 3 {
					return fs.SkipAll
				}
				return nil
			})
			if err != nil || n != 3 {
				t.Errorf("SkipAll: %d calls, %v", n, err)
			}
			boom := errors.New("boom")
			if err := f.Walk("", func(string, Entry) error { return boom }); err != boom {
				t.Errorf("Walk = %v, want %v", err, boom)
			}
		})
	}
}

// TestWalkUpdates checks that fn may call Update.
func TestWalkUpdates(t *testing.T) {
	f := openTest(t).Folder("f")
	put(t, f, tree...)
	err := f.Walk("", func(rel string, e Entry) error {
		return f.Update(func(tx *Tx) error { return tx.Delete(rel) })
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := changed(t, f, uint64(len(tree))); len(got) != len(tree) {
		t.Errorf("%d tombstones, want %d", len(got), len(tree))
	}
}

func TestTreeCache(t *testing.T) {
	f := openTest(t).Folder("f")
	put(t, f, "a/", "a/b/", "a/b/c", "x/", "x/y")
	dirs := []string{"", "a", "a/b", "x"}
	for _, d := range dirs {
		if _, ok := f.TreeCache(d); ok {
			t.Errorf("TreeCache(%q) valid before SetTreeCache", d)
		}
	}
	seq := f.Seq()
	for i, d := range dirs {
		if err := f.SetTreeCache(d, chunkstore.ID{byte(i + 1)}, seq); err != nil {
			t.Fatal(err)
		}
	}
	valid := func() (ok []string) {
		for i, d := range dirs {
			if id, hit := f.TreeCache(d); hit {
				if id != (chunkstore.ID{byte(i + 1)}) {
					t.Errorf("TreeCache(%q) = %s", d, id.Short())
				}
				ok = append(ok, d)
			}
		}
		return ok
	}
	if got := valid(); !slices.Equal(got, dirs) {
		t.Errorf("valid = %q, want all", got)
	}
	put(t, f, "a/b/c") // unchanged: invalidates nothing
	if got := valid(); !slices.Equal(got, dirs) {
		t.Errorf("after an unchanged Put valid = %q, want all", got)
	}
	old := f.Seq()
	err := f.Update(func(tx *Tx) error { return tx.Put("a/b/c", Entry{Type: "file", Size: 1}) })
	if err != nil {
		t.Fatal(err)
	}
	if got := valid(); !slices.Equal(got, []string{"x"}) {
		t.Errorf("after a Put in a/b valid = %q, want [x]", got)
	}
	// a tree built as of before the change does not make a/b clean
	if err := f.SetTreeCache("a/b", chunkstore.ID{3}, old); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.TreeCache("a/b"); ok {
		t.Error("a/b clean after a SetTreeCache older than its change")
	}
	if err := f.SetTreeCache("a/b", chunkstore.ID{3}, f.Seq()); err != nil {
		t.Fatal(err)
	}
	if got := valid(); !slices.Equal(got, []string{"a/b", "x"}) {
		t.Errorf("valid = %q, want [a/b x]", got)
	}
	// a directory that is deleted drops its own tree too
	err = f.Update(func(tx *Tx) error { return tx.Delete("x") })
	if err != nil {
		t.Fatal(err)
	}
	if got := valid(); !slices.Equal(got, []string{"a/b"}) {
		t.Errorf("after deleting x valid = %q, want [a/b]", got)
	}
}

func TestWalkTreeStaysInsideTheSubtree(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := db.Folder("x")
	paths := []string{"a", "a/b", "a/b/c", "a-b", "a-b/c", "ab", "ab/c", "b"}
	err = f.Update(func(tx *Tx) error {
		for _, p := range paths {
			typ := "dir"
			if strings.HasSuffix(p, "c") {
				typ = "file"
			}
			if err := tx.Put(p, Entry{Type: typ}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := f.WalkTree("a", func(rel string, e Entry) error { got = append(got, rel); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "a/b", "a/b/c"}; !slices.Equal(got, want) {
		t.Errorf("WalkTree(a) = %v, want %v", got, want)
	}
}

// GetEach reads, in one transaction, what Get reads path by path; a path
// Get would refuse makes it fail without calling fn.
func TestGetEach(t *testing.T) {
	f := openTest(t).Folder("f1")
	err := f.Update(func(tx *Tx) error {
		if err := tx.Put("a", fullEntry()); err != nil {
			return err
		}
		if err := tx.Put("gone", Entry{Type: "file"}); err != nil {
			return err
		}
		return tx.Delete("gone")
	})
	if err != nil {
		t.Fatal(err)
	}
	rels := []string{"gone", "missing", "a"}
	var got []string
	err = f.GetEach(rels, func(i int, e Entry, ok bool) error {
		want, wok, werr := f.Get(rels[i])
		if werr != nil || ok != wok || !reflect.DeepEqual(e, want) {
			t.Errorf("%s: GetEach %+v %v, Get %+v %v %v", rels[i], e, ok, want, wok, werr)
		}
		got = append(got, fmt.Sprintf("%s %v %v", rels[i], ok, e.Deleted))
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"gone true true", "missing false false", fmt.Sprintf("a true %v", fullEntry().Deleted)}) {
		t.Errorf("GetEach: %q, %v", got, err)
	}
	called := false
	if err := f.GetEach([]string{"a", "../up"}, func(int, Entry, bool) error { called = true; return nil }); err == nil || called {
		t.Errorf("a path outside the folder: err %v, fn called %v", err, called)
	}
}

// Dirs lists what Walk lists of the live directories, and nothing else.
func TestDirs(t *testing.T) {
	f := openTest(t).Folder("f1")
	err := f.Update(func(tx *Tx) error {
		for _, p := range []string{"a", "a/b", "gone", "z"} {
			if err := tx.Put(p, Entry{Type: "dir", Mode: 0o755, Inode: uint64(len(p))}); err != nil {
				return err
			}
		}
		if err := tx.Put("a/f", Entry{Type: "file"}); err != nil {
			return err
		}
		if err := tx.Put("a/l", Entry{Type: "symlink", Target: "f"}); err != nil {
			return err
		}
		return tx.Delete("gone")
	})
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	f.Walk("", func(rel string, e Entry) error {
		if e.Type == "dir" && !e.Deleted {
			want = append(want, fmt.Sprintf("%s %d", rel, e.Inode))
		}
		return nil
	})
	if err := f.Dirs(func(rel string, e Entry) error {
		got = append(got, fmt.Sprintf("%s %d", rel, e.Inode))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || len(got) != 3 {
		t.Errorf("Dirs = %q, want %q (a, a/b, z)", got, want)
	}
}
