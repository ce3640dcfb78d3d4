package transfer

import (
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/state"
)

// copyTree copies the files, directories and links of src into dst with
// their modes and mtimes, as a restore of a snapshot does.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if strings.HasPrefix(d.Name(), ".syncd-") {
			return nil
		}
		to := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(to, fi.Mode().Perm()); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
				return err
			}
		}
		return os.Chtimes(to, fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAdoptRestoredCopy: node c starts with a new index on an old copy
// of a's folder (a snapshot restored), while a changed, added, deleted,
// renamed and chmodded files since. c waits for its first scan, then
// takes a's versions: it ends equal to a, fetches only the new content,
// keeps no conflict copy, and a gets back neither an old version nor a
// deleted file; a file only c has is announced once c has caught up.
func TestAdoptRestoredCopy(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	c := newTestNode(t, "c", config.SendReceive)
	connect(a, c)
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 12 {
		rel := fmt.Sprintf("d%d/f%d.bin", i%3, i)
		p := make([]byte, 20<<10)
		rand.Read(p)
		a.write(t, rel, string(p))
		os.Chtimes(filepath.Join(a.dir, rel), old, old.Add(time.Duration(i)*time.Second))
	}
	os.Symlink("d0/f0.bin", filepath.Join(a.dir, "link"))
	a.index(t)
	a.start(t)
	snap := t.TempDir()
	copyTree(t, a.dir, snap)

	var round int64
	for _, rel := range []string{"d0/f3.bin", "new/n.bin"} {
		p := make([]byte, 30<<10)
		rand.Read(p)
		round += int64(len(p))
		a.write(t, rel, string(p))
	}
	os.Remove(filepath.Join(a.dir, "d1/f4.bin"))
	os.Rename(filepath.Join(a.dir, "d2/f5.bin"), filepath.Join(a.dir, "d0/f5-moved.bin"))
	os.Chmod(filepath.Join(a.dir, "d0/f6.bin"), 0o600)
	a.index(t)

	copyTree(t, snap, c.dir)
	c.write(t, "only-on-c.txt", "restored by hand")
	c.start(t)
	eventually(t, "c waiting for its first scan", func() bool {
		return strings.Contains(c.log.String(), "waiting for the folder's first scan")
	})
	if got := c.f.Local.Index().Seq(); got != 0 {
		t.Fatalf("c recorded %d changes before its first scan, want none", got)
	}
	c.index(t)
	eventually(t, "c's own file at a", func() bool {
		_, err := os.Stat(filepath.Join(a.dir, "only-on-c.txt"))
		return err == nil
	})
	if !poll(func() bool { c.index(t); return sameTreesBut(t, a, c, "only-on-c.txt") }) {
		t.Fatalf("trees differ:\n%s\nlog c:\n%s", diffTrees(t, a, c), c.log)
	}
	for _, n := range []*testNode{a, c} {
		for rel := range tree(t, n.dir) {
			if strings.Contains(rel, ".sync-conflict-") {
				t.Errorf("%s has a conflict copy %s", n.name, rel)
			}
		}
	}
	for _, rel := range []string{"d1/f4.bin", "d2/f5.bin"} {
		if _, err := os.Lstat(filepath.Join(a.dir, rel)); err == nil {
			t.Errorf("%s, gone on a since the copy, is back on a", rel)
		}
	}
	if fi, err := os.Stat(filepath.Join(a.dir, "d0/f6.bin")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a's chmod of d0/f6.bin was undone: %v %v", fi.Mode(), err)
	}
	m := c.node.PeerMetrics()[0]
	if limit := round * 11 / 10; int64(m.FetchedBytes) > limit || m.FetchedBytes == 0 {
		t.Errorf("c fetched %d bytes from a, want about the %d bytes changed since the copy", m.FetchedBytes, round)
	}
	if c.f.Local.Index().Adoption() != state.NotAdopting {
		t.Errorf("c still adopts after catching up")
	}
}

// sameTreesBut reports whether a and b hold the same tree but for the
// path skip ("": none).
func sameTreesBut(t *testing.T, a, b *testNode, skip string) bool {
	ta, tb := tree(t, a.dir), tree(t, b.dir)
	delete(ta, skip)
	delete(tb, skip)
	if len(ta) != len(tb) {
		return false
	}
	for k, v := range ta {
		if tb[k] != v {
			return false
		}
	}
	return true
}

// TestAdoptKeepsNewerLocalEdit: a file found at c's first scan that is
// newer than a's version of it (an edit a never had: c's index was lost)
// takes a's version, and c's is kept as a conflict copy, which a gets too
// (the trees end equal);
// a file found older than a's version is replaced without a copy.
func TestAdoptKeepsNewerLocalEdit(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	c := newTestNode(t, "c", config.SendReceive)
	connect(a, c)
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, rel := range []string{"edited.txt", "older.txt"} {
		a.write(t, rel, "a's version of "+rel)
		os.Chtimes(filepath.Join(a.dir, rel), old, old)
	}
	a.index(t)
	a.start(t)
	c.write(t, "edited.txt", "c's edit, newer")
	c.write(t, "older.txt", "c's old copy")
	os.Chtimes(filepath.Join(c.dir, "older.txt"), old.Add(-time.Hour), old.Add(-time.Hour))
	c.start(t)
	c.index(t)
	if !poll(func() bool { c.index(t); return sameTrees(t, a, c) }) {
		t.Fatalf("trees differ:\n%s\nlog c:\n%s", diffTrees(t, a, c), c.log)
	}
	for rel, want := range map[string]string{"edited.txt": "a's version of edited.txt", "older.txt": "a's version of older.txt"} {
		if got, _ := os.ReadFile(filepath.Join(c.dir, rel)); string(got) != want {
			t.Errorf("c's %s = %q, want %q", rel, got, want)
		}
	}
	m, _ := filepath.Glob(filepath.Join(a.dir, "edited.sync-conflict-*.txt"))
	if len(m) != 1 {
		t.Fatalf("conflict copies of edited.txt on a: %v, want one (as on c)", m)
	}
	if got, _ := os.ReadFile(m[0]); string(got) != "c's edit, newer" {
		t.Errorf("the conflict copy holds %q, want c's edit", got)
	}
	if m, _ := filepath.Glob(filepath.Join(c.dir, "older.sync-conflict-*")); len(m) != 0 {
		t.Errorf("c's older copy was kept as %v, want no copy", m)
	}
}
