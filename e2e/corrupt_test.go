package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/local"
	"github.com/syncd/syncd/crypto"
)

// twoRuns makes a repository whose latest snapshot holds dir a (written by
// the first run, in its own pack) and dir b (written by the second run).
// It returns the source, and the pack objects of each run.
func twoRuns(t *testing.T) (r *repo, src string, packsA []string) {
	t.Helper()
	r = newRepo(t)
	src = filepath.Join(t.TempDir(), "src")
	for _, f := range []string{"a/one", "a/two"} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(src, f), []byte(strings.Repeat(f, 1000)), 0o644)
	}
	r.snapshot(t, src)
	first := packs(t, r)
	for _, f := range []string{"b/three", "b/four"} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(src, f), []byte(strings.Repeat(f, 1000)), 0o644)
	}
	r.snapshot(t, src)
	for p := range first {
		packsA = append(packsA, p)
	}
	if len(packsA) == 0 || len(packs(t, r)) == len(first) {
		t.Fatalf("want new data packs in each run; first run %v", first)
	}
	return r, src, packsA
}

func packs(t *testing.T, r *repo) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	ents, _ := os.ReadDir(filepath.Join(r.url, "data"))
	for _, e := range ents {
		out[filepath.Join(r.url, "data", e.Name())] = true
	}
	return out
}

func objects(t *testing.T, r *repo, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(r.url, dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, filepath.Join(r.url, dir, e.Name()))
	}
	return out
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	os.Chmod(path, 0o600)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string) {
	t.Helper()
	os.Chmod(path, 0o600)
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedPacks(t *testing.T) {
	cases := []struct {
		name     string
		damage   func(*testing.T, string)
		readData bool
	}{
		{"corrupted", flipByte, true},
		{"truncated", truncate, false},
		{"missing", func(t *testing.T, p string) { os.Remove(p) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, src, packsA := twoRuns(t)
			for _, p := range packsA {
				c.damage(t, p)
			}
			args := append([]string{"verify"}, r.flags("--identity", r.dataKey)...)
			if c.readData {
				args = append(args, "--read-data")
			}
			res := run(t, nil, "restore", args...)
			name := "data/" + filepath.Base(packsA[0])
			if res.code != 1 || !strings.Contains(res.stdout, name) ||
				!strings.Contains(res.stdout, filepath.Join(src, "a/one")) || strings.Contains(res.stdout, "b/three") {
				t.Errorf("verify must name %s and the files of a/, not b/: %s", name, res)
			}
			// The unaffected files restore, with exit 0.
			target := t.TempDir()
			ok(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", target,
				"--include", filepath.Join(src, "b"))...)...)
			sameTree(t, filepath.Join(src, "b"), filepath.Join(target, src, "b"))
			// A full restore restores b, reports a's files (exit 3), and
			// leaves no half-written file behind.
			full := t.TempDir()
			res = run(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", full)...)...)
			if res.code != 3 || !strings.Contains(res.stderr, filepath.Join(src, "a/one")) {
				t.Errorf("full restore with a damaged pack: want exit 3 naming a/one: %s", res)
			}
			for p := range dirState(t, full) {
				if strings.Contains(p, "/a/") || strings.Contains(filepath.Base(p), ".syncd-restore") {
					t.Errorf("left behind %s", p)
				}
			}
			sameTree(t, filepath.Join(src, "b"), filepath.Join(full, src, "b"))
			if c.readData {
				return // same size: only --read-data sees it, a snapshot's listing does not
			}
			// A new snapshot stores the lost blobs again: it restores whole.
			res = run(t, nil, "syncd", append(append([]string{"snapshot"}, r.flags("--host", "test")...), src)...)
			if res.code != 0 || !strings.Contains(res.stderr, "stored again") {
				t.Errorf("snapshot after losing a pack: want exit 0 and a warning: %s", res)
			}
			healed := t.TempDir()
			ok(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", healed)...)...)
			sameTree(t, src, filepath.Join(healed, src))
		})
	}
}

func TestDamagedIndexAndSnapshot(t *testing.T) {
	t.Run("missing index", func(t *testing.T) {
		r, _, _ := twoRuns(t)
		idx := objects(t, r, "index")
		os.Remove(idx[0])
		res := run(t, nil, "restore", append([]string{"verify"}, r.flags()...)...)
		if res.code != 1 || !strings.Contains(res.stdout, "not in any index") {
			t.Errorf("verify with a missing index object: %s", res)
		}
	})
	t.Run("corrupted index", func(t *testing.T) {
		r, _, _ := twoRuns(t)
		idx := objects(t, r, "index")
		flipByte(t, idx[0])
		res := run(t, nil, "restore", append([]string{"verify"}, r.flags()...)...)
		if res.code != 1 || !strings.Contains(res.stdout, "index/"+filepath.Base(idx[0])) {
			t.Errorf("verify must name index/%s: %s", filepath.Base(idx[0]), res)
		}
	})
	t.Run("corrupted snapshot", func(t *testing.T) {
		r, src, _ := twoRuns(t)
		snaps := objects(t, r, "snapshots")
		flipByte(t, snaps[0])
		res := run(t, nil, "restore", append([]string{"verify"}, r.flags()...)...)
		if res.code != 1 || !strings.Contains(res.stdout, "snapshots/"+filepath.Base(snaps[0])) {
			t.Errorf("verify must name the snapshot object: %s", res)
		}
		// the other snapshot is still listed and restores
		list := run(t, nil, "restore", append([]string{"snapshots"}, r.flags()...)...)
		if !strings.Contains(list.stdout, filepath.Base(snaps[1])[:8]) || !strings.Contains(list.stderr, "snapshots/"+filepath.Base(snaps[0])) {
			t.Errorf("snapshots must list the good one and warn about the bad one: %s", list)
		}
		target := t.TempDir()
		ok(t, nil, "restore", append([]string{filepath.Base(snaps[1])[:12]}, r.flags("--identity", r.dataKey, "--target", target)...)...)
		if _, err := os.Stat(filepath.Join(target, src)); err != nil {
			t.Errorf("the intact snapshot did not restore: %v", err)
		}
	})
}

// openAsWriter opens the local repository r with its index key alone, as a
// writer node holds it, in a write session (program names its lock).
func openAsWriter(t *testing.T, r *repo, program string) (*chunkstore.Repository, *chunkstore.Session) {
	t.Helper()
	return openWriteSession(t, r, chunkstore.WriteOptions{LockOptions: chunkstore.LockOptions{Program: program}})
}

// openWriteSession opens the local repository r with its index key alone
// in a write session with opts.
func openWriteSession(t *testing.T, r *repo, opts chunkstore.WriteOptions) (*chunkstore.Repository, *chunkstore.Session) {
	t.Helper()
	repo := openLocal(t, r)
	sess, err := repo.BeginWrite(context.Background(), opts)
	if err != nil {
		repo.Close()
		t.Fatal(err)
	}
	return repo, sess
}

// openLocal opens the local repository r with its index key alone, as
// a writer node holds it. The caller closes it.
func openLocal(t *testing.T, r *repo) *chunkstore.Repository {
	t.Helper()
	be, err := local.Open(r.url)
	if err != nil {
		t.Fatal(err)
	}
	key, err := crypto.LoadIndexKey(r.indexKey)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := chunkstore.Open(context.Background(), be, key)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// craft writes a snapshot whose root tree is the given JSON, using the
// repository's own keys: what an attacker with the index key could write.
func craft(t *testing.T, r *repo, treeJSON string) {
	t.Helper()
	ctx := context.Background()
	repo, sess := openAsWriter(t, r, "")
	defer repo.Close()
	defer sess.Close()
	s := repo.NewSaver(ctx, chunkstore.SaverOptions{})
	data := []byte(treeJSON)
	id := repo.BlobID(repo.NewHasher(), data)
	if _, err := s.Save(chunkstore.TreeBlob, id, data); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.SaveSnapshot(ctx, &chunkstore.Snapshot{Host: "evil", Paths: []string{"/x"}, Tree: id}); err != nil {
		t.Fatal(err)
	}
}

func TestCraftedTreesAreRefused(t *testing.T) {
	const sub = `"subtree":"0000000000000000000000000000000000000000000000000000000000000000"`
	cases := map[string]string{
		"dot-dot":          `{"nodes":[{"name":"..","type":"dir","mode":493,"mtime":"2020-01-01T00:00:00Z",` + sub + `}]}`,
		"absolute":         `{"nodes":[{"name":"/etc/cron.d/evil","type":"file","mode":420,"mtime":"2020-01-01T00:00:00Z"}]}`,
		"slash":            `{"nodes":[{"name":"a/../../evil","type":"file","mode":420,"mtime":"2020-01-01T00:00:00Z"}]}`,
		"symlink then dir": `{"nodes":[{"name":"a","type":"symlink","target":"/tmp","mode":511,"mtime":"2020-01-01T00:00:00Z"},{"name":"a","type":"dir","mode":493,"mtime":"2020-01-01T00:00:00Z",` + sub + `}]}`,
		"raw name escape":  `{"nodes":[{"name":"x","raw_name":"Li4=","type":"file","mode":420,"mtime":"2020-01-01T00:00:00Z"}]}`,
	}
	for name, tree := range cases {
		t.Run(name, func(t *testing.T) {
			r := newRepo(t)
			craft(t, r, tree)
			parent := t.TempDir()
			target := filepath.Join(parent, "target")
			res := run(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", target)...)...)
			if res.code != 1 || !strings.Contains(res.stderr, "invalid") && !strings.Contains(res.stderr, "duplicate") && !strings.Contains(res.stderr, "disagrees") {
				t.Errorf("crafted tree %s: want a refusal: %s", name, res)
			}
			for p := range dirState(t, parent) {
				if p != parent && p != target {
					t.Errorf("crafted tree %s: %s was written", name, p)
				}
			}
			ls := run(t, nil, "restore", append([]string{"ls", "latest"}, r.flags()...)...)
			if ls.code != 1 {
				t.Errorf("ls of crafted tree %s: want exit 1: %s", name, ls)
			}
		})
	}
}
