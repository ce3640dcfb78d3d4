package receive

import (
	"testing"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/transfer/wire"
)

// The chunks wanted are those of the files claimed by batches not built
// yet: a file claimed by a built batch, or planned but claimed by another
// batch, wants nothing.
func TestClaimsWanted(t *testing.T) {
	file := func(p string, id byte) *action {
		return &action{kind: actFile, e: wire.Entry{Path: p, Type: "file", Content: []chunkstore.ID{{id}}}}
	}
	building := &Prepared{acts: []*action{file("new", 1), file("other", 2)}}
	built := &Prepared{acts: []*action{file("done", 3)}}
	built.built.Store(true)
	var c claims
	c.take("new", building)
	c.take("done", built)
	c.take("other", built) // claimed by the built batch: building puts it aside
	got := c.wanted()
	if !got[chunkstore.ID{1}] || got[chunkstore.ID{2}] || got[chunkstore.ID{3}] || len(got) != 1 {
		t.Errorf("wanted %v, want the chunk of \"new\" alone", got)
	}
	building.built.Store(true)
	if got := c.wanted(); len(got) != 0 {
		t.Errorf("wanted %v once every batch is built, want none", got)
	}
}
