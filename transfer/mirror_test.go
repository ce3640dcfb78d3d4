package transfer

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/clock/clocktest"
)

// pair returns two started nodes that share the folder.
func pair(t *testing.T) (a, b *testNode) {
	a = newTestNode(t, "a", config.SendReceive)
	b = newTestNode(t, "b", config.SendReceive)
	connect(a, b)
	a.start(t)
	b.start(t)
	return a, b
}

// fakePair is pair with the nodes on a fake clock (see onFakeClock).
func fakePair(t *testing.T) (a, b *testNode, clk *clocktest.Fake) {
	a = newTestNode(t, "a", config.SendReceive)
	b = newTestNode(t, "b", config.SendReceive)
	clk = onFakeClock(a, b)
	connect(a, b)
	a.start(t)
	b.start(t)
	return a, b, clk
}

// converge waits until a and b hold the same tree, indexing both as it
// goes.
func converge(t *testing.T, a, b *testNode) {
	t.Helper()
	convergeOn(t, nil, a, b)
}

// convergeOn is converge for nodes on the fake clock clk (nil: none),
// which it moves as drive does.
func convergeOn(t *testing.T, clk *clocktest.Fake, a, b *testNode) {
	t.Helper()
	same := poll(func() bool {
		if sameTrees(t, a, b) {
			return true
		}
		a.index(t)
		b.index(t)
		if clk != nil {
			clk.Skip()
		}
		return false
	})
	if !same {
		t.Fatalf("trees differ:\n%s\nlog a:\n%s\nlog b:\n%s", diffTrees(t, a, b), a.log, b.log)
	}
}

// settled reports whether a and b have each taken all of the other's
// changes: per their status, nothing is being applied or waits for a
// retry, nothing of the other is left to ask for, and the other has
// asked for everything after its last change.
func settled(a, b *testNode) bool {
	for _, n := range []*testNode{a, b} {
		for _, ps := range n.node.Status() {
			if !ps.Connected || ps.LagFiles != 0 || ps.Behind != 0 || ps.SendFiles != 0 {
				return false
			}
		}
	}
	return true
}

// Files, directories, symlinks, modes and mtimes travel both ways;
// deletes and renames too.
func TestMirror(t *testing.T) {
	a, b := pair(t)
	a.write(t, "dir/sub/x.txt", "hello")
	a.write(t, "empty", "")
	big := make([]byte, 16<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(a.dir, "big.bin"), big, 0o640); err != nil {
		t.Fatal(err)
	}
	// modes the receiver's create does not give (a temporary file is
	// made with its permission bits and owner rw, less the umask): set
	// afterwards, through the open file
	modes := map[string]fs.FileMode{"all.txt": 0o666, "suid": 0o755 | fs.ModeSetuid, "ro.txt": 0o444}
	for name, mode := range modes {
		p := filepath.Join(a.dir, name)
		if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("dir/sub/x.txt", filepath.Join(a.dir, "link"))
	os.Chmod(filepath.Join(a.dir, "dir"), 0o750)
	old := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	os.Chtimes(filepath.Join(a.dir, "dir/sub/x.txt"), old, old)
	a.index(t)
	converge(t, a, b)
	// on both: a wrong mode on b would be b's change, and travel back
	for name, mode := range modes {
		for _, n := range []*testNode{a, b} {
			if fi, err := os.Stat(filepath.Join(n.dir, name)); err != nil || fi.Mode() != mode {
				t.Errorf("%s on %s: %v, %v; want %v", name, n.name, fi.Mode(), err, mode)
			}
		}
	}

	b.write(t, "from-b", "b was here")
	b.index(t)
	converge(t, a, b)

	// a rename sends no content: the receiver finds the chunks locally
	before := a.node.blocksServed.Load()
	os.Rename(filepath.Join(a.dir, "big.bin"), filepath.Join(a.dir, "moved.bin"))
	os.Remove(filepath.Join(a.dir, "dir/sub/x.txt"))
	os.Remove(filepath.Join(a.dir, "dir/sub"))
	a.index(t)
	converge(t, a, b)
	if got := a.node.blocksServed.Load() - before; got != 0 {
		t.Errorf("a rename fetched %d bytes of content", got)
	}
	if _, err := os.Lstat(filepath.Join(b.dir, "dir/sub")); !os.IsNotExist(err) {
		t.Errorf("deleted directory still on b: %v", err)
	}
	// an edit in the middle of a large file fetches about one chunk
	before = a.node.blocksServed.Load()
	copy(big[8<<20:], "an edit in the middle")
	os.WriteFile(filepath.Join(a.dir, "moved.bin"), big, 0o640)
	a.index(t)
	converge(t, a, b)
	if got := a.node.blocksServed.Load() - before; got == 0 || got > int64(len(big)/2) {
		t.Errorf("an edit fetched %d bytes", got)
	}
	// nothing echoes back: once each node has taken all of the other's
	// changes, indexing both again changes neither index (and a change
	// that bounced back and forth would keep them from settling at all)
	eventually(t, "a and b settled (a change bouncing between them keeps them apart)", func() bool { return settled(a, b) })
	seqA, seqB := a.f.Local.Index().Seq(), b.f.Local.Index().Seq()
	a.index(t)
	b.index(t)
	eventually(t, "a and b settled again", func() bool { return settled(a, b) })
	if a.f.Local.Index().Seq() != seqA || b.f.Local.Index().Seq() != seqB {
		t.Errorf("indexes keep changing: a %d→%d, b %d→%d", seqA, a.f.Local.Index().Seq(), seqB, b.f.Local.Index().Seq())
	}
	if strings.Contains(a.log.String()+b.log.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s\n%s", a.log, b.log)
	}
}

// Concurrent edits of one file: every node ends with the same winner, and
// the loser is kept as a conflict copy.
func TestConflict(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	connect(a, b)
	a.write(t, "f.txt", "base")
	a.start(t)
	b.start(t)
	a.index(t)
	converge(t, a, b)

	// both edit while apart: b's edit is later, so it wins
	// (neither is indexed yet, so neither travels before both are made)
	a.write(t, "f.txt", "edit on a")
	t1 := time.Now().Add(-time.Minute)
	os.Chtimes(filepath.Join(a.dir, "f.txt"), t1, t1)
	b.write(t, "f.txt", "edit on b, later")
	a.index(t)
	b.index(t)
	converge(t, a, b)
	got, _ := os.ReadFile(filepath.Join(a.dir, "f.txt"))
	if string(got) != "edit on b, later" {
		t.Errorf("winner %q", got)
	}
	m, _ := filepath.Glob(filepath.Join(a.dir, "f.sync-conflict-*-"+a.id.ID.Short()+".txt"))
	if len(m) != 1 {
		t.Fatalf("conflict copies %v in %v", m, tree(t, a.dir))
	}
	if c, _ := os.ReadFile(m[0]); string(c) != "edit on a" {
		t.Errorf("conflict copy holds %q", c)
	}
}

// A delete made without knowing of an edit loses to the edit.
func TestEditBeatsDelete(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	connect(a, b)
	a.write(t, "f.txt", "base")
	a.start(t)
	b.start(t)
	a.index(t)
	converge(t, a, b)
	os.Remove(filepath.Join(a.dir, "f.txt"))
	b.write(t, "f.txt", "edited")
	a.index(t)
	b.index(t)
	converge(t, a, b)
	if got, _ := os.ReadFile(filepath.Join(a.dir, "f.txt")); !bytes.Equal(got, []byte("edited")) {
		t.Errorf("a has %q", got)
	}
}

// A directory renamed with more entries than one batch holds: its delete
// and its contents' deletes come in different batches, and the old
// directory still goes.
func TestRenameLargeDirectory(t *testing.T) {
	a, b := pair(t)
	for i := range 3 {
		for j := range 400 {
			a.write(t, fmt.Sprintf("old/s%d/f%d", i, j), fmt.Sprintf("content %d %d", i, j))
		}
	}
	a.index(t)
	converge(t, a, b)
	before := a.node.blocksServed.Load()
	if err := os.Rename(filepath.Join(a.dir, "old"), filepath.Join(a.dir, "new")); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	converge(t, a, b)
	if _, err := os.Lstat(filepath.Join(b.dir, "old")); !os.IsNotExist(err) {
		t.Errorf("old directory still on b: %v", err)
	}
	if got := a.node.blocksServed.Load() - before; got != 0 {
		t.Errorf("the rename fetched %d bytes", got)
	}
}

// A tree of several batches, half of it copies of the other half, is
// mirrored whole, and a file whose content arrived in an earlier batch is
// built from the local copy, not fetched again: whether that batch was
// committed already or is being committed while this one is prepared
// (then its files are read under their temporary or final names).
func TestManyBatchesDeduplicated(t *testing.T) {
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	connect(a, b)
	const n = 1500
	var unique int64
	for i := range n {
		content := fmt.Sprintf("%0200d", i)
		unique += int64(len(content))
		a.write(t, fmt.Sprintf("d1/f%04d", i), content)
		a.write(t, fmt.Sprintf("d2/f%04d", i), content)
	}
	a.index(t)
	a.start(t)
	b.start(t)
	converge(t, a, b)
	// d1 travels once; d2 comes from b's own files.
	if got := a.node.blocksServed.Load(); got < unique || got > unique+unique/20 {
		t.Errorf("served %d bytes for %d of distinct content (and as much again copied)", got, unique)
	}
}

// A batch that removes (or adds) an entry of a directory it does not
// apply an entry of itself records the directory's new mtime and ctime:
// indexing the replica afterwards changes nothing.
func TestAppliedChangeRecordsItsDirectory(t *testing.T) {
	a, b := pair(t)
	a.write(t, "dir/sub/x.txt", "hello")
	a.write(t, "dir/keep.txt", "kept")
	a.index(t)
	converge(t, a, b)
	eventually(t, "a and b settled", func() bool { return settled(a, b) })
	os.Remove(filepath.Join(a.dir, "dir/sub/x.txt"))
	os.Remove(filepath.Join(a.dir, "dir/sub"))
	a.write(t, "dir/new.txt", "new")
	a.index(t)
	eventually(t, "b applied the deletes and the new file", func() bool {
		_, err1 := os.Lstat(filepath.Join(b.dir, "dir/sub"))
		_, err2 := os.Lstat(filepath.Join(b.dir, "dir/new.txt"))
		return os.IsNotExist(err1) && err2 == nil && settled(a, b)
	})
	seq := b.f.Local.Index().Seq()
	b.index(t)
	if got := b.f.Local.Index().Seq(); got != seq {
		t.Errorf("indexing b after the batch recorded %d changes (its directory's times were not recorded)", got-seq)
	}
}
