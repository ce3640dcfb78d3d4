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
		Content: []chunkstore.ID{id}, Lengths: []uint32{uint32(len(data))}}, state.Entry{})
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

// The chunks of a temporary file the receiver built are read unhashed
// while its stat is the one taken once it was built; they are still found
// once it is renamed into place, and once it changed, they are hashed and
// a chunk the file no longer holds is not used.
func TestReadTrustsOwnTemporaryFileWhileUnchanged(t *testing.T) {
	n := newTestFolder(t)
	data := make([]byte, 64<<10)
	rand.Read(data)
	tmp := filepath.Join(n.dir, ".syncd-tmp-x")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(tmp)
	if err != nil {
		t.Fatal(err)
	}
	ch := n.f.Chunking
	id := ch.ID(crypto.NewHasher(ch.Key), data)
	e := state.Entry{Type: "file", Size: int64(len(data)), Content: []chunkstore.ID{id}, Lengths: []uint32{uint32(len(data))}}
	s := newSources(n.f)
	s.addTemp(".syncd-tmp-x", "new.bin", e, facts(state.EntryOf(fi)))
	read := func(what string, trusted int64, ok bool) {
		t.Helper()
		rd := s.reader()
		defer rd.close()
		b, got := rd.read(id, uint32(len(data)))
		if got != ok || ok && !bytes.Equal(b, data) {
			t.Fatalf("%s: read ok=%v, want %v with the chunk's bytes", what, got, ok)
		}
		if trusted >= 0 && s.trusted.Load() != trusted {
			t.Fatalf("%s: %d bytes read unhashed in all, want %d", what, s.trusted.Load(), trusted)
		}
	}
	read("as built", int64(len(data)), true)
	if err := os.Rename(tmp, filepath.Join(n.dir, "new.bin")); err != nil {
		t.Fatal(err)
	}
	read("renamed", -1, true) // hashed where the rename moved its change time
	was := s.trusted.Load()
	if err := os.WriteFile(filepath.Join(n.dir, "new.bin"), make([]byte, len(data)+1), 0o600); err != nil {
		t.Fatal(err)
	}
	read("overwritten", was, false)
}
