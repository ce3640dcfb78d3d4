package state

import (
	"slices"
	"testing"
	"time"
)

func TestVectorCompare(t *testing.T) {
	a := Vector{{1, 2}, {3, 1}}
	for _, tc := range []struct {
		v, w Vector
		want Ordering
	}{
		{nil, nil, Equal},
		{a, a, Equal},
		{a, nil, Greater},
		{nil, a, Lesser},
		{a, Vector{{1, 2}}, Greater},
		{a, Vector{{1, 3}}, Concurrent},
		{a, Vector{{1, 3}, {3, 1}}, Lesser},
		{a, Vector{{2, 1}}, Concurrent},
		{Vector{{2, 1}}, a, Concurrent},
		{a, Vector{{1, 2}, {3, 1}, {9, 1}}, Lesser},
	} {
		if got := tc.v.Compare(tc.w); got != tc.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", tc.v, tc.w, got, tc.want)
		}
	}
}

func TestVectorMergeBump(t *testing.T) {
	a := Vector{{1, 2}, {3, 1}}
	b := Vector{{2, 5}, {3, 4}}
	m := a.Merge(b)
	if want := (Vector{{1, 2}, {2, 5}, {3, 4}}); !slices.Equal(m, want) {
		t.Fatalf("merge = %v, want %v", m, want)
	}
	if m.Compare(a) != Greater || m.Compare(b) != Greater || !m.Valid() {
		t.Errorf("merge %v does not dominate %v and %v", m, a, b)
	}
	old := time.Unix(100, 0)
	if got := a.Bump(1, old); got.Get(1) != 100e6 || a.Get(1) != 2 {
		t.Errorf("bump to clock: %v (original %v)", got, a)
	}
	big := Vector{{1, 500e6}}
	if got := big.Bump(1, old); got.Get(1) != 500e6+1 {
		t.Errorf("bump above clock: %v", got)
	}
	if got := a.Bump(2, old); !slices.Equal(got, Vector{{1, 2}, {2, 100e6}, {3, 1}}) {
		t.Errorf("bump of a new node: %v", got)
	}
	for _, bad := range []Vector{{{1, 0}}, {{2, 1}, {1, 1}}, {{1, 1}, {1, 2}}} {
		if bad.Valid() {
			t.Errorf("%v is valid", bad)
		}
	}
}

// A local change bumps the local node's counter; a change of local facts
// alone (inode, ctime, a directory's mtime) keeps the vector; a peer's
// entry keeps its own vector.
func TestPutVectors(t *testing.T) {
	db := openTest(t)
	db.SetLocalNode(7)
	now := time.Unix(1000, 0)
	db.SetClock(func() time.Time { return now })
	f := db.Folder("f")
	put := func(rel string, e Entry) Entry {
		t.Helper()
		if err := f.Update(func(tx *Tx) error { return tx.Put(rel, e) }); err != nil {
			t.Fatal(err)
		}
		got, _, err := f.Get(rel)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	file := Entry{Type: "file", Size: 3, Mode: 0o644, ModTime: 5, Inode: 1}
	if got := put("a", file); !slices.Equal(got.Vector, Vector{{7, 1000e6}}) {
		t.Fatalf("new file: %v", got.Vector)
	}
	file.Inode, file.ChTime = 2, 9
	if got := put("a", file); !slices.Equal(got.Vector, Vector{{7, 1000e6}}) {
		t.Errorf("inode change: %v", got.Vector)
	}
	file.ModTime = 6
	if got := put("a", file); !slices.Equal(got.Vector, Vector{{7, 1000e6 + 1}}) {
		t.Errorf("edit: %v", got.Vector)
	}
	remote := file
	remote.Size, remote.Vector = 4, Vector{{3, 50}, {7, 1000e6 + 1}}
	if got := put("a", remote); !slices.Equal(got.Vector, remote.Vector) || got.Size != 4 {
		t.Errorf("peer's version: %+v", got)
	}
	dir := Entry{Type: "dir", Mode: 0o755, ModTime: 1}
	put("d", dir)
	dir.ModTime = 2
	if got := put("d", dir); !slices.Equal(got.Vector, Vector{{7, 1000e6}}) {
		t.Errorf("directory mtime: %v", got.Vector)
	}
	now = time.Unix(2000, 0)
	if err := f.Update(func(tx *Tx) error { return tx.Delete("a") }); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := f.Get("a"); !got.Deleted || !slices.Equal(got.Vector, Vector{{3, 50}, {7, 2000e6}}) {
		t.Errorf("delete: %+v", got)
	}
	bad := file
	bad.Vector = Vector{{2, 1}, {1, 1}}
	if err := f.Update(func(tx *Tx) error { return tx.Put("b", bad) }); err == nil {
		t.Error("an unsorted vector was stored")
	}
}

func TestForget(t *testing.T) {
	db := openTest(t)
	f := db.Folder("f")
	e := Entry{Type: "file", Size: 1, Mode: 0o644}
	if err := f.Update(func(tx *Tx) error { return tx.Put("a/b", e) }); err != nil {
		t.Fatal(err)
	}
	seq := f.Seq()
	if err := f.Update(func(tx *Tx) error { return tx.Forget("a/b") }); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.Get("a/b"); ok || err != nil {
		t.Errorf("entry still there: %v %v", ok, err)
	}
	var changed []string
	f.Changed(0, func(rel string, e Entry) error { changed = append(changed, rel); return nil })
	if len(changed) != 0 || f.Seq() <= seq {
		t.Errorf("changed %v, seq %d after %d", changed, f.Seq(), seq)
	}
}
