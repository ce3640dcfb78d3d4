package transfer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/transfer/receive"
)

// A folder with a Failed condition (its marker missing: maybe not the
// disk it was) applies nothing its peer sends and serves its peer
// nothing, saying why; once the condition clears, both resume. The
// nodes' backoffs and long polls pass as the test moves their clock.
func TestFailedFolderStops(t *testing.T) {
	a, b, clk := fakePair(t)
	a.write(t, "x.txt", "before")
	a.index(t)
	convergeOn(t, clk, a, b)
	// (a's puller may have found b not listening yet: that is a condition
	// of its own, warned of when it began and over once b answered)
	drive(t, clk, "a's puller answered by b", func() bool {
		l := a.log.String()
		return strings.Contains(l, `level=INFO msg="peer connected"`) && !strings.Contains(l, `level=WARN msg="peer session ended"`) ||
			strings.Contains(l, `level=INFO msg="peer reconnected"`)
	})

	const reason = "the folder marker .syncd-folder is missing"
	b.f.Health.Set("marker-missing", health.Failed, reason)
	mark := a.log.len()
	a.write(t, "y.txt", "while b is failed")
	a.index(t)
	drive(t, clk, "b's puller stopped on the failed folder", func() bool {
		st := b.node.Status()
		return len(st) == 1 && strings.Contains(st[0].Error, receive.ErrFolderFailed.Error())
	})
	if _, err := os.Lstat(filepath.Join(b.dir, "y.txt")); err == nil {
		t.Errorf("y.txt applied on b although its folder is failed")
	}
	refused := func() int {
		return strings.Count(a.log.since(mark), "503 Service Unavailable: folder www is unavailable on this node: "+reason)
	}
	drive(t, clk, "a told twice that b's folder is unavailable", func() bool { return refused() >= 2 })
	if warned := strings.Count(a.log.since(mark), `level=WARN msg="peer session ended"`); warned != 1 {
		t.Errorf("a warned %d times of %d refusals, want once:\n%s", warned, refused(), a.log.since(mark))
	}

	b.f.Health.Clear("marker-missing")
	b.write(t, "z.txt", "from b")
	b.index(t)
	convergeOn(t, clk, a, b)
}
