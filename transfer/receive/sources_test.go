package receive

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/clock/clocktest"
	"github.com/syncd/syncd/state"
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

// The chunks of a batch's temporary files, prepared and not yet
// committed (so in no index), stay sources when a miss rebuilds the map
// from the index: batches prepared ahead read them there.
func TestRebuildKeepsTemporaryFiles(t *testing.T) {
	n := newTestFolder(t)
	clk := clocktest.New(time.Unix(1e9, 0))
	n.f.Clock = clk
	data := make([]byte, 64<<10)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(n.dir, ".syncd-tmp-x"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	ch := n.f.Chunking
	id := ch.ID(crypto.NewHasher(ch.Key), data)
	s := newSources(n.f)
	s.addTemp(".syncd-tmp-x", "new.bin", state.Entry{Type: "file", Size: int64(len(data)),
		Content: []chunkstore.ID{id}, Lengths: []uint32{uint32(len(data))}})
	// the index changes, time passes, and a chunk nobody has is looked up
	if err := os.WriteFile(filepath.Join(n.dir, "other.bin"), []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.index(t)
	clk.Advance(2 * rebuildAfter)
	rd := s.reader()
	defer rd.close()
	if _, ok := rd.read(chunkstore.ID{1}, 5); ok {
		t.Fatal("a chunk no file holds was read")
	}
	if b, ok := rd.read(id, uint32(len(data))); !ok || !bytes.Equal(b, data) {
		t.Error("the temporary file's chunk was lost when the map was rebuilt")
	}
}
