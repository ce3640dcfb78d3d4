package watcher

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/syncd/syncd/internal/ownname"
	"github.com/syncd/syncd/localfolder"
)

// announcements returns a local folder whose announcements of arrivals a
// watcher is given (nothing else of it is used here).
func announcements(t *testing.T) *localfolder.Folder {
	return localfolder.New(t.TempDir(), nil, nil)
}

// inodeOf returns the inode of the file at p.
func inodeOf(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return inode(fi)
}

// A file renamed into place as announced is not reported; another file
// renamed to an announced name is, and so is a write to the announced
// file afterwards. Real inotify: the rename's event is a "moved to".
func TestRealOwnArrivalNotReported(t *testing.T) {
	t.Parallel()
	lf := announcements(t)
	r := startReal(t, "", Options{Arrivals: lf}, nil)
	place := func(name, content string, announce bool) {
		tmp := filepath.Join(r.root, ownname.Temp())
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if announce {
			lf.Arriving(name, inodeOf(t, tmp))
		} else {
			// announced with the inode of a file that is not the one moved there
			other := filepath.Join(r.root, ownname.Temp())
			if err := os.WriteFile(other, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			lf.Arriving(name, inodeOf(t, other))
			defer os.Remove(other)
		}
		if err := os.Rename(tmp, filepath.Join(r.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	place("own.txt", "the receiver's", true)
	place("other.txt", "somebody else's", false)
	r.write("end.txt", "written after both")
	// the events come in order: own.txt's report would come no later than end.txt's
	c := r.collect(5*time.Second, has("other.txt", "end.txt"))
	c2 := r.collect(3*DefaultDebounce, nil)
	if n := c.seen["own.txt"] + c2.seen["own.txt"]; n != 0 {
		t.Errorf("the announced arrival was reported %d times", n)
	}
	// a write to it afterwards is a change of its own
	f, err := os.OpenFile(filepath.Join(r.root, "own.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(" and a local addition"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r.collect(5*time.Second, has("own.txt"))
}

// What may have been renamed without an event reaching the watcher is
// forgotten: what was announced before the watcher started, the files of
// a directory whose watch was just added, and everything on an overflow.
func TestArrivalsForgotten(t *testing.T) {
	lf := announcements(t)
	lf.Arriving("before", 1)
	h := newHarness(t, Options{Arrivals: lf}, []string{"x", "y"}, nil)
	if lf.Arrived("before", 1) {
		t.Error("an announcement made before the watcher started outlived its start")
	}
	x := inodeOf(t, filepath.Join(h.root, "x"))

	lf.Arriving("x", x)
	h.event("x", fsnotify.Create)
	h.advance(time.Second)
	h.none()

	lf.Arriving("x", x+1) // not the file there
	h.event("x", fsnotify.Create)
	if b, _ := h.next(time.Second); !slices.Equal(b.Paths, []string{"x"}) {
		t.Errorf("batch %+v, want x: not the announced inode", b)
	}

	// d/f renamed into d before the watcher added d's watch
	h.mk("d/f")
	f := inodeOf(t, filepath.Join(h.root, "d", "f"))
	lf.Arriving("d/f", f)
	lf.Arriving("d/g", f)
	lf.Arriving("e/g", f)
	h.event("d", fsnotify.Create)
	if lf.Arrived("d/f", f) || lf.Arrived("d/g", f) {
		t.Error("the announcements in d outlived the new watch of d")
	}
	if !lf.Arrived("e/g", f) {
		t.Error("a new watch of d forgot an announcement in e")
	}
	h.next(time.Second) // d and d/f, found by the walk

	lf.Arriving("y", inodeOf(t, filepath.Join(h.root, "y")))
	h.n.errors <- fsnotify.ErrEventOverflow
	h.sync()
	if lf.Arrived("y", inodeOf(t, filepath.Join(h.root, "y"))) {
		t.Error("an announcement outlived an overflow")
	}
}
