package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// diffJSON is restore diff --json's output.
type diffJSON struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Changes []struct {
		Change  string   `json:"change"`
		Path    string   `json:"path"`
		Type    string   `json:"type"`
		What    []string `json:"what"`
		Size    uint64   `json:"size"`
		OldSize *uint64  `json:"old_size"`
	} `json:"changes"`
	Summary struct {
		Added   struct{ Entries, Files, Bytes int64 }
		Removed struct{ Entries, Files, Bytes int64 }
		Changed struct {
			Entries, Content, Mode, MTime, Owner, Target int64
			OldBytes                                     int64 `json:"old_bytes"`
			Bytes                                        int64
		}
	} `json:"summary"`
}

func diffOf(t *testing.T, r *repo, a, b string) diffJSON {
	t.Helper()
	out := ok(t, nil, "restore", append([]string{"diff", "--json", a, b}, r.flags()...)...)
	var d diffJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("diff --json: %v in %q", err, out)
	}
	return d
}

func write(t *testing.T, p, data string, mode os.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestDiffNamesWhatChanged(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	write(t, filepath.Join(src, "content.txt"), "short", 0o644, old)
	write(t, filepath.Join(src, "mode.sh"), "echo\n", 0o644, old)
	write(t, filepath.Join(src, "mtime.txt"), "same", 0o644, old)
	write(t, filepath.Join(src, "gone.txt"), "bye!", 0o644, old)
	write(t, filepath.Join(src, "same", "deep", "f"), "unchanged", 0o644, old)
	if err := os.Symlink("content.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	a := r.snapshot(t, src)

	write(t, filepath.Join(src, "content.txt"), "longer!", 0o644, old) // content only: the mtime is put back
	if err := os.Chmod(filepath.Join(src, "mode.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(src, "mtime.txt"), old, old.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(src, "gone.txt"))
	write(t, filepath.Join(src, "new", "a"), "aaa", 0o644, old)
	write(t, filepath.Join(src, "new", "b"), "bbbbb", 0o600, old)
	b := r.snapshot(t, src)

	text := ok(t, nil, "restore", append([]string{"diff", a, b}, r.flags()...)...)
	want := []string{
		"M " + src + "/content.txt: content (5 B -> 7 B)",
		"- " + src + "/gone.txt (4 B)",
		"M " + src + "/mode.sh: mode 0644 -> 0755 (5 B)",
		"M " + src + "/mtime.txt: mtime (4 B)",
		"+ " + src + "/new/",
		"+ " + src + "/new/a (3 B)",
		"+ " + src + "/new/b (5 B)",
		"3 added (2 files, 8 B), 1 removed (1 files, 4 B), 3 changed (1 content, 1 mode, 1 mtime; files 14 B -> 16 B)",
	}
	if got := strings.Split(strings.TrimSuffix(text, "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("diff %s %s:\n%s\nwant:\n%s", a, b, text, strings.Join(want, "\n"))
	}

	d := diffOf(t, r, a, b)
	var got []string
	for _, c := range d.Changes {
		old := "-"
		if c.OldSize != nil {
			old = strings.Repeat("#", int(*c.OldSize))
		}
		got = append(got, strings.Join([]string{c.Change, strings.TrimPrefix(c.Path, src), c.Type, strings.Join(c.What, ","),
			strings.Repeat("#", int(c.Size)), old}, " "))
	}
	wantJSON := []string{
		"changed /content.txt file content ####### #####",
		"removed /gone.txt file  #### -",
		"changed /mode.sh file mode ##### #####",
		"changed /mtime.txt file mtime #### ####",
		"added /new dir   -",
		"added /new/a file  ### -",
		"added /new/b file  ##### -",
	}
	if !slices.Equal(got, wantJSON) {
		t.Errorf("diff --json changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantJSON, "\n"))
	}
	s := d.Summary
	if s.Added.Entries != 3 || s.Added.Files != 2 || s.Added.Bytes != 8 || s.Removed.Entries != 1 || s.Removed.Bytes != 4 ||
		s.Changed.Entries != 3 || s.Changed.Content != 1 || s.Changed.Mode != 1 || s.Changed.MTime != 1 ||
		s.Changed.OldBytes != 14 || s.Changed.Bytes != 16 {
		t.Errorf("diff --json summary = %+v", s)
	}
	if !strings.HasPrefix(d.From, a) || !strings.HasPrefix(d.To, b) {
		t.Errorf("from %s to %s, want %s… and %s…", d.From, d.To, a, b)
	}

	// The other way round: what was added is removed.
	back := diffOf(t, r, b, "latest")
	if len(back.Changes) != 0 {
		t.Errorf("diff of %s and latest (the same): %+v", b, back.Changes)
	}
	rev := diffOf(t, r, b, a)
	if rev.Summary.Removed.Entries != 3 || rev.Summary.Added.Entries != 1 || rev.Summary.Changed.Entries != 3 {
		t.Errorf("diff %s %s summary = %+v", b, a, rev.Summary)
	}
}

// TestDiffSkipsEqualSubtrees: a subtree with the same tree ID in both
// snapshots is not read. Its tree blob lives only in a tree pack that is
// then deleted: a diff that read it would fail.
func TestDiffSkipsEqualSubtrees(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, name := range []string{"a", "b", "c"} {
		write(t, filepath.Join(src, "same", "deep", name), name, 0o644, old)
	}
	write(t, filepath.Join(src, "other", "f"), "one", 0o644, old)
	r.snapshot(t, filepath.Join(src, "same")) // stores the trees of same/ (and above it)
	packs, err := filepath.Glob(filepath.Join(r.url, "tree", "*"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no tree pack after the first snapshot (%v)", err)
	}
	a := r.snapshot(t, src) // same/'s trees are in the index: not stored again
	write(t, filepath.Join(src, "other", "f"), "two", 0o644, old)
	b := r.snapshot(t, src)
	for _, p := range packs {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	d := diffOf(t, r, a, b)
	if len(d.Changes) != 1 || d.Changes[0].Path != src+"/other/f" || !slices.Equal(d.Changes[0].What, []string{"content"}) {
		t.Errorf("diff %s %s: %+v; want other/f changed in content", a, b, d.Changes)
	}
	// The walk does need same/'s trees where the other side lacks them.
	res := run(t, nil, "restore", append([]string{"diff", a, "--json", r.snapshot(t, filepath.Join(src, "other"))}, r.flags()...)...)
	if res.code != 1 || strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("diff that must read the deleted trees: want one error line, exit 1; %s", res)
	}
}

func TestDiffBadInput(t *testing.T) {
	r := newRepo(t)
	src := t.TempDir()
	write(t, filepath.Join(src, "f"), "x", 0o644, time.Now())
	a := r.snapshot(t, src)

	res := run(t, nil, "restore", append([]string{"diff", a, "zz"}, r.flags()...)...)
	oneLine(t, "diff with an unknown snapshot", res, 1, `"zz"`, "no matching snapshot")
	if res.stdout != "" {
		t.Errorf("diff with an unknown snapshot printed %q", res.stdout)
	}

	// a snapshot of another repository is not one of this repository's:
	// one --repo names where both are read, so the other is refused
	other := newRepo(t).snapshot(t, src)
	res = run(t, nil, "restore", append([]string{"diff", a, other}, r.flags()...)...)
	oneLine(t, "diff with another repository's snapshot", res, 1, `"`+other+`"`, "no matching snapshot")
	if res.stdout != "" {
		t.Errorf("diff with another repository's snapshot printed %q", res.stdout)
	}

	res = run(t, nil, "restore", append([]string{"diff", a, a}, r.flags()...)...)
	if res.code != 0 || res.stdout != "no changes\n" || res.stderr != "" {
		t.Errorf("diff of a snapshot with itself: want \"no changes\", exit 0; %s", res)
	}
	if d := diffOf(t, r, a, "latest"); len(d.Changes) != 0 || d.Summary.Changed.Entries != 0 {
		t.Errorf("diff --json of a snapshot with itself: %+v", d)
	}

	res = run(t, nil, "restore", append([]string{"diff", a}, r.flags()...)...)
	oneLine(t, "diff with one snapshot", res, 2, "two SNAPSHOTs")
}
