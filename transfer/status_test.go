package transfer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/syncd/syncd/config"
)

// A failed entry that its retries settle (here a deleted directory kept
// because the replica put a file of its own in it) stops counting as lag
// at once: the status must not wait for the next index poll, which on an
// idle primary comes only after pollWait.
func TestStatusSettlesAfterRetries(t *testing.T) {
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	clk := onFakeClock(a, b)
	connect(a, b)
	a.write(t, "d/x.txt", "primary")
	a.write(t, "keep.txt", "primary")
	a.index(t)
	a.start(t)
	b.start(t)
	convergeOn(t, clk, a, b)

	b.write(t, "d/replica-only.txt", "made on the replica")
	b.index(t)
	if err := os.RemoveAll(filepath.Join(a.dir, "d")); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	// the first try, at once: d is kept for its file
	eventually(t, "d/x.txt removed on b", func() bool {
		return !exists(filepath.Join(b.dir, "d", "x.txt")) && b.node.Status()[0].LagFiles > 0
	})
	// dirTries retries every retryEvery settle it well before a poll
	// could return (pollWait)
	took := drive(t, clk, "b settled", func() bool {
		ps := b.node.Status()[0]
		return ps.LagFiles == 0 && ps.Behind == 0
	})
	if took >= pollWait {
		t.Errorf("settled %v after the first try by the nodes' clock, want %v (dirTries × retryEvery), before a poll returns (%v)",
			took, dirTries*retryEvery, pollWait)
	}
	if !exists(filepath.Join(b.dir, "d", "replica-only.txt")) {
		t.Error("the replica's own file was removed with the primary's directory")
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
