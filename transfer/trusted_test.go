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

// copyTo copies a chunk from a local file that is, by its stat, the
// version the index lists; once the file was written again (even with the
// same bytes: its ctime moved) it declines, and the chunk is read and
// hashed instead.
func TestCopyTrustsOnlyAnUnchangedFile(t *testing.T) {
	n := newTestNode(t, "a", config.SendReceive)
	data := make([]byte, 3<<20)
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
	e, ok, err := n.f.State.Get("src.bin")
	if err != nil || !ok || len(e.Content) < 2 {
		t.Fatalf("index entry %+v, %v, %v: want a file of several chunks", e, ok, err)
	}
	rd := newSources(n.f).reader()
	defer rd.close()
	dst, err := os.Create(filepath.Join(t.TempDir(), "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	off := int64(e.Lengths[0])
	if !rd.copyTo(dst, 100, e.Content[1], e.Lengths[1]) {
		t.Fatal("copyTo declined a chunk of a file the index lists unchanged")
	}
	got := make([]byte, e.Lengths[1])
	if _, err := dst.ReadAt(got, 100); err != nil || !bytes.Equal(got, data[off:off+int64(e.Lengths[1])]) {
		t.Fatalf("copied chunk differs from the source (%v)", err)
	}

	// the same bytes written again and the mtime set back (as a tool that
	// keeps mtimes does): only the ctime moved, and the stat no longer
	// vouches for the content
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(0, e.ModTime)
	if err := os.Chtimes(src, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	rd.close() // the reader keeps files open; the stat is of the same inode anyway
	if rd.copyTo(dst, 0, e.Content[1], e.Lengths[1]) {
		t.Error("copyTo trusted a file written after it was indexed")
	}
	if b, ok := rd.read(e.Content[1], e.Lengths[1]); !ok || !bytes.Equal(b, got) {
		t.Error("read (hashed) of the same chunk failed")
	}
}

// A small edit inside a large file: the receiver copies the unchanged
// chunks from its own copy of the file with copy_file_range (the file is
// as its index lists it) and fetches only the changed ones (the edited
// chunk, and those before its boundaries fall in step again).
func TestSmallEditCopiesTheRest(t *testing.T) {
	a, b := pair(t)
	data := make([]byte, 8<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(a.dir, "db.sql"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	converge(t, a, b)
	eventually(t, "a and b settled", func() bool { return settled(a, b) })
	fetched0 := b.node.PeerMetrics()[0].FetchedBytes
	copy(data[4<<20:], "an edit in the middle of the file")
	if err := os.WriteFile(filepath.Join(a.dir, "db.sql"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	converge(t, a, b)
	eventually(t, "a and b settled", func() bool { return settled(a, b) })
	fetched := int64(b.node.PeerMetrics()[0].FetchedBytes - fetched0)
	b.node.mu.Lock()
	src := b.node.pullers[0].r.src
	b.node.mu.Unlock()
	if copied := src.copied.Load(); copied == 0 || copied+fetched != int64(len(data)) {
		t.Errorf("copied %d bytes and fetched %d of a file of %d: every chunk not fetched should be copied", copied, fetched, len(data))
	}
}
