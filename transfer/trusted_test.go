package transfer

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
)

// A chunk of a local file that is, by its stat, the version the index
// lists is used without hashing; once the file was written again (even
// with the same bytes and its mtime set back: only its ctime moved) the
// chunk is hashed again.
func TestReadTrustsOnlyAnUnchangedFile(t *testing.T) {
	n := newTestNode(t, "a", config.SendReceive)
	data := make([]byte, 10<<20) // over the largest chunk (8 MiB): two chunks at least
	rand.Read(data)
	src := filepath.Join(n.dir, "src.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	n.index(t)
	if err := n.f.Reopen(); err != nil {
		t.Fatal(err)
	}
	defer n.f.Release()
	e, ok, err := n.f.Local.Index().Get("src.bin")
	if err != nil || !ok || len(e.Content) < 2 {
		t.Fatalf("index entry %+v, %v, %v: want a file of several chunks", e, ok, err)
	}
	s := newSources(n.f)
	rd := s.reader()
	defer rd.close()
	off := int64(e.Lengths[0])
	want := data[off : off+int64(e.Lengths[1])]
	if b, ok := rd.read(e.Content[1], e.Lengths[1]); !ok || !bytes.Equal(b, want) {
		t.Fatal("read of a chunk of an indexed file failed")
	}
	if got := s.trusted.Load(); got != int64(e.Lengths[1]) {
		t.Fatalf("%d bytes read unhashed, want the chunk's %d", got, e.Lengths[1])
	}

	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(0, e.ModTime)
	if err := os.Chtimes(src, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if b, ok := rd.read(e.Content[1], e.Lengths[1]); !ok || !bytes.Equal(b, want) {
		t.Fatal("read (hashed) of the same chunk failed")
	}
	if got := s.trusted.Load(); got != int64(e.Lengths[1]) {
		t.Errorf("a file written after it was indexed was trusted (%d bytes unhashed)", got)
	}
}

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
	// the old copy by its segment sums (delta.go)
	if trusted, segs := r.src.trusted.Load(), r.segBytes.Load(); trusted == 0 || trusted+segs+fetched != int64(len(data)) {
		t.Errorf("%d bytes taken unhashed, %d by segment sums and %d fetched of a file of %d: every chunk not fetched should be trusted",
			trusted, segs, fetched, len(data))
	}
}
