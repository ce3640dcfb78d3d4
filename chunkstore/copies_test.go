package chunkstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/syncd/syncd/crypto"
)

// A blob stored in two packs has two copies, in load order; the same pack
// listed twice (by two index objects) is one copy.
func TestIndexCopies(t *testing.T) {
	id, other := ID{1}, ID{2}
	pack := func(p byte, ids ...ID) IndexPack {
		ip := IndexPack{ID: ID{p}, Type: DataBlob, Size: 100}
		for _, id := range ids {
			ip.Blobs = append(ip.Blobs, IndexBlob{ID: id, Length: 10, Raw: 10})
		}
		return ip
	}
	x := NewIndex()
	x.Add(pack(7, id, other))
	x.Add(pack(8, id))
	x.Add(pack(7, id, other)) // listed again
	packsOf := func(id ID) []byte {
		var out []byte
		for _, l := range x.Copies(nil, id) {
			out = append(out, l.Pack[0])
		}
		return out
	}
	if got := packsOf(id); !slices.Equal(got, []byte{7, 8}) {
		t.Errorf("copies of a blob in packs 7 and 8 (7 listed twice): packs %v", got)
	}
	if got := packsOf(other); !slices.Equal(got, []byte{7}) {
		t.Errorf("copies of a blob in pack 7 only: packs %v", got)
	}
	if first, others, ok := x.LookupAll(other); !ok || first.Pack[0] != 7 || others != nil {
		t.Errorf("LookupAll(once stored) = %v, %v, %v", first.Pack, others, ok)
	}
	n := 0
	x.EachCopy(func(ID, Location) { n++ })
	if n != 3 {
		t.Errorf("EachCopy visited %d copies, want 3", n)
	}
}

// writePack stores blobs (ID → plaintext, which need not hash to the ID)
// as one pack of type t and returns it.
func writePack(t *testing.T, r *Repository, typ BlobType, ids []ID, plains [][]byte) IndexPack {
	t.Helper()
	rp := r.NewRepacker(t.TempDir())
	defer rp.Close()
	for i, id := range ids {
		if err := rp.Add(context.Background(), typ, id, plains[i]); err != nil {
			t.Fatal(err)
		}
	}
	packs, err := rp.Finish(context.Background())
	if err != nil || len(packs) != 1 {
		t.Fatalf("repack: %d packs, %v", len(packs), err)
	}
	return packs[0]
}

// A tree whose first copy is not the tree (a hacked writer's) is read from
// the next; CheckCopies names the bad copies and only those.
func TestTreeFromGoodCopyAndCheckCopies(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, true)
	good, err := EncodeTree(&Tree{Nodes: []Node{{Name: "a", Type: NodeFile, Mode: 0o644}}})
	if err != nil {
		t.Fatal(err)
	}
	id := r.BlobID(r.NewHasher(), good)
	bogusTree := []byte(`{"nodes":[{"name":"evil","type":"file","mode":420}]}`)
	extra := []byte(`{"nodes":[]}`)
	extraID := r.BlobID(r.NewHasher(), extra)
	real := writePack(t, r, TreeBlob, []ID{id}, [][]byte{good})
	bogus := writePack(t, r, TreeBlob, []ID{id, extraID}, [][]byte{bogusTree, extra})
	r.SetIndex(map[string][]IndexPack{"index/b": {bogus}})
	r.Index().Add(real)
	if l, _ := r.Index().Lookup(id); l.Pack != bogus.ID {
		t.Fatal("the bogus copy is not the first")
	}
	tree, err := r.LoadTree(ctx, id)
	if err != nil || len(tree.Nodes) != 1 || tree.Nodes[0].Name != "a" {
		t.Fatalf("LoadTree = %+v, %v; want the good tree", tree, err)
	}
	if _, content, err := r.TreeRefs(ctx, id); err != nil || len(content) != 0 {
		t.Errorf("TreeRefs = %v, %v", content, err)
	}

	bad, err := r.CheckCopies(ctx, TreeBlob, bogus.ID, bogus.Size, bogus.Blobs)
	if err != nil || !slices.Equal(bad, []ID{id}) {
		t.Errorf("CheckCopies(bogus pack) = %v, %v; want the tree's copy only", bad, err)
	}
	if bad, err := r.CheckCopies(ctx, TreeBlob, real.ID, real.Size, real.Blobs); err != nil || len(bad) != 0 {
		t.Errorf("CheckCopies(real pack) = %v, %v; want none bad", bad, err)
	}

	// content packs: without the data identity nothing is proven
	data := writePack(t, r, DataBlob, []ID{id}, [][]byte{[]byte("not it")})
	if bad, err := tr.open(t, false).CheckCopies(ctx, DataBlob, data.ID, data.Size, data.Blobs); !errors.Is(err, crypto.ErrNoKey) || bad != nil {
		t.Errorf("CheckCopies(content pack, index key only) = %v, %v; want ErrNoKey", bad, err)
	}
	if bad, err := r.CheckCopies(ctx, DataBlob, data.ID, data.Size, data.Blobs); err != nil || !slices.Equal(bad, []ID{id}) {
		t.Errorf("CheckCopies(content pack, data identity) = %v, %v; want the copy bad", bad, err)
	}
	// a pack whose bytes are not its name (same size): every copy is bad
	p := tr.path(ObjectName(TreeBlob, real.ID))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	os.Chmod(p, 0o600)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if bad, err := r.CheckCopies(ctx, TreeBlob, real.ID, real.Size, real.Blobs); err != nil || !slices.Equal(bad, []ID{id}) {
		t.Errorf("CheckCopies(damaged pack) = %v, %v; want every copy bad", bad, err)
	}
}

// A content pack a hacked writer sealed to other keys does not make the
// data identity look wrong, as long as another pack opens with it.
func TestCheckDataIdentityPastForeignPacks(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, true)
	other := initLocal(t, InitOptions{})
	ro := other.open(t, true)
	foreign := func(id ID) IndexPack { // a pack sealed to other keys, in r
		p := writePack(t, ro, DataBlob, []ID{id}, [][]byte{[]byte("foreign")})
		b, err := os.ReadFile(other.path(ObjectName(DataBlob, p.ID)))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Backend().Save(ctx, ObjectName(DataBlob, p.ID), bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r.SetIndex(nil)
	for i := range 7 {
		r.Index().Add(foreign(ID{byte(i)}))
	}
	r.Index().Add(writePack(t, r, DataBlob, []ID{{99}}, [][]byte{[]byte("ours")}))
	for range 10 {
		if err := r.CheckDataIdentity(ctx); err != nil {
			t.Fatalf("CheckDataIdentity = %v, want nil: one pack opens", err)
		}
	}
	r.SetIndex(nil)
	r.Index().Add(foreign(ID{98}))
	if err := r.CheckDataIdentity(ctx); !errors.Is(err, crypto.ErrNoKey) {
		t.Errorf("CheckDataIdentity with only foreign packs = %v, want ErrNoKey", err)
	}
}

// A blob added twice to a Repacker (two rewritten packs each held a copy)
// is written once: a pack never holds a blob twice, which its header and
// the index could not tell apart.
func TestRepackerWritesABlobOnce(t *testing.T) {
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, true)
	data := []byte("the same chunk in two packs")
	id := r.BlobID(r.NewHasher(), data)
	other := []byte("another chunk")
	p := writePack(t, r, DataBlob, []ID{id, r.BlobID(r.NewHasher(), other), id}, [][]byte{data, other, data})
	n := 0
	for _, b := range p.Blobs {
		if b.ID == id {
			n++
		}
	}
	if n != 1 || len(p.Blobs) != 2 {
		t.Fatalf("pack lists the twice-added blob %d times (%d blobs), want once (2 blobs)", n, len(p.Blobs))
	}
}
