package transfer

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/syncd/syncd/config"
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
