package transfer

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
)

// A failed entry that its retries settle (here a deleted directory kept
// because the replica put a file of its own in it) stops counting as lag
// at once: the status must not wait for the next index poll, which on an
// idle primary comes only after pollWait.
func TestStatusSettlesAfterRetries(t *testing.T) {
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	connect(a, b)
	a.write(t, "d/x.txt", "primary")
	a.write(t, "keep.txt", "primary")
	a.index(t)
	a.start(t)
	b.start(t)
	converge(t, a, b)

	b.write(t, "d/replica-only.txt", "made on the replica")
	b.index(t)
	if err := os.RemoveAll(filepath.Join(a.dir, "d")); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	start := time.Now()
	// dirTries retries every retryEvery settle it well before a poll
	// could return (pollWait); the deadline sits between the two.
	deadline := start.Add(pollWait - 3*time.Second)
	var ps PeerStatus
	for {
		ps = b.node.Status()[0]
		if ps.LagFiles == 0 && ps.Behind == 0 && !exists(filepath.Join(b.dir, "d", "x.txt")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: lag %d files, behind %d; log b:\n%s", time.Since(start).Round(time.Millisecond), ps.LagFiles, ps.Behind, b.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !exists(filepath.Join(b.dir, "d", "replica-only.txt")) {
		t.Error("the replica's own file was removed with the primary's directory")
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
