package prune

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/syncd/syncd/checker"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/local"
)

// history makes a local repository with one writer's snapshots 0…n-1 of
// site(0, i) and returns its directory and keys.
func history(t *testing.T, n int) (string, keys) {
	t.Helper()
	dir := t.TempDir()
	if _, err := local.Create(dir); err != nil {
		t.Fatal(err)
	}
	k := newKeys(t)
	initRepo(t, localBackend(t, dir), k, 1<<20)
	w := open(t, localBackend(t, dir), k, false)
	src := filepath.Join(t.TempDir(), "site")
	s := scenario{snapshots: n}
	for i := range n {
		writeSite(t, src, site(0, i))
		if err := snapshot(context.Background(), w, src, "web0", s.snapTime(0, i), lockOptsTest); err != nil {
			t.Fatal(err)
		}
	}
	return dir, k
}

// listing returns every object name and size of the repository in dir.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := localBackend(t, dir).List(context.Background(), "", func(fi backend.Info) error {
		out = append(out, fi.Name+" "+strings.Repeat("#", int(fi.Size%7)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// forgetOldest removes the snapshot objects of the n oldest snapshots.
func forgetOldest(t *testing.T, r *chunkstore.Repository, n int) {
	t.Helper()
	snaps, _, err := r.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range snaps[:n] {
		if err := r.Backend().Remove(context.Background(), chunkstore.SnapshotName(sn.ID())); err != nil {
			t.Fatal(err)
		}
	}
}

func check(t *testing.T, dir string, k keys) *checker.Report {
	t.Helper()
	rep, err := checker.Check(context.Background(), open(t, localBackend(t, dir), k, true), checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("verify: %s", p)
	}
	return rep
}

// With the index key alone: unused packs go, partly used tree packs are
// rewritten, partly used content packs stay; with the data identity and
// Repack they are rewritten too.
func TestPruneIndexKeyThenRepack(t *testing.T) {
	ctx := context.Background()
	dir, k := history(t, 8)
	r := open(t, localBackend(t, dir), k, false)
	forgetOldest(t, r, 4)
	dry, err := Run(ctx, r, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Run(ctx, r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("index key: %+v", *st)
	if st.PacksDeleted == 0 || st.Freed() <= 0 {
		t.Errorf("nothing deleted: %+v", *st)
	}
	if dry.PacksDeleted != st.PacksDeleted {
		t.Errorf("dry run said %d packs would go, the prune deleted %d", dry.PacksDeleted, st.PacksDeleted)
	}
	if st.IndexWritten != 1 || st.IndexRemoved == 0 {
		t.Errorf("index objects written %d, removed %d; want 1 and the old ones", st.IndexWritten, st.IndexRemoved)
	}
	rep := check(t, dir, k)
	if rep.Snapshots != 4 || rep.Unused != 0 {
		t.Errorf("after prune: %d snapshots, %d unreferenced packs; want 4, 0", rep.Snapshots, rep.Unused)
	}
	if _, err := Run(ctx, r, Options{Repack: true}); err == nil {
		t.Error("Repack without the data identity did not fail")
	}

	op := open(t, localBackend(t, dir), k, true)
	st2, err := Run(ctx, op, Options{Repack: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("repack: %+v", *st2)
	if st.PacksPartly > 0 && (st2.PacksRewritten == 0 || st2.PacksPartly != 0 || st2.UnusedKept != 0) {
		t.Errorf("repack left partly used packs: %+v", *st2)
	}
	check(t, dir, k)
	// A third prune has nothing to do.
	st3, err := Run(ctx, op, Options{Repack: true})
	if err != nil {
		t.Fatal(err)
	}
	if st3.PacksDeleted != 0 || st3.PacksRewritten != 0 {
		t.Errorf("a prune after a prune changed packs: %+v", *st3)
	}
}

// A dry run changes nothing.
func TestPruneDryRun(t *testing.T) {
	dir, k := history(t, 4)
	r := open(t, localBackend(t, dir), k, false)
	forgetOldest(t, r, 2)
	before := listing(t, dir)
	if _, err := Run(context.Background(), r, Options{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if after := listing(t, dir); !slices.Equal(before, after) {
		t.Errorf("dry run changed the repository:\n%v\n%v", before, after)
	}
}

// An index, snapshot or tree that cannot be read stops prune before it
// changes anything.
func TestPruneStopsOnDamage(t *testing.T) {
	for _, what := range []string{"index", "snapshots", "tree"} {
		t.Run(what, func(t *testing.T) {
			dir, k := history(t, 4)
			r := open(t, localBackend(t, dir), k, false)
			forgetOldest(t, r, 2)
			var names []string
			localBackend(t, dir).List(context.Background(), what+"/", func(fi backend.Info) error {
				names = append(names, fi.Name)
				return nil
			})
			slices.Sort(names)
			for _, name := range names { // every object of the kind: one is surely needed
				p := filepath.Join(dir, filepath.FromSlash(name))
				os.Chmod(p, 0o600)
				if err := os.WriteFile(p, []byte("garbage"), 0o400); err != nil {
					t.Fatal(err)
				}
			}
			before := listing(t, dir)
			_, err := Run(context.Background(), r, Options{})
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("Run = %v, want ErrDamaged", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if after := listing(t, dir); !slices.Equal(before, after) {
				t.Errorf("prune changed a damaged repository:\n%v\n%v", before, after)
			}
		})
	}
}

// Packs no index lists (a writer died before its index) are deleted.
func TestPruneDeletesUnreferencedPacks(t *testing.T) {
	ctx := context.Background()
	dir, k := history(t, 2)
	r := open(t, localBackend(t, dir), k, false)
	// a run that dies after uploading a pack, before its index
	data := pseudo("orphan", 5000)
	rp := r.NewRepacker("")
	if err := rp.Add(ctx, chunkstore.DataBlob, r.BlobID(r.NewHasher(), data), data); err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if rep := check(t, dir, k); rep.Unused == 0 {
		t.Fatal("no unreferenced pack to prune")
	}
	st, err := Run(ctx, r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Unreferenced == 0 {
		t.Errorf("Unreferenced = 0")
	}
	if rep := check(t, dir, k); rep.Unused != 0 {
		t.Errorf("%d unreferenced packs after prune", rep.Unused)
	}
}
