package chunkstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/crypto"
)

// saveBlobs writes blobs of both types through a Saver and returns them.
func saveBlobs(t *testing.T, r *Repository) []savedBlob {
	t.Helper()
	h := r.NewHasher()
	var blobs []savedBlob
	add := func(name string, typ BlobType, data []byte, zstd int, tree *Tree) {
		blobs = append(blobs, savedBlob{name: name, t: typ, id: r.BlobID(h, data), data: data, zstd: zstd, tree: tree})
	}
	for i := range 4 {
		add(fmt.Sprintf("random 300 KiB #%d", i), DataBlob, randomBytes(t, 300<<10), -1, nil)
	}
	add("random 70 KiB", DataBlob, randomBytes(t, 70<<10+3), -1, nil)
	add("one byte", DataBlob, []byte{42}, -1, nil)
	add("empty", DataBlob, []byte{}, -1, nil)
	add("text", DataBlob, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 5000)), 1, nil)

	small := &Tree{Nodes: []Node{{Name: "a.txt", Type: NodeFile, Mode: 0o644, Size: 1, Content: []ID{blobs[5].id},
		ModTime: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}}}
	big := &Tree{}
	for i := range 3000 {
		big.Nodes = append(big.Nodes, Node{Name: fmt.Sprintf("file-%05d", i), Type: NodeFile, Mode: 0o600,
			Size: 300 << 10, Content: []ID{blobs[i%4].id}, ModTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	}
	sub := blobs[0].id
	big.Nodes = append(big.Nodes, Node{Name: "zz-dir", Type: NodeDir, Mode: 0o755, Subtree: &sub})
	for _, tt := range []struct {
		name string
		tree *Tree
		zstd int
	}{{"small tree", small, 0}, {"big tree", big, 1}} {
		data, err := EncodeTree(tt.tree)
		if err != nil {
			t.Fatal(err)
		}
		add(tt.name, TreeBlob, data, tt.zstd, tt.tree)
	}
	add("random tree-type blob", TreeBlob, randomBytes(t, 100<<10), -1, nil)

	s := r.NewSaver(context.Background(), SaverOptions{Packers: 2, Uploaders: 2})
	for _, b := range blobs {
		added, err := s.Save(b.t, b.id, b.data)
		if err != nil {
			t.Fatalf("Save(%s): %v", b.name, err)
		}
		if !added {
			t.Errorf("Save(%s) = false, want true for a new blob", b.name)
		}
	}
	// Queued blobs are known and not queued again.
	for _, b := range blobs {
		if !s.Known(b.id) {
			t.Errorf("Known(%s) = false after Save", b.name)
		}
		if added, err := s.Save(b.t, b.id, b.data); added || err != nil {
			t.Errorf("Save(%s) again = %v, %v; want false, nil", b.name, added, err)
		}
	}
	if s.Known(RandomID()) {
		t.Errorf("Known(random ID) = true")
	}
	ids, err := s.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if len(ids) != 1 {
		t.Errorf("Finish wrote %d index objects, want 1", len(ids))
	}
	if n, _ := s.Added(); n != int64(len(blobs)) {
		t.Errorf("Added() = %d blobs, want %d", n, len(blobs))
	}
	return blobs
}

func TestSaverRoundTrip(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{PackSize: 1 << 20})
	blobs := saveBlobs(t, tr.open(t, true))

	// Everything below reads through a newly opened repository.
	r := tr.open(t, true)
	bad, err := r.LoadIndex(ctx)
	if err != nil || len(bad) != 0 {
		t.Fatalf("LoadIndex = %v, %v", bad, err)
	}
	if got := r.Index().Len(); got != len(blobs) {
		t.Errorf("index has %d blobs, want %d", got, len(blobs))
	}

	packs := map[BlobType]map[ID]bool{DataBlob: {}, TreeBlob: {}}
	for _, b := range blobs {
		t.Run(b.name, func(t *testing.T) {
			loc, ok := r.Index().Lookup(b.id)
			if !ok {
				t.Fatalf("blob not in the index")
			}
			packs[loc.Type][loc.Pack] = true
			if loc.Type != b.t {
				t.Errorf("Type = %v, want %v", loc.Type, b.t)
			}
			if loc.Raw != uint32(len(b.data)) {
				t.Errorf("Raw = %d, want %d", loc.Raw, len(b.data))
			}
			if (b.zstd == 1 && !loc.Zstd) || (b.zstd == -1 && loc.Zstd) {
				t.Errorf("Zstd = %v, want %v", loc.Zstd, b.zstd == 1)
			}
			if loc.Zstd && loc.Length >= loc.Raw {
				t.Errorf("compressed blob: stored %d bytes for %d raw", loc.Length, loc.Raw)
			}
			if !loc.Zstd && loc.Length != loc.Raw {
				t.Errorf("raw blob: Length %d != Raw %d", loc.Length, loc.Raw)
			}
			for _, whole := range []bool{true, false} {
				p, err := r.OpenPack(ctx, loc.Type, loc.Pack, loc.PackSize, whole)
				if err != nil {
					t.Fatalf("OpenPack(whole=%v): %v", whole, err)
				}
				if got, want := p.Name(), ObjectName(b.t, loc.Pack); got != want {
					t.Errorf("Name() = %s, want %s", got, want)
				}
				got, err := p.ReadBlob([]byte("dst:"), b.id, loc, r.NewHasher())
				if err != nil {
					t.Fatalf("ReadBlob(whole=%v): %v", whole, err)
				}
				if !bytes.HasPrefix(got, []byte("dst:")) || !bytes.Equal(got[4:], b.data) {
					t.Errorf("ReadBlob(whole=%v) returned %d bytes, want \"dst:\" + the %d saved bytes", whole, len(got), len(b.data))
				}
				// The hash check catches a blob read under another ID.
				if _, err := p.ReadBlob(nil, RandomID(), loc, r.NewHasher()); !errors.Is(err, ErrCorrupt) {
					t.Errorf("ReadBlob under a wrong ID = %v, want ErrCorrupt", err)
				}
			}
			if b.tree != nil {
				got, err := r.LoadTree(ctx, b.id)
				if err != nil {
					t.Fatalf("LoadTree: %v", err)
				}
				if !reflect.DeepEqual(got.Nodes, b.tree.Nodes) {
					t.Errorf("LoadTree returned %d nodes, not the %d saved", len(got.Nodes), len(b.tree.Nodes))
				}
			}
		})
	}
	if n := len(packs[DataBlob]); n < 2 {
		t.Errorf("%d data packs for 1.3 MiB of data with 1 MiB packs, want at least 2", n)
	}
	if n := len(packs[TreeBlob]); n < 1 {
		t.Errorf("%d tree packs, want at least 1", n)
	}

	t.Run("pack objects", func(t *testing.T) {
		for typ, ids := range packs {
			for id := range ids {
				body, err := os.ReadFile(tr.path(ObjectName(typ, id)))
				if err != nil {
					t.Fatal(err)
				}
				if Hash(body) != id {
					t.Errorf("%s: named for SHA-256 %s", ObjectName(typ, id), Hash(body))
				}
				if !bytes.HasPrefix(body, []byte("age-encryption.org/v1\n")) {
					t.Errorf("%s is not an age file", ObjectName(typ, id))
				}
			}
		}
	})

	t.Run("header matches index", func(t *testing.T) {
		objs, bad, err := r.IndexObjects(ctx)
		if err != nil || len(bad) != 0 {
			t.Fatalf("IndexObjects = %v, %v", bad, err)
		}
		n := 0
		for _, ips := range objs {
			for _, ip := range ips {
				n++
				fi, err := os.Stat(tr.path(ObjectName(ip.Type, ip.ID)))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() != ip.Size {
					t.Errorf("pack %s: index size %d, object size %d", ip.ID.Short(), ip.Size, fi.Size())
				}
				for _, whole := range []bool{true, false} {
					p, err := r.OpenPack(ctx, ip.Type, ip.ID, ip.Size, whole)
					if err != nil {
						t.Fatal(err)
					}
					hdr, err := p.Header()
					if err != nil {
						t.Fatalf("pack %s: Header(whole=%v): %v", ip.ID.Short(), whole, err)
					}
					if !reflect.DeepEqual(hdr, ip.Blobs) {
						t.Errorf("pack %s: Header(whole=%v) = %+v\nwant the index entry %+v", ip.ID.Short(), whole, hdr, ip.Blobs)
					}
				}
			}
		}
		if want := len(packs[DataBlob]) + len(packs[TreeBlob]); n != want {
			t.Errorf("index objects list %d packs, want %d", n, want)
		}
	})

	t.Run("index size mismatch", func(t *testing.T) {
		loc, _ := r.Index().Lookup(blobs[0].id)
		if _, err := r.OpenPack(ctx, loc.Type, loc.Pack, loc.PackSize+1, true); !errors.Is(err, ErrCorrupt) {
			t.Errorf("OpenPack with the wrong size = %v, want ErrCorrupt", err)
		}
	})

	t.Run("LoadTree of non-trees", func(t *testing.T) {
		var random, data savedBlob
		for _, b := range blobs {
			switch {
			case b.t == TreeBlob && b.tree == nil:
				random = b
			case b.t == DataBlob:
				data = b
			}
		}
		if _, err := r.LoadTree(ctx, random.id); !errors.Is(err, ErrCorrupt) {
			t.Errorf("LoadTree of a tree blob that is not JSON = %v, want ErrCorrupt", err)
		}
		if _, err := r.LoadTree(ctx, data.id); !errors.Is(err, ErrCorrupt) {
			t.Errorf("LoadTree of a data blob = %v, want ErrCorrupt", err)
		}
		if _, err := r.LoadTree(ctx, RandomID()); err == nil || !strings.Contains(err.Error(), "not in the index") {
			t.Errorf("LoadTree of an unknown ID = %v, want \"not in the index\"", err)
		}
	})

	t.Run("second run", func(t *testing.T) {
		// Blobs the index has are not stored again.
		s := r.NewSaver(ctx, SaverOptions{})
		for _, b := range blobs {
			if added, err := s.Save(b.t, b.id, b.data); added || err != nil {
				t.Errorf("Save(%s) of a stored blob = %v, %v; want false, nil", b.name, added, err)
			}
		}
		ids, err := s.Finish()
		if err != nil || len(ids) != 0 {
			t.Errorf("Finish of a run that added nothing = %v, %v; want no index object", ids, err)
		}
	})
}

// File contents are readable with a data identity only: the index key,
// which the writing nodes hold, does not open them.
func TestDataPacksNeedDataIdentity(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{PackSize: 1 << 20})
	w := tr.open(t, false) // a writer node: no data identity
	h := w.NewHasher()
	content := []byte("file contents the writer must not read back")
	tree, err := EncodeTree(&Tree{Nodes: []Node{{Name: "f", Type: NodeFile, Content: []ID{w.BlobID(h, content)}}}})
	if err != nil {
		t.Fatal(err)
	}
	s := w.NewSaver(ctx, SaverOptions{})
	for _, b := range []struct {
		t    BlobType
		data []byte
	}{{DataBlob, content}, {TreeBlob, tree}} {
		if _, err := s.Save(b.t, w.BlobID(h, b.data), b.data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Finish(); err != nil {
		t.Fatalf("Finish without a data identity: %v", err)
	}

	dataLoc, _ := w.Index().Lookup(w.BlobID(h, content))
	treeID := w.BlobID(h, tree)
	tests := []struct {
		name    string
		ids     []age.Identity
		wantErr bool
	}{
		{"no data identity", nil, true},
		{"index key as data identity", []age.Identity{tr.key.Identity()}, true},
		{"another X25519 identity", []age.Identity{newX25519(t)}, true},
		{"the data identity", []age.Identity{newX25519(t), tr.dataID}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tr.open(t, false)
			r.SetDataIdentities(tt.ids)
			if _, err := r.LoadIndex(ctx); err != nil {
				t.Fatal(err)
			}
			for _, whole := range []bool{true, false} {
				p, err := r.OpenPack(ctx, DataBlob, dataLoc.Pack, dataLoc.PackSize, whole)
				if tt.wantErr {
					if !errors.Is(err, crypto.ErrNoKey) {
						t.Errorf("OpenPack(data, whole=%v) = %v, want ErrNoKey", whole, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("OpenPack(data, whole=%v): %v", whole, err)
				}
				got, err := p.ReadBlob(nil, w.BlobID(h, content), dataLoc, r.NewHasher())
				if err != nil || !bytes.Equal(got, content) {
					t.Errorf("ReadBlob = %q, %v; want %q", got, err, content)
				}
			}
			err := r.CheckDataIdentity(ctx)
			if tt.wantErr && !errors.Is(err, crypto.ErrNoKey) {
				t.Errorf("CheckDataIdentity = %v, want ErrNoKey", err)
			}
			if !tt.wantErr && err != nil {
				t.Errorf("CheckDataIdentity = %v, want nil", err)
			}
			// Trees are readable either way.
			if _, err := r.LoadTree(ctx, treeID); err != nil {
				t.Errorf("LoadTree: %v", err)
			}
		})
	}
}

// Many goroutines saving the same blobs store each once.
func TestSaverConcurrentDedup(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{PackSize: 1 << 20})
	r := tr.open(t, true)
	h := r.NewHasher()
	var datas [][]byte
	for i := range 50 {
		datas = append(datas, []byte(fmt.Sprintf("blob %d %s", i, strings.Repeat("x", i*100))))
	}
	ids := make([]ID, len(datas))
	for i, d := range datas {
		ids[i] = r.BlobID(h, d)
	}
	s := r.NewSaver(ctx, SaverOptions{Packers: 3, Uploaders: 2})
	var mu sync.Mutex
	added := make(map[ID]int)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range datas {
				j := (i + g*7) % len(datas)
				ok, err := s.Save(DataBlob, ids[j], datas[j])
				if err != nil {
					t.Errorf("Save: %v", err)
					return
				}
				if ok {
					mu.Lock()
					added[ids[j]]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if _, err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if added[id] != 1 {
			t.Errorf("blob %d: Save returned true %d times, want once", i, added[id])
		}
	}
	if n, _ := s.Added(); n != int64(len(datas)) {
		t.Errorf("Added() = %d, want %d", n, len(datas))
	}

	r2 := tr.open(t, true)
	if _, err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		loc, ok := r2.Index().Lookup(id)
		if !ok {
			t.Fatalf("blob %d not in the index", i)
		}
		p, err := r2.OpenPack(ctx, DataBlob, loc.Pack, loc.PackSize, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.ReadBlob(nil, id, loc, r2.NewHasher())
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Errorf("blob %d: ReadBlob = %d bytes, %v; want %d bytes", i, len(got), err, len(datas[i]))
		}
	}
	n := 0
	r2.Index().Each(func(ID, Location) { n++ })
	if n != len(datas) {
		t.Errorf("index has %d blobs, want %d", n, len(datas))
	}
}

func TestSaverAbort(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{PackSize: 1 << 20})
	r := tr.open(t, true)
	s := r.NewSaver(ctx, SaverOptions{})
	data := []byte("aborted")
	if _, err := s.Save(DataBlob, r.BlobID(r.NewHasher(), data), data); err != nil {
		t.Fatal(err)
	}
	s.Abort()
	var names []string
	if err := r.Backend().List(ctx, "index/", func(fi backend.Info) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("Abort wrote index objects %v, want none", names)
	}
}

func TestLoadIndexSkipsCorrupt(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{PackSize: 1 << 20})
	r := tr.open(t, true)
	h := r.NewHasher()

	// Two writer runs: two index objects.
	var runs [2][]ID
	var index [2]ID
	for run := range 2 {
		s := r.NewSaver(ctx, SaverOptions{})
		for i := range 3 {
			data := []byte(fmt.Sprintf("run %d blob %d", run, i))
			id := r.BlobID(h, data)
			if _, err := s.Save(DataBlob, id, data); err != nil {
				t.Fatal(err)
			}
			runs[run] = append(runs[run], id)
		}
		ids, err := s.Finish()
		if err != nil || len(ids) != 1 {
			t.Fatalf("Finish = %v, %v; want one index object", ids, err)
		}
		index[run] = ids[0]
	}
	// A third index object that decrypts but lists a blob past the end of
	// its pack.
	loc, _ := r.Index().Lookup(runs[0][0])
	invalid, err := r.saveIndex(ctx, []IndexPack{{ID: loc.Pack, Type: DataBlob, Size: loc.PackSize,
		Blobs: []IndexBlob{{ID: RandomID(), Offset: uint32(loc.PackSize), Length: 10, Raw: 10}}}})
	if err != nil {
		t.Fatal(err)
	}
	// And an object whose name is not an ID.
	if err := backend.SaveBytes(ctx, r.Backend(), "index/not-an-id", []byte("x")); err != nil {
		t.Fatal(err)
	}
	flipByte(t, tr.path(IndexName(index[1])), -1)

	r2 := tr.open(t, true)
	bad, err := r2.LoadIndex(ctx)
	if err != nil {
		t.Fatalf("LoadIndex = %v, want the corrupt objects reported apart", err)
	}
	want := map[string]string{
		IndexName(index[1]): "does not match its name",
		IndexName(invalid):  "extends past the end",
		"index/not-an-id":   "unexpected object name",
	}
	got := map[string]string{}
	for _, e := range bad {
		got[e.Name] = e.Error()
		if !errors.Is(e, ErrCorrupt) {
			t.Errorf("IndexError for %s = %v, want one matching ErrCorrupt", e.Name, e.Err)
		}
	}
	if len(got) != len(want) {
		t.Errorf("LoadIndex reported %d bad objects %v, want %d", len(got), got, len(want))
	}
	for name, msg := range want {
		if !strings.Contains(got[name], msg) {
			t.Errorf("IndexError for %s = %q, want one containing %q", name, got[name], msg)
		}
	}
	for _, id := range runs[0] {
		if !r2.Index().Has(id) {
			t.Errorf("blob %s of the good index object is missing", id.Short())
		}
	}
	for _, id := range runs[1] {
		if r2.Index().Has(id) {
			t.Errorf("blob %s of the corrupt index object was loaded", id.Short())
		}
	}

	// IndexObjects reports the same objects.
	objs, bad2, err := r2.IndexObjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := objs[IndexName(index[0])]; !ok || len(objs) != 1 {
		t.Errorf("IndexObjects listed %d good objects, want only %s", len(objs), IndexName(index[0]))
	}
	if len(bad2) != len(want) {
		t.Errorf("IndexObjects reported %d bad objects, want %d", len(bad2), len(want))
	}
}
