package prune

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncd/syncd/checker"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/restorer"
)

// plantBogus does what a hacked writer node can do with the index key and
// the data recipients alone: it writes packs that claim every blob of the
// index (data blobs in content packs, tree blobs in tree packs) with bytes
// of the right length that are not the blob, and an index object listing
// them. It returns the names of the packs it wrote.
func plantBogus(t testing.TB, r *chunkstore.Repository) map[string]bool {
	t.Helper()
	ctx := context.Background()
	if bad, err := r.LoadIndex(ctx); err != nil || len(bad) > 0 {
		t.Fatalf("load index: %v %v", bad, err)
	}
	type blob struct {
		t   chunkstore.BlobType
		id  chunkstore.ID
		raw uint32
	}
	var blobs []blob
	r.Index().Each(func(id chunkstore.ID, l chunkstore.Location) {
		blobs = append(blobs, blob{l.Type, id, l.Raw})
	})
	rp := r.NewRepacker(t.TempDir())
	defer rp.Close()
	for _, b := range blobs {
		if err := rp.Add(ctx, b.t, b.id, pseudo("bogus "+b.id.String(), int(b.raw))); err != nil {
			t.Fatal(err)
		}
	}
	packs, err := rp.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range packs {
		out[chunkstore.ObjectName(p.Type, p.ID)] = true
	}
	return out
}

// packNames returns the packs in the repository in dir.
func packNames(t testing.TB, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, sub := range []string{"data", "tree"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			out[sub+"/"+e.Name()] = true
		}
	}
	return out
}

// copyDir copies the files of src into a new directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// restoreAll restores every snapshot of r (which has the data identity)
// and checks that snapshot i holds site(0, i) under src.
func restoreAll(t *testing.T, r *chunkstore.Repository, src string, s scenario) {
	t.Helper()
	ctx := context.Background()
	if bad, err := r.LoadIndex(ctx); err != nil || len(bad) > 0 {
		t.Fatalf("load index: %v %v", bad, err)
	}
	snaps, bad, err := r.Snapshots(ctx)
	if err != nil || len(bad) > 0 {
		t.Fatalf("snapshots: %v %v", bad, err)
	}
	for _, sn := range snaps {
		_, i := s.identify(t, sn)
		target := t.TempDir()
		res, err := restorer.Restore(ctx, r, sn, restorer.Options{Target: target, Overwrite: true})
		if err != nil {
			t.Fatalf("restore %s: %v", sn.ID().Short(), err)
		}
		for _, e := range res.Errors {
			t.Errorf("restore %s: %v", sn.ID().Short(), e)
		}
		for name, want := range site(0, i) {
			got, err := os.ReadFile(filepath.Join(target, src, filepath.FromSlash(name)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("snapshot %d: %s restored wrong (%v)", i, name, err)
			}
		}
	}
}

// A hacked writer plants packs that claim every blob with wrong bytes.
// Restore and verify fall back to the good copies, verify --read-data names
// every bogus pack, a prune with the index key deletes no real pack (and
// the bogus tree packs, which it can check), and a prune with the data
// identity deletes the bogus content packs too. Which copy the index takes
// first depends on the order index objects load, so the attack is tried on
// several copies of the repository.
func TestPruneHostileCopies(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k := newKeys(t)
	initRepo(t, localBackend(t, dir), k, 1<<20)
	w := open(t, localBackend(t, dir), k, false)
	src := filepath.Join(t.TempDir(), "site")
	s := scenario{snapshots: 3}
	for i := range s.snapshots {
		writeSite(t, src, site(0, i))
		if err := snapshot(ctx, w, src, "web0", s.snapTime(0, i), lockOptsTest); err != nil {
			t.Fatal(err)
		}
	}
	real := packNames(t, dir)
	bogus := plantBogus(t, open(t, localBackend(t, dir), k, false))
	for try := range 6 {
		d := copyDir(t, dir)
		restoreAll(t, open(t, localBackend(t, d), k, true), src, s)

		rep, err := checker.Check(ctx, open(t, localBackend(t, d), k, true), checker.Options{ReadData: true})
		if err != nil {
			t.Fatal(err)
		}
		named := map[string]bool{}
		for _, p := range rep.Problems {
			named[p.Object] = true
			if !bogus[p.Object] || !strings.Contains(p.Err, "does not match its ID") || len(p.Files) > 0 {
				t.Errorf("try %d: verify: %s", try, p)
			}
		}
		for name := range bogus {
			if !named[name] {
				t.Errorf("try %d: verify --read-data does not name the bogus pack %s", try, name)
			}
		}

		if _, err := Run(ctx, open(t, localBackend(t, d), k, false), Options{}); err != nil {
			t.Fatalf("try %d: prune with the index key: %v", try, err)
		}
		after := packNames(t, d)
		for name := range real {
			if !after[name] {
				t.Errorf("try %d: prune with the index key deleted the real pack %s", try, name)
			}
		}
		for name := range bogus {
			if strings.HasPrefix(name, "tree/") && after[name] {
				t.Errorf("try %d: prune with the index key kept the bogus tree pack %s", try, name)
			}
		}
		restoreAll(t, open(t, localBackend(t, d), k, true), src, s)

		if _, err := Run(ctx, open(t, localBackend(t, d), k, true), Options{}); err != nil {
			t.Fatalf("try %d: prune with the data identity: %v", try, err)
		}
		after = packNames(t, d)
		for name := range after {
			if !real[name] {
				t.Errorf("try %d: prune with the data identity kept %s, not a real pack", try, name)
			}
		}
		for name := range real {
			if !after[name] {
				t.Errorf("try %d: prune with the data identity deleted the real pack %s", try, name)
			}
		}
		restoreAll(t, open(t, localBackend(t, d), k, true), src, s)
		if t.Failed() {
			return
		}
	}
}

// A blob stored twice (two writers), one of whose packs is then lost: the
// copy in the lost pack is gone and the other counts, whichever the index
// lists first, so prune neither stops nor deletes the surviving pack.
func TestPruneCopyInMissingPack(t *testing.T) {
	ctx := context.Background()
	dir, k := history(t, 2)
	r := open(t, localBackend(t, dir), k, false)
	if bad, err := r.LoadIndex(ctx); err != nil || len(bad) > 0 {
		t.Fatalf("load index: %v %v", bad, err)
	}
	// a second writer stored the same content packs again, with the data
	// identity to read them: copy every content blob into new packs
	rd := open(t, localBackend(t, dir), k, true)
	if bad, err := rd.LoadIndex(ctx); err != nil || len(bad) > 0 {
		t.Fatalf("load index: %v %v", bad, err)
	}
	first := map[string]bool{}
	h := rd.NewHasher()
	rp := rd.NewRepacker(t.TempDir())
	defer rp.Close()
	var failed error
	rd.Index().Each(func(id chunkstore.ID, l chunkstore.Location) {
		if l.Type != chunkstore.DataBlob || failed != nil {
			return
		}
		first[chunkstore.ObjectName(l.Type, l.Pack)] = true
		p, err := rd.OpenPack(ctx, l.Type, l.Pack, l.PackSize, false)
		if err == nil {
			var plain []byte
			if plain, err = p.ReadBlob(nil, id, l, h); err == nil {
				err = rp.Add(ctx, l.Type, id, plain)
			}
		}
		failed = err
	})
	if failed != nil {
		t.Fatal(failed)
	}
	second, err := rp.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd.SaveIndex(ctx, second); err != nil {
		t.Fatal(err)
	}
	// the first writer's content packs are lost
	for name := range first {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	for try := range 8 { // which copy the index lists first varies
		d := copyDir(t, dir)
		if _, err := Run(ctx, open(t, localBackend(t, d), k, false), Options{}); err != nil {
			t.Fatalf("try %d: prune: %v", try, err)
		}
		after := packNames(t, d)
		for _, p := range second {
			if name := chunkstore.ObjectName(p.Type, p.ID); !after[name] {
				t.Errorf("try %d: prune deleted %s, which holds the only copies left", try, name)
			}
		}
		check(t, d, k)
	}
}
