package transfer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/transfer/wire"
)

// A directory renamed on the receiver after a batch's files were written
// into it, before they were moved into place, keeps none of the batch's
// temporary files once the batch ends: they are removed where the
// directory went, while the service runs. The files then arrive at their
// paths (the failed entries are retried, as the test moves the clock).
func TestRenamedDirKeepsNoTemps(t *testing.T) {
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	clk := onFakeClock(a, b)
	connect(a, b)
	const files = 20
	for i := range files {
		a.write(t, fmt.Sprintf("d/f%02d.txt", i), strings.Repeat(fmt.Sprint(i), 1000))
	}
	a.index(t)

	var once sync.Once
	renamed := make(chan struct{})
	b.tune = func(n *Node) {
		r := n.pullers[0].r
		r.Hooks.AfterBuild = func(es []wire.Entry) {
			for _, e := range es {
				if strings.HasPrefix(e.Path, "d/") {
					once.Do(func() {
						if err := os.Rename(filepath.Join(b.dir, "d"), filepath.Join(b.dir, "d-moved")); err != nil {
							t.Errorf("rename d: %v", err)
						}
						close(renamed)
					})
					return
				}
			}
		}
	}
	a.start(t)
	b.start(t)
	<-renamed
	// the batch ends when its failures are logged (its entries wait for a
	// retry); its temporary files must be gone by then
	eventually(t, "the batch's failures logged", func() bool {
		return strings.Count(b.log.String(), `msg="could not apply peer's version; will retry"`) > 0
	})
	if temps := tempFiles(t, b.dir); len(temps) > 0 {
		t.Errorf("the batch ended with %d temporary files left: %v", len(temps), temps[:min(len(temps), 3)])
	}
	// and the retries bring the files where they belong
	drive(t, clk, "d/ on b", func() bool {
		for i := range files {
			got, err := os.ReadFile(filepath.Join(b.dir, fmt.Sprintf("d/f%02d.txt", i)))
			if err != nil || string(got) != strings.Repeat(fmt.Sprint(i), 1000) {
				return false
			}
		}
		return true
	})
	if temps := tempFiles(t, b.dir); len(temps) > 0 {
		t.Errorf("temporary files left once everything arrived: %v", temps)
	}
}
