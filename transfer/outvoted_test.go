package transfer

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
)

// cursorPast reports whether n's puller of its only peer has asked for
// everything up to seq of the peer's index.
func cursorPast(n *testNode, seq uint64) bool {
	n.node.mu.Lock()
	defer n.node.mu.Unlock()
	for _, p := range n.node.pullers {
		p.mu.Lock()
		c := p.stat.cursor
		p.mu.Unlock()
		if c < seq {
			return false
		}
	}
	return len(n.node.pullers) > 0
}

// TestOutvotedVersionTakenWhenOursChanges: a peer's version that lost to
// ours (concurrent, ours later) is asked again when ours changes. Here a
// edits a file and b edits it earlier; a skips b's edit (a's wins) but,
// before b has seen a's edit, a deletes the file. b then meets only the
// delete, which loses to its edit, and keeps its edit; so must a. Before,
// a never looked at b's edit again: a kept the delete, b the edit, for
// ever (TestMirrorRandom: "nodes did not settle").
func TestOutvotedVersionTakenWhenOursChanges(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	clk := onFakeClock(a, b)
	a.write(t, "f.txt", "base")
	toA, _ := proxied(t, a, b)
	a.index(t)
	convergeOn(t, clk, a, b)

	toA.Blackhole() // b hears nothing of a from here on; a still pulls from b
	a.write(t, "f.txt", "a's edit, the later one")
	a.index(t)
	b.write(t, "f.txt", "b's edit")
	t1 := time.Now().Add(-time.Minute)
	os.Chtimes(filepath.Join(b.dir, "f.txt"), t1, t1)
	b.index(t)
	drive(t, clk, "a asked for b's edit", func() bool { return cursorPast(a, b.f.Local.Index().Seq()) })
	if got, _ := os.ReadFile(filepath.Join(a.dir, "f.txt")); string(got) != "a's edit, the later one" {
		t.Fatalf("a took b's edit (%q): the test needs a's edit to win", got)
	}
	// not a lag: nothing waits to be applied; but the stored cursor stays
	// before b's edit, so that a restart asks for it again
	if st := a.node.Status()[0]; st.LagFiles != 0 || st.Behind != 0 {
		t.Errorf("a's status of b: lag %d files, behind %d", st.LagFiles, st.Behind)
	}
	if v, ok, err := a.db.GetMeta(cursorPrefix + b.id.ID.String() + "/www"); err != nil || !ok || binary.BigEndian.Uint64(v) >= b.f.Local.Index().Seq() {
		t.Errorf("a's stored cursor of b %x (%v, %v): past b's edit, seq %d", v, ok, err, b.f.Local.Index().Seq())
	}
	os.Remove(filepath.Join(a.dir, "f.txt"))
	a.index(t)
	toA.Heal()

	convergeOn(t, clk, a, b)
	if got, err := os.ReadFile(filepath.Join(a.dir, "f.txt")); string(got) != "b's edit" {
		t.Errorf("a has %q, %v; want b's edit, which beats a's delete", got, err)
	}
	drive(t, clk, "a and b settled", func() bool { return settled(a, b) })
	if strings.Contains(a.log.String()+b.log.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s\n%s", a.log, b.log)
	}
}
