package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snapTimes lists the snapshots' host and time with the given flags.
func snapTimes(t *testing.T, flags ...string) []string {
	t.Helper()
	var list []struct{ Host, Time string }
	out := ok(t, nil, "restore", append([]string{"snapshots", "--json"}, flags...)...)
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("snapshots --json: %v\n%s", err, out)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.Host+" "+s.Time)
	}
	return got
}

// metaLeft counts the objects in the repository's root metadata
// directories (a generation moves them under g-…/).
func metaLeft(t *testing.T, r *repo) int {
	n := 0
	for _, d := range []string{"index", "tree", "snapshots"} {
		ents, _ := os.ReadDir(filepath.Join(r.url, d))
		n += len(ents)
	}
	return n
}

// TestRotateIndexKey: after restore key rotate-index the new key (and the
// data identity alone) reads every snapshot, verifies every byte and
// restores; the chunk-ID key is kept (an unchanged tree adds no blob); the
// old key is refused by every command; no metadata is left under the old
// names. Killed just before the switch, the old key still reads everything
// and the new one is refused; killed just after, the reverse; a second run
// finishes either way.
func TestRotateIndexKey(t *testing.T) {
	setup := func() (*repo, string, []string) {
		r := newRepo(t)
		src := filepath.Join(t.TempDir(), "src")
		makeAwkward(t, src)
		r.snapshot(t, src)
		os.WriteFile(filepath.Join(src, "new.txt"), []byte("second"), 0o644)
		r.snapshot(t, src)
		return r, src, snapTimes(t, r.flags()...)
	}
	newFlags := func(r *repo, key string, extra ...string) []string {
		return append([]string{"--repo", r.url, "--index-key", key}, extra...)
	}
	readsAll := func(r *repo, src, key string, want []string) {
		t.Helper()
		if got := snapTimes(t, newFlags(r, key)...); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("snapshots with %s: %v, want %v", filepath.Base(key), got, want)
		}
		ok(t, nil, "restore", append([]string{"verify", "--read-data"}, newFlags(r, key, "--identity", r.dataKey)...)...)
		target := filepath.Join(t.TempDir(), "r")
		ok(t, nil, "restore", append([]string{"latest", "--target", target}, newFlags(r, key, "--identity", r.dataKey)...)...)
		sameTree(t, src, filepath.Join(target, src))
	}
	refused := func(r *repo, key string) {
		t.Helper()
		res := run(t, nil, "restore", append([]string{"snapshots"}, newFlags(r, key)...)...)
		oneLine(t, "snapshots with "+filepath.Base(key), res, 1, "is not this repository's index key")
	}

	r, src, want := setup()
	newKey := filepath.Join(t.TempDir(), "keys", "index2.key")
	out := ok(t, nil, "restore", append([]string{"key", "rotate-index", "--new-index-key", newKey}, r.flags()...)...)
	if !strings.Contains(out, "index key rotated") {
		t.Errorf("rotate-index: %s", out)
	}
	readsAll(r, src, newKey, want)
	refused(r, r.indexKey)
	res := run(t, nil, "syncd", append([]string{"snapshot"}, append(r.flags(), src)...)...)
	oneLine(t, "syncd snapshot with the old key", res, 1, "is not this repository's index key")
	if n := metaLeft(t, r); n != 0 {
		t.Errorf("%d metadata objects left under the old names", n)
	}
	// prune works in the new generation, and the repository still verifies
	ok(t, nil, "syncd", append([]string{"prune"}, newFlags(r, newKey)...)...)
	readsAll(r, src, newKey, want)
	// the data identity alone opens the new sealed key
	if got := snapTimes(t, "--repo", r.url, "--identity", r.dataKey); len(got) != len(want) {
		t.Errorf("snapshots with the data identity alone: %v", got)
	}
	// read and hashed again (--force), the unchanged files add no content:
	// the chunk-ID key did not change (the few hundred bytes are the
	// trees of the directories above src, whose mtimes the test changed)
	var sn struct {
		Stats struct {
			FilesRead  int   `json:"files_read"`
			BytesAdded int64 `json:"bytes_added"`
		}
	}
	decode(t, ok(t, nil, "syncd", append([]string{"snapshot", "--force", "--json", "--host", "test"}, newFlags(r, newKey, src)...)...), &sn)
	if sn.Stats.FilesRead == 0 || sn.Stats.BytesAdded > 4096 {
		t.Errorf("snapshot --force after the rotation: %+v, want files read and no content stored again (chunk-ID key changed?)", sn.Stats)
	}

	// killed before the switch: the old key reads all, the new is refused
	r, src, want = setup()
	newKey = filepath.Join(t.TempDir(), "index2.key")
	args := append([]string{"key", "rotate-index", "--new-index-key", newKey}, r.flags()...)
	if res := run(t, []string{"SYNCD_TEST_ROTATE_KILL=staged:1"}, "restore", args...); res.code == 0 {
		t.Fatalf("rotate-index killed before the switch: %s", res)
	}
	readsAll(r, src, r.indexKey, want)
	refused(r, newKey)
	ok(t, nil, "restore", args...)
	readsAll(r, src, newKey, want)
	refused(r, r.indexKey)

	// killed after the switch: the new key reads all, the old is refused
	r, src, want = setup()
	newKey = filepath.Join(t.TempDir(), "index2.key")
	args = append([]string{"key", "rotate-index", "--new-index-key", newKey}, r.flags()...)
	if res := run(t, []string{"SYNCD_TEST_ROTATE_KILL=switched:1"}, "restore", args...); res.code == 0 {
		t.Fatalf("rotate-index killed after the switch: %s", res)
	}
	readsAll(r, src, newKey, want)
	refused(r, r.indexKey)
	if metaLeft(t, r) == 0 {
		t.Fatal("killed just after the switch, yet the old metadata is gone")
	}
	ok(t, nil, "restore", append([]string{"key", "rotate-index", "--new-index-key", newKey}, newFlags(r, newKey)...)...)
	if n := metaLeft(t, r); n != 0 {
		t.Errorf("a second run with the new key left %d old metadata objects", n)
	}
	readsAll(r, src, newKey, want)
}
