package transfer

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/syncd/syncd/config"
)

// A local chmod of a file the moment the receiver renamed it into place
// (before the receiver looked at it) is a local change: it is not taken
// for the receiver's own write, the indexer indexes it, and it travels
// back to the peer.
func TestChmodRightAfterPlaceIsIndexed(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	connect(a, b)
	a.write(t, "f.txt", "content")
	os.Chmod(filepath.Join(a.dir, "f.txt"), 0o755)
	a.index(t)

	var once sync.Once
	placed := make(chan struct{})
	b.tune = func(n *Node) {
		n.pullers[0].r.Hooks.AfterPlace = func(rel string) {
			if rel == "f.txt" {
				once.Do(func() {
					if err := os.Chmod(filepath.Join(b.dir, "f.txt"), 0o600); err != nil {
						t.Errorf("chmod: %v", err)
					}
					close(placed)
				})
			}
		}
	}
	a.start(t)
	b.start(t)
	<-placed
	eventually(t, "f.txt recorded on b", func() bool {
		e, ok, err := b.f.Local.Index().Get("f.txt")
		return err == nil && ok && !e.Deleted
	})
	if got := b.f.Local.NotOwn([]string{"f.txt"}); len(got) != 1 {
		t.Errorf("the watcher's report of the chmod was taken for the receiver's own write")
	}
	b.index(t)
	e, _, _ := b.f.Local.Index().Get("f.txt")
	if e.Mode&0o777 != 0o600 {
		t.Fatalf("b's index has mode %o after the local chmod, want 600", e.Mode&0o777)
	}
	eventually(t, "the chmod back on a", func() bool {
		fi, err := os.Stat(filepath.Join(a.dir, "f.txt"))
		return err == nil && fi.Mode().Perm() == 0o600
	})
}
