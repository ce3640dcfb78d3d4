package receive

import (
	"testing"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/transfer/wire"
)

// A batch waits for an earlier batch that brings a chunk it needs, and
// never for a later one: in a mesh, an earlier batch can end without
// bringing a chunk (another peer's receiver claimed the file), a later
// batch then notes it, and the earlier batch waiting for the later one,
// which waits for the earlier one to be scheduled, would never end.
func TestBringingWaitsForEarlierBatchesOnly(t *testing.T) {
	x, y := chunkstore.ID{1}, chunkstore.ID{2}
	file := func(ids ...chunkstore.ID) []wire.Entry {
		return []wire.Entry{{Path: "f", Type: "file", Content: ids}}
	}
	act := func(ids ...chunkstore.ID) []*action { return []*action{{e: file(ids...)[0]}} }
	var b bringing
	dj, dk, dl := make(chan struct{}), make(chan struct{}), make(chan struct{})
	j := b.add(file(x), dj)
	k := b.add(file(x, y), dk) // x stays j's
	if got := b.earlier(act(x, y), k, func(chunkstore.ID) bool { return false }); len(got) != 1 || got[0] != dj {
		t.Errorf("k waits for %d batches, want j alone", len(got))
	}
	b.remove(file(x), j) // j ended without bringing x
	l := b.add(file(x), dl)
	none := func(chunkstore.ID) bool { return false }
	if got := b.earlier(act(x, y), k, none); len(got) != 0 {
		t.Errorf("k waits for %d batches, want none (l was started after it)", len(got))
	}
	if got := b.earlier(act(y), l, none); len(got) != 1 || got[0] != dk {
		t.Errorf("l waits for %d batches, want k, which brings y", len(got))
	}
	if got := b.earlier(act(y), l, func(chunkstore.ID) bool { return true }); len(got) != 0 {
		t.Errorf("l waits for %d batches for a chunk a local file holds", len(got))
	}
}

// A batch may be committed before the batches ahead of it only when it
// makes new paths: it deletes, replaces and keeps aside nothing an
// earlier batch may still read or plan around, and makes no directory
// the receiver cannot write into.
func TestIndependent(t *testing.T) {
	fresh := func() *action { return &action{kind: actFile, e: wire.Entry{Path: "new", Type: "file"}} }
	cases := []struct {
		name string
		mod  func(a *action)
		want bool
	}{
		{"new file", func(*action) {}, true},
		{"new path where a deleted one was", func(a *action) { a.have, a.local.Deleted = true, true }, true},
		{"new directory", func(a *action) { a.kind, a.e.Type, a.e.Mode = actDir, "dir", 0o755 }, true},
		{"replaces a file", func(a *action) { a.have = true }, false},
		{"deletes", func(a *action) { a.kind, a.have = actDelete, true }, false},
		{"keeps a conflict copy", func(a *action) { a.conflict = "ABCDEFG" }, false},
		{"read-only directory", func(a *action) { a.kind, a.e.Type, a.e.Mode = actDir, "dir", 0o555 }, false},
	}
	for _, c := range cases {
		a := fresh()
		c.mod(a)
		pb := &Prepared{acts: []*action{fresh(), a}}
		if got := pb.Independent(); got != c.want {
			t.Errorf("%s: Independent = %v, want %v", c.name, got, c.want)
		}
		if got := Merge([]*Prepared{{acts: []*action{fresh()}}, pb}).Independent(); got != c.want {
			t.Errorf("%s, merged: Independent = %v, want %v", c.name, got, c.want)
		}
	}
}
