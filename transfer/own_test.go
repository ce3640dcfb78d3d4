package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/transfer/wire"
)

// The watcher's reports of what the receiver wrote are not indexed again,
// however often they come; a report of anything touched since is.
func TestNotOwn(t *testing.T) {
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	connect(a, b)
	for _, p := range []string{"f1", "f2", "d/f3", "e/f4", "gone"} {
		a.write(t, p, "content of "+p)
	}
	a.index(t)
	a.start(t)
	b.start(t)
	// noted: the watcher's reports of paths are all dropped as b's own
	noted := func(paths ...string) func() bool {
		return func() bool { return len(b.f.Local.NotOwn(slices.Clone(paths))) == 0 }
	}
	eventually(t, "b's writes noted", noted("f1", "f2", "d", "d/f3", "e", "gone"))
	// a file made in a directory the receiver made changes the
	// directory's times, not whose it is: the file is reported itself
	b.write(t, "d/local.txt", "made on b")
	if got := b.f.Local.NotOwn([]string{"f1", "d", "d/f3", "d/local.txt"}); !slices.Equal(got, []string{"d/local.txt"}) {
		t.Errorf("left to index %v, want only d/local.txt", got)
	}
	if err := os.Chmod(filepath.Join(b.dir, "e"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got := b.f.Local.NotOwn([]string{"e"}); !slices.Equal(got, []string{"e"}) {
		t.Errorf("a directory whose mode changed on b was dropped: %v", got)
	}
	if got := b.f.Local.NotOwn([]string{"f1", "unknown"}); !slices.Equal(got, []string{"unknown"}) {
		t.Errorf("a second report of the same write, and a path never written: %v, want only the latter", got)
	}
	// touched on b after the receiver wrote it: indexed
	if err := os.Chmod(filepath.Join(b.dir, "f2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := b.f.Local.NotOwn([]string{"f2"}); !slices.Equal(got, []string{"f2"}) {
		t.Errorf("a file changed after the receiver wrote it was dropped: %v", got)
	}

	// a removal by the receiver, while the path stays absent
	if err := os.Remove(filepath.Join(a.dir, "gone")); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	eventually(t, "b's removal noted", func() bool {
		_, err := os.Lstat(filepath.Join(b.dir, "gone"))
		return errors.Is(err, fs.ErrNotExist) && noted("gone")()
	})
	b.write(t, "gone", "made again on b")
	if got := b.f.Local.NotOwn([]string{"gone"}); !slices.Equal(got, []string{"gone"}) {
		t.Errorf("a path made again after the receiver removed it was dropped: %v", got)
	}
}

// The receiver announces each file it renames into place, with its inode,
// for the watcher to drop that rename's event; a rename that fails (a
// local file made there meanwhile) withdraws its announcement, so that the
// local file's own arrival is reported.
func TestArrivalsAnnounced(t *testing.T) {
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	connect(a, b)
	a.write(t, "new.txt", "from a")
	a.write(t, "t/taken.txt", "from a, but b has one of its own")
	a.index(t)
	var tmpIno uint64
	b.tune = func(n *Node) {
		n.pullers[0].r.Hooks.AfterBuild = func(es []wire.Entry) {
			if tmpIno != 0 || !slices.ContainsFunc(es, func(e wire.Entry) bool { return e.Path == "t/taken.txt" }) {
				return // (tried again, it is b's local change, and not built)
			}
			temps := tempFiles(t, filepath.Join(b.dir, "t"))
			if len(temps) != 1 {
				t.Errorf("temporary files in t: %v, want one", temps)
				return
			}
			tmpIno = inodeAt(t, temps[0])
			b.write(t, "t/taken.txt", "made on b while a's version was built")
		}
	}
	a.start(t)
	b.start(t)
	eventually(t, "new.txt on b, and t/taken.txt refused", func() bool {
		_, err := os.Lstat(filepath.Join(b.dir, "new.txt"))
		return err == nil && strings.Contains(b.log.String(), `msg="peer's version waits for a local change to be indexed" peer=a folder=www path=t/taken.txt`)
	})
	ino := inodeAt(t, filepath.Join(b.dir, "new.txt"))
	if !b.f.Local.Arrived("new.txt", ino) {
		t.Error("new.txt was placed without an announcement of its inode")
	}
	if tmpIno == 0 {
		t.Fatal("the hook did not see t/taken.txt built")
	}
	if b.f.Local.Arrived("t/taken.txt", tmpIno) {
		t.Error("the announcement of t/taken.txt outlived its refused rename")
	}
	if got, _ := os.ReadFile(filepath.Join(b.dir, "t", "taken.txt")); string(got) != "made on b while a's version was built" {
		t.Errorf("t/taken.txt on b = %q, want b's own", got)
	}
}

// inodeAt returns the inode of the file at p.
func inodeAt(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// A commit that fails after its renames (here at the index write) hands
// the files it placed to the indexer: their arrivals were announced, the
// watcher dropped them, and nothing else would report them. Indexed, they
// are b's local files, and the peer's versions settle with them.
func TestUnrecordedAfterFailedCommit(t *testing.T) {
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	connect(a, b)
	a.write(t, "one.txt", "first")
	a.write(t, "d/two.txt", "second")
	a.index(t)
	var failed atomic.Bool
	b.tune = func(n *Node) {
		n.pullers[0].r.Hooks.BeforeRecord = func() error {
			if failed.CompareAndSwap(false, true) {
				return errors.New("injected: the index write failed")
			}
			return nil
		}
	}
	a.start(t)
	b.start(t)
	handedOver(t, b, "one.txt", "d/two.txt")
	if e, ok, err := b.f.Local.Index().Get("one.txt"); err != nil || ok && !e.Deleted {
		t.Fatalf("one.txt in b's index after the failed commit: %+v, %v, %v", e, ok, err)
	}
	b.index(t) // the daemon indexes what it takes
	converge(t, a, b)
}

// A file whose own step fails after its rename (here the look at it, as
// it vanished) is handed to the indexer too; the others of its batch are
// recorded as usual.
func TestUnrecordedAfterFailedPlace(t *testing.T) {
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	connect(a, b)
	a.write(t, "kept.txt", "kept")
	a.write(t, "gone.txt", "moved away on b the moment it was placed")
	a.index(t)
	var once sync.Once
	b.tune = func(n *Node) {
		n.pullers[0].r.Hooks.AfterPlace = func(rel string) {
			if rel == "gone.txt" {
				once.Do(func() {
					if err := os.Rename(filepath.Join(b.dir, rel), filepath.Join(b.dir, "elsewhere.txt")); err != nil {
						t.Error(err)
					}
				})
			}
		}
	}
	a.start(t)
	b.start(t)
	took := handedOver(t, b, "gone.txt")
	if slices.Contains(took, "kept.txt") {
		t.Errorf("handed over %v: kept.txt was recorded", took)
	}
}

// handedOver waits until b's receiver has handed every one of paths to
// the indexer, and returns all it handed over meanwhile.
func handedOver(t *testing.T, b *testNode, paths ...string) []string {
	t.Helper()
	var took []string
	eventually(t, fmt.Sprintf("%v handed to the indexer", paths), func() bool {
		took = append(took, b.f.Local.TakeUnrecorded()...)
		return !slices.ContainsFunc(paths, func(p string) bool { return !slices.Contains(took, p) })
	})
	return took
}
