package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dirState lists every file below dir with its size, to show that a failed
// command wrote nothing.
func dirState(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			out[p] = fi.Size()
		}
		return nil
	})
	return out
}

func sameState(t *testing.T, what string, before, after map[string]int64) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("%s changed the repository: %d objects before, %d after", what, len(before), len(after))
	}
	for p, n := range before {
		if after[p] != n {
			t.Errorf("%s changed %s", what, p)
		}
	}
}

// oneLine checks an error is a single line that mentions each of want.
func oneLine(t *testing.T, what string, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit %d, want %d\n%s", what, r.code, code, r)
	}
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("%s: stderr is not one line: %q", what, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: stderr %q does not mention %q", what, r.stderr, w)
		}
	}
}

func TestBadKeys(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	r.snapshot(t, src)
	before := dirState(t, r.url)

	other := filepath.Join(t.TempDir(), "other.key")
	ok(t, nil, "syncd", "keygen", other)
	res := run(t, nil, "syncd", "snapshot", "--repo", r.url, "--index-key", other, src)
	oneLine(t, "snapshot with another index key", res, 1, other, "not this repository's index key")

	missing := filepath.Join(t.TempDir(), "missing.key")
	res = run(t, nil, "syncd", "snapshot", "--repo", r.url, "--index-key", missing, src)
	oneLine(t, "snapshot with a missing key file", res, 1, missing, "does not exist")

	open := filepath.Join(t.TempDir(), "open.key")
	data, _ := os.ReadFile(r.indexKey)
	os.WriteFile(open, data, 0o644)
	res = run(t, nil, "restore", "snapshots", "--repo", r.url, "--index-key", open)
	oneLine(t, "a key file readable by others", res, 1, open, "chmod 600")

	res = run(t, nil, "restore", "snapshots", "--repo", r.url)
	oneLine(t, "no index key", res, 2, "--index-key")

	garbage := filepath.Join(t.TempDir(), "garbage.key")
	os.WriteFile(garbage, []byte("not a key\n"), 0o600)
	res = run(t, nil, "syncd", "snapshot", "--repo", r.url, "--index-key", garbage, src)
	oneLine(t, "a key file that is not a key", res, 1, garbage)

	res = run(t, nil, "syncd", "init", "--repo", filepath.Join(t.TempDir(), "new"), "--index-key", r.indexKey, "--data-recipient", "age1nope")
	oneLine(t, "init with a bad recipient", res, 1, "age1nope")

	res = run(t, nil, "syncd", "init", "--repo", r.url, "--index-key", r.indexKey, "--data-recipient", r.recipient)
	oneLine(t, "init of an existing repository", res, 1, "already initialized")

	// environment variables stand in for the flags
	env := []string{"SYNCD_REPO=" + r.url, "SYNCD_INDEX_KEY=" + other}
	res = run(t, env, "restore", "snapshots")
	oneLine(t, "SYNCD_INDEX_KEY with another key", res, 1, other)
	sameState(t, "commands with bad keys", before, dirState(t, r.url))
}

func TestAmbiguousPrefixAndUnknownSnapshot(t *testing.T) {
	r := newRepo(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	// 17 snapshots: two of them share a first hex digit.
	seen := map[byte]string{}
	var a, b string
	for i := 0; i < 17 && a == ""; i++ {
		id := ok(t, nil, "syncd", "snapshot", "--repo", r.url, "--index-key", r.indexKey, "--tag", string(rune('a'+i)), src)
		id = strings.Fields(id)[1]
		if prev, dup := seen[id[0]]; dup {
			a, b = prev, id
		}
		seen[id[0]] = id
	}
	if a == "" {
		t.Fatal("no two snapshots share a first digit among 17")
	}
	res := run(t, nil, "restore", "ls", "--repo", r.url, "--index-key", r.indexKey, a[:1])
	oneLine(t, "an ambiguous prefix", res, 1, "ambiguous", a, b)
	res = run(t, nil, "restore", "ls", "--repo", r.url, "--index-key", r.indexKey, "zz")
	oneLine(t, "an unknown snapshot", res, 1, `"zz"`)
}

func TestTargetNotEmpty(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	r.snapshot(t, src)
	target := t.TempDir()
	keep := filepath.Join(target, "keep-me")
	os.WriteFile(keep, []byte("operator's file"), 0o644)
	res := run(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", target)...)...)
	oneLine(t, "restore into a non-empty target", res, 1, target, "--overwrite")
	if got := dirState(t, target); len(got) != 2 {
		t.Errorf("refused restore wrote into the target: %v", got)
	}
	// With --overwrite it restores and replaces a symlink standing where a
	// directory of the snapshot goes, without following it.
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(target, filepath.Dir(src)), 0o755)
	os.Symlink(outside, filepath.Join(target, src))
	ok(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", target, "--overwrite")...)...)
	sameTree(t, src, filepath.Join(target, src))
	if got := dirState(t, outside); len(got) != 1 {
		t.Errorf("restore wrote through a symlink in the target into %s: %v", outside, got)
	}
	if data, _ := os.ReadFile(keep); string(data) != "operator's file" {
		t.Errorf("--overwrite removed an unrelated file")
	}
}
