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
