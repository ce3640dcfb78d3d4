package localfolder

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/clock/clocktest"
	"github.com/syncd/syncd/state"
)

// write makes the file rel in f with content and records it as the
// receiver's write.
func writeOwn(t *testing.T, f *Folder, rel, content string) {
	t.Helper()
	p := filepath.Join(f.Root(), filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	recordOwn(t, f, rel)
}

// recordOwn records rel as it is on disk now as the receiver's write.
func recordOwn(t *testing.T, f *Folder, rel string) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(f.Root(), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	f.RecordOwn(rel, state.EntryOf(fi))
}

func notOwn(f *Folder, paths ...string) []string { return f.NotOwn(slices.Clone(paths)) }

// The watcher's reports of what the receiver wrote are dropped, however
// often they come; a report of anything touched since is kept, in order.
func TestNotOwn(t *testing.T) {
	f := newTestFolder(t, nil)
	if got := notOwn(f, "x", "y"); !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("nothing recorded: left %v, want every path", got)
	}
	writeOwn(t, f, "f1", "one")
	writeOwn(t, f, "f2", "two")
	writeOwn(t, f, "d/f3", "three")
	recordOwn(t, f, "d")
	writeOwn(t, f, "e/f4", "four")
	recordOwn(t, f, "e")

	// a file made in a directory the receiver made changes the
	// directory's times, not whose it is: the file is reported itself
	if err := os.WriteFile(filepath.Join(f.Root(), "d", "local.txt"), []byte("made here"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := notOwn(f, "f1", "d", "d/f3", "d/local.txt"); !slices.Equal(got, []string{"d/local.txt"}) {
		t.Errorf("left %v, want only d/local.txt", got)
	}
	if got := notOwn(f, "f1", "unknown", "d/f3"); !slices.Equal(got, []string{"unknown"}) {
		t.Errorf("a second report of the same writes, and a path never written: left %v, want only the latter", got)
	}
	if err := os.Chmod(filepath.Join(f.Root(), "e"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got := notOwn(f, "e"); !slices.Equal(got, []string{"e"}) {
		t.Errorf("a directory whose mode changed was dropped: %v", got)
	}
	// touched after the receiver wrote it: kept, and the record ends
	if err := os.Chmod(filepath.Join(f.Root(), "f2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := notOwn(f, "f2"); !slices.Equal(got, []string{"f2"}) {
		t.Errorf("a file changed after the receiver wrote it was dropped: %v", got)
	}
	if err := os.Chmod(filepath.Join(f.Root(), "f2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := notOwn(f, "f2"); !slices.Equal(got, []string{"f2"}) {
		t.Errorf("a record ended by a change came back: %v", got)
	}
	// content rewritten in place (same inode)
	if err := os.WriteFile(filepath.Join(f.Root(), "e", "f4"), []byte("FOUR"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := notOwn(f, "e/f4"); !slices.Equal(got, []string{"e/f4"}) {
		t.Errorf("a file rewritten after the receiver wrote it was dropped: %v", got)
	}
}

// A removal by the receiver is its own while the path stays absent.
func TestNotOwnRemoval(t *testing.T) {
	f := newTestFolder(t, nil)
	writeOwn(t, f, "gone", "soon")
	if err := os.Remove(filepath.Join(f.Root(), "gone")); err != nil {
		t.Fatal(err)
	}
	f.RecordOwn("gone", state.Entry{Type: "file", Deleted: true})
	if got := notOwn(f, "gone"); len(got) != 0 {
		t.Errorf("the receiver's removal was not dropped: %v", got)
	}
	if err := os.WriteFile(filepath.Join(f.Root(), "gone"), []byte("made again"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := notOwn(f, "gone"); !slices.Equal(got, []string{"gone"}) {
		t.Errorf("a path made again after the receiver removed it was dropped: %v", got)
	}
	// the report of the path made again ended the record: its removal
	// now is not the receiver's
	if err := os.Remove(filepath.Join(f.Root(), "gone")); err != nil {
		t.Fatal(err)
	}
	if got := notOwn(f, "gone"); !slices.Equal(got, []string{"gone"}) {
		t.Errorf("a record ended by a report of a change came back: %v", got)
	}
}

// A write whose report never comes is forgotten after ownKeep: a later
// report of the path is indexed.
func TestNotOwnExpires(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC))
	f := newTestFolder(t, clk)
	writeOwn(t, f, "f", "content")
	clk.Advance(ownKeep)
	if got := notOwn(f, "f"); len(got) != 0 {
		t.Errorf("dropped no longer at ownKeep: %v", got)
	}
	clk.Advance(time.Second)
	if got := notOwn(f, "f"); !slices.Equal(got, []string{"f"}) {
		t.Errorf("a write older than ownKeep still dropped its report: %v", got)
	}
}
