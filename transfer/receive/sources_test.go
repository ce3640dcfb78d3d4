package receive

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A chunk of a local file that is, by its stat, the version the index
// lists is used without hashing; once the file was written again (even
// with the same bytes and its mtime set back: only its ctime moved) the
// chunk is hashed again.
func TestReadTrustsOnlyAnUnchangedFile(t *testing.T) {
	n := newTestFolder(t)
	data := make([]byte, 10<<20) // over the largest chunk (8 MiB): two chunks at least
	rand.Read(data)
	src := filepath.Join(n.dir, "src.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	n.index(t)
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
