package e2e

import (
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pruneRepo makes a repository with six snapshots of a changing tree and
// forgets the first three (their snapshot objects go, as forget does). It
// returns the repository and the tree, which holds the content of the
// latest snapshot.
func pruneRepo(t *testing.T) (*repo, string) {
	t.Helper()
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "site")
	for i := range 6 {
		for k := range 4 {
			if (i+k)%2 == 0 || i == 0 {
				writeNoise(t, filepath.Join(src, fmt.Sprintf("d%d", k), "f.bin"), 40000+k*1000)
			}
		}
		os.Remove(filepath.Join(src, fmt.Sprintf("gone%d", i-1)))
		writeNoise(t, filepath.Join(src, fmt.Sprintf("gone%d", i)), 30000)
		r.snapshot(t, src)
	}
	snaps := repoObjects(t, r, "snapshots")
	slices.Sort(snaps)
	var times []string
	for _, line := range strings.Split(ok(t, nil, "restore", append([]string{"snapshots"}, r.flags()...)...), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 2 {
			times = append(times, f[0])
		}
	}
	if len(times) != 6 {
		t.Fatalf("restore snapshots listed %d snapshots, want 6", len(times))
	}
	for _, short := range times[:3] { // the oldest three
		for _, name := range snaps {
			if strings.HasPrefix(filepath.Base(name), short) {
				if err := os.Remove(filepath.Join(r.url, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return r, src
}

func writeNoise(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// repoObjects lists the objects under dir of the repository, as "dir/name".
func repoObjects(t *testing.T, r *repo, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(r.url, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(r.url, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// allObjects lists every object of the repository.
func allObjects(t *testing.T, r *repo) []string {
	var out []string
	for _, d := range []string{"data", "tree", "index", "snapshots", "locks"} {
		out = append(out, repoObjects(t, r, d)...)
	}
	slices.Sort(out)
	return out
}

// verifyRestore checks the repository with verify --read-data and that the
// latest snapshot restores to src.
func verifyRestore(t *testing.T, r *repo, src string) string {
	t.Helper()
	out := ok(t, nil, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", r.dataKey)...)...)
	target := filepath.Join(t.TempDir(), "out")
	ok(t, nil, "restore", append([]string{"latest", "--target", target}, r.flags("--identity", r.dataKey)...)...)
	sameTree(t, src, filepath.Join(target, src))
	return out
}

// kill -9 at several points of a prune: the repository still verifies,
// the next prune completes (breaking the dead process's lock) and leaves
// nothing unreferenced.
func TestPruneKilled(t *testing.T) {
	for _, at := range []string{"pack written:1", "index written:1", "index removed:1", "pack deleted:1", "pack deleted:3"} {
		t.Run(strings.ReplaceAll(at, " ", "_"), func(t *testing.T) {
			r, src := pruneRepo(t)
			res := run(t, []string{"SYNCD_TEST_PRUNE_KILL=" + at}, "restore",
				append([]string{"prune", "--repack", "--max-unused", "0"}, r.flags("--identity", r.dataKey)...)...)
			if res.code != -1 {
				t.Fatalf("prune was not killed at %q: %s", at, res)
			}
			if locks := repoObjects(t, r, "locks"); len(locks) != 1 {
				t.Errorf("locks after the kill: %v, want the dead prune's", locks)
			}
			verifyRestore(t, r, src)
			res = run(t, nil, "syncd", append([]string{"prune"}, r.flags()...)...)
			if res.code != 0 {
				t.Fatalf("prune after the kill: %s", res)
			}
			if !strings.Contains(res.stderr, "removing stale lock") || !strings.Contains(res.stderr, "no longer runs") {
				t.Errorf("the dead prune's lock was not reported: %s", res)
			}
			out := verifyRestore(t, r, src)
			if !strings.Contains(out, "; 0 unreferenced packs") {
				t.Errorf("verify after the second prune: %s", out)
			}
			if locks := repoObjects(t, r, "locks"); len(locks) != 0 {
				t.Errorf("locks left: %v", locks)
			}
		})
	}
}

// An index object that cannot be read stops prune before it deletes
// anything, with a one-line error and exit code 1.
func TestPruneUnreadableIndex(t *testing.T) {
	r, src := pruneRepo(t)
	idx := repoObjects(t, r, "index")
	p := filepath.Join(r.url, idx[0])
	os.Chmod(p, 0o600)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x55
	if err := os.WriteFile(p, b, 0o400); err != nil {
		t.Fatal(err)
	}
	before := allObjects(t, r)
	for _, prog := range []string{"syncd", "restore"} {
		args := append([]string{"prune"}, r.flags()...)
		if prog == "restore" {
			args = append(args, "--identity", r.dataKey, "--repack")
		}
		res := run(t, nil, prog, args...)
		if res.code != 1 {
			t.Fatalf("%s prune with a damaged index: %s", prog, res)
		}
		msg := strings.TrimSpace(res.stderr)
		if strings.Contains(msg, "\n") || !strings.Contains(msg, idx[0]) || !strings.Contains(msg, "prune stopped before deleting anything") {
			t.Errorf("%s prune: want one line naming %s and saying nothing was deleted, got %q", prog, idx[0], msg)
		}
		if after := allObjects(t, r); !slices.Equal(before, after) {
			t.Errorf("%s prune changed the repository:\nbefore %v\nafter  %v", prog, before, after)
		}
	}
	_ = src
}
