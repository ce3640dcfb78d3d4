package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncd/syncd/chunkstore"
)

// plantBogusCopies does what a hacked writer node can do with the index key
// and the data recipients (no data identity, no delete): it writes a content
// pack and a tree pack that claim every blob of the repository with wrong
// bytes of the right length, and an index object listing them. It returns
// the names of the packs it wrote.
func plantBogusCopies(t *testing.T, r *repo) map[string]bool {
	t.Helper()
	ctx := context.Background()
	repo, sess := openAsWriter(t, r, "hacked")
	defer repo.Close()
	defer sess.Close()
	rp := repo.NewRepacker(t.TempDir())
	defer rp.Close()
	var addErr error
	repo.Index().Each(func(id chunkstore.ID, l chunkstore.Location) {
		bogus := make([]byte, l.Raw)
		copy(bogus, "not the blob "+id.String())
		if err := rp.Add(ctx, l.Type, id, bogus); err != nil && addErr == nil {
			addErr = err
		}
	})
	if addErr != nil {
		t.Fatal(addErr)
	}
	packs, err := rp.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range packs {
		out[chunkstore.ObjectName(p.Type, p.ID)] = true
	}
	return out
}

// Item 2 of issue 11: a hacked writer's packs claim every blob with wrong
// bytes. Restore is right every time (which copy the index takes first
// depends on the order index objects load), verify --read-data names the
// bogus packs, syncd prune (index key only) deletes no real pack and the
// bogus tree pack, and restore prune (data identity) the bogus content
// pack; the restores after each are equal to the source.
func TestBogusCopiesFromHackedWriter(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "site")
	for i := range 3 {
		writeNoise(t, filepath.Join(src, fmt.Sprintf("d%d", i), "f.bin"), 40000+i*1000)
		writeNoise(t, filepath.Join(src, "big.bin"), 9<<20) // more than one chunk
		if err := os.WriteFile(filepath.Join(src, "wp-config.php"), []byte("define('DB_PASSWORD', 'hunter2');\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r.snapshot(t, src)
	}
	real := map[string]bool{}
	for _, d := range []string{"data", "tree"} {
		for _, name := range repoObjects(t, r, d) {
			real[name] = true
		}
	}
	bogus := plantBogusCopies(t, r)
	if len(bogus) != 2 {
		t.Fatalf("planted %d packs, want a content pack and a tree pack: %v", len(bogus), bogus)
	}
	restoreEqual := func(when string) {
		t.Helper()
		for try := range 4 {
			target := filepath.Join(t.TempDir(), "out")
			res := run(t, nil, "restore", append([]string{"latest", "--target", target}, r.flags("--identity", r.dataKey)...)...)
			if res.code != 0 {
				t.Fatalf("%s: restore (try %d): %s", when, try, res)
			}
			sameTree(t, src, filepath.Join(target, src))
		}
	}
	restoreEqual("planted")

	res := run(t, nil, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", r.dataKey)...)...)
	if res.code == 0 {
		t.Errorf("verify --read-data passed a repository with bogus copies: %s", res)
	}
	out := res.stdout + res.stderr
	for name := range bogus {
		if !strings.Contains(out, name+": ") || !strings.Contains(out, "does not match its ID") {
			t.Errorf("verify --read-data does not name %s as holding blobs that do not match their IDs: %s", name, res)
		}
	}
	for name := range real {
		if strings.Contains(out, name) {
			t.Errorf("verify --read-data names the real pack %s: %s", name, res)
		}
	}

	ok(t, nil, "syncd", append([]string{"prune"}, r.flags()...)...)
	after := map[string]bool{}
	for _, d := range []string{"data", "tree"} {
		for _, name := range repoObjects(t, r, d) {
			after[name] = true
		}
	}
	for name := range real {
		if !after[name] {
			t.Errorf("syncd prune deleted the real pack %s", name)
		}
	}
	for name := range bogus {
		if wantKept := strings.HasPrefix(name, "data/"); after[name] != wantKept {
			t.Errorf("syncd prune: bogus %s kept = %v, want %v (only the data identity proves a content copy bad)", name, after[name], wantKept)
		}
	}
	restoreEqual("after syncd prune")

	ok(t, nil, "restore", append([]string{"prune"}, r.flags("--identity", r.dataKey)...)...)
	after = map[string]bool{}
	for _, d := range []string{"data", "tree"} {
		for _, name := range repoObjects(t, r, d) {
			after[name] = true
			if !real[name] {
				t.Errorf("restore prune kept %s, not a real pack", name)
			}
		}
	}
	for name := range real {
		if !after[name] {
			t.Errorf("restore prune deleted the real pack %s", name)
		}
	}
	ok(t, nil, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", r.dataKey)...)...)
	restoreEqual("after restore prune")
}
