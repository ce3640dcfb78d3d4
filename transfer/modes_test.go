package transfer

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

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

	b.write(t, "f.txt", "edited on the replica")
	b.write(t, "new.txt", "made on the replica")
	b.index(t)
	got, err := b.node.LocalChanges("www")
	if err != nil || !slices.Equal(got, []string{"f.txt", "new.txt"}) {
		t.Fatalf("local changes %v, %v", got, err)
	}
	time.Sleep(500 * time.Millisecond) // time enough for a wrong send
	if c, _ := os.ReadFile(filepath.Join(a.dir, "f.txt")); string(c) != "primary" {
		t.Errorf("the replica's change reached the primary: %q", c)
	}
	if _, err := os.Stat(filepath.Join(a.dir, "new.txt")); err == nil {
		t.Error("the replica's new file reached the primary")
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
