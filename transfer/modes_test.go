package transfer

import (
	"context"
	"slices"
	"testing"

	"github.com/syncd/syncd/config"
)

// A send-only primary and a receive-only replica: the primary's changes
// arrive; the replica's own are indexed and reported, never sent, and
// reverted on request.
func TestSendOnlyReceiveOnly(t *testing.T) {
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	connect(a, b)
	a.write(t, "f.txt", "primary")
	a.index(t)
	a.start(t)
	b.start(t)
	converge(t, a, b)
	// b's index is new: until it has caught up with a, what it finds on
	// disk is unversioned (see adopt.go), not a local change
	eventually(t, "b caught up", func() bool { return !b.f.adopting.Load() })

	b.write(t, "f.txt", "edited on the replica")
	b.write(t, "new.txt", "made on the replica")
	b.index(t)
	got, err := b.node.LocalChanges("www")
	if err != nil || !slices.Equal(got, []string{"f.txt", "new.txt"}) {
		t.Fatalf("local changes %v, %v", got, err)
	}
	// never sent: the primary asks nothing of its replica, and what the
	// replica serves a peer that asks holds none of its own changes
	a.node.mu.Lock()
	pulls := len(a.node.pullers)
	a.node.mu.Unlock()
	if pulls != 0 {
		t.Errorf("the send-only node pulls from %d peers", pulls)
	}
	batch, err := newClient(a.id, b.id.ID, b.cfg.Node.Listen, limiters{}, limiters{}, nil).index(context.Background(), "www", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range batch.Entries {
		if e.Path == "new.txt" || e.Vector.Get(b.id.ID.Uint64()) > 0 {
			t.Errorf("the replica serves its own change of %s", e.Path)
		}
	}
	if _, err := a.node.Revert("www"); err == nil {
		t.Error("revert of a send-only folder: no error")
	}
	done, err := b.node.Revert("www")
	if err != nil || len(done) != 2 {
		t.Fatalf("revert: %v, %v", done, err)
	}
	converge(t, a, b)
	if got, _ := b.node.LocalChanges("www"); len(got) != 0 {
		t.Errorf("local changes after revert: %v", got)
	}
	// and the primary's next change still arrives
	a.write(t, "f.txt", "primary, again")
	a.index(t)
	converge(t, a, b)
}
