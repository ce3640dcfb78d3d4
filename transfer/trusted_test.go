package transfer

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// A small edit inside a large file: the receiver takes the unchanged
// chunks from its own copy of the file, unhashed (the file is as its
// index lists it), and fetches only the edited one.
func TestSmallEditTrustsTheRest(t *testing.T) {
	a, b := pair(t)
	data := make([]byte, 16<<20) // two chunks at least (the largest is 8 MiB)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(a.dir, "db.sql"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	converge(t, a, b)
	eventually(t, "a and b settled", func() bool { return settled(a, b) })
	fetched0 := b.node.PeerMetrics()[0].FetchedBytes
	// near the end: every chunk before the edited one is the same (chunk
	// boundaries depend only on the bytes before them)
	copy(data[len(data)-1000:], "an edit near the end of the file")
	if err := os.WriteFile(filepath.Join(a.dir, "db.sql"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	converge(t, a, b)
	eventually(t, "a and b settled", func() bool { return settled(a, b) })
	fetched := int64(b.node.PeerMetrics()[0].FetchedBytes - fetched0)
	b.node.mu.Lock()
	r := b.node.pullers[0].r
	b.node.mu.Unlock()
	// the edited chunk: what differs fetched, the rest of it taken from
	// the old copy by its segment sums (receive/delta.go)
	if trusted, segs := b.f.recv.TrustedBytes(), r.SegmentBytes(); trusted == 0 || trusted+segs+fetched != int64(len(data)) {
		t.Errorf("%d bytes taken unhashed, %d by segment sums and %d fetched of a file of %d: every chunk not fetched should be trusted",
			trusted, segs, fetched, len(data))
	}
}
