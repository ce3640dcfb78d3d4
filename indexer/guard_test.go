package indexer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/syncd/syncd/state"
)

// A change that deletes more than MaxDelete of the folder's files is held
// back: its other changes are recorded, its deletes are not, until an
// operator confirms; then the next scan records them.
func TestMaxDeleteHoldsMassDeletes(t *testing.T) {
	ctx := context.Background()
	f := setup(t, nil)
	now := time.Unix(1e9, 0)
	f.ix.f.MaxDelete, f.ix.f.MinHeld, f.ix.f.Now = 0.5, 10, func() time.Time { return now }
	for i := range 40 {
		f.write(t, fmt.Sprintf("d/f%02d", i), []byte{byte(i)})
	}
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}

	// 15 of 40 (38%): under the limit, recorded
	for i := range 15 {
		os.Remove(filepath.Join(f.root, fmt.Sprintf("d/f%02d", i)))
	}
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatalf("deleting 15 of 40: %v", err)
	}
	if n := len(f.live(t)); n != 1+25 {
		t.Fatalf("after deleting 15 of 40: %d live entries, want 26", n)
	}

	// 20 of the 25 left (80%) and one new file, later than the window:
	// the new file is recorded, the deletes are held
	now = now.Add(2 * time.Minute)
	for i := 15; i < 35; i++ {
		os.Remove(filepath.Join(f.root, fmt.Sprintf("d/f%02d", i)))
	}
	f.write(t, "new", []byte("new"))
	seq := f.st.Seq()
	err := f.ix.Scan(ctx)
	var held *HeldError
	if !errors.As(err, &held) || held.Files != 20 || held.Total != 26 {
		t.Fatalf("Scan = %v, want a HeldError for 20 of 26 files (the new one counts)", err)
	}
	if want := "folder www: holding back a change that deletes 20 of its 26 files (77%, over max_delete 50%): if that is intended, run syncd confirm-deletes www"; err.Error() != want {
		t.Errorf("error:\ngot  %s\nwant %s", err, want)
	}
	live := f.live(t)
	if _, ok := live["new"]; !ok || len(live) != 1+25+1 {
		t.Fatalf("held scan: %d live entries (new: %v), want the 25 files kept and new added", len(live), ok)
	}
	deletes := 0
	f.st.Changed(seq, func(rel string, e state.Entry) error {
		if e.Deleted {
			deletes++
		}
		return nil
	})
	if deletes != 0 {
		t.Fatalf("held scan numbered %d deletes for the peers", deletes)
	}
	// held again on the next scan: nothing leaks out in pieces
	if err := f.ix.Scan(ctx); !errors.As(err, &held) {
		t.Fatalf("second scan: %v, want held again", err)
	}

	f.ix.ConfirmDeletes()
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatalf("scan after confirm: %v", err)
	}
	if n := len(f.live(t)); n != 1+5+1 {
		t.Fatalf("after confirm: %d live entries, want 7", n)
	}
	// the confirmation was used up
	for i := 35; i < 40; i++ {
		os.Remove(filepath.Join(f.root, fmt.Sprintf("d/f%02d", i)))
	}
	for i := range 20 {
		f.write(t, fmt.Sprintf("e/g%02d", i), []byte{byte(i)})
	}
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatalf("5 of 26 deleted: %v", err)
	}
}

// A small folder is never held: fewer than MinHeld deleted files.
func TestMaxDeleteSmallFolder(t *testing.T) {
	ctx := context.Background()
	f := setup(t, nil)
	f.ix.f.MaxDelete, f.ix.f.MinHeld = 0.5, 10
	for i := range 3 {
		f.write(t, fmt.Sprintf("f%d", i), []byte{byte(i)})
	}
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(f.root, "f0"))
	os.Remove(filepath.Join(f.root, "f1"))
	if err := f.ix.Apply(ctx, []string{"f0", "f1"}, false); err != nil {
		t.Fatalf("deleting 2 of 3: %v", err)
	}
	if n := len(f.live(t)); n != 1 {
		t.Fatalf("%d live entries, want 1", n)
	}
}

// The folder's guard is asked before the scan and again before deletes
// are recorded: a folder that vanishes (an unmounted disk) mid-scan
// records no delete.
func TestCheckGuardsDeletes(t *testing.T) {
	ctx := context.Background()
	f := setup(t, nil)
	for i := range 5 {
		f.write(t, fmt.Sprintf("f%d", i), []byte{byte(i)})
	}
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	gone := errors.New("folder marker missing")
	calls := 0
	f.ix.f.Check = func() error {
		calls++
		if calls > 1 {
			return gone
		}
		return nil
	}
	os.Remove(filepath.Join(f.root, "f0"))
	if err := f.ix.Scan(ctx); !errors.Is(err, gone) {
		t.Fatalf("Scan = %v, want the guard's error", err)
	}
	if n := len(f.live(t)); n != 5 {
		t.Fatalf("%d live entries after a failed guard, want 5", n)
	}
	calls = 0
	f.ix.f.Check = func() error { return gone }
	if err := f.ix.Scan(ctx); !errors.Is(err, gone) || calls != 0 && len(f.live(t)) != 5 {
		t.Fatalf("Scan = %v, want the guard's error before anything", err)
	}
	f.ix.f.Check = nil
	if err := f.ix.Scan(ctx); err != nil || len(f.live(t)) != 4 {
		t.Fatalf("Scan without guard = %v, %d live", err, len(f.live(t)))
	}
}

// A directory replaced by a file: the file's entry is numbered after the
// deletes of what the directory held, so a peer removes them first.
func TestDirReplacedByFileOrder(t *testing.T) {
	ctx := context.Background()
	f := setup(t, nil)
	f.write(t, "x/a", []byte("a"))
	f.write(t, "x/b", []byte("b"))
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	seq := f.st.Seq()
	os.RemoveAll(filepath.Join(f.root, "x"))
	f.write(t, "x", []byte("now a file"))
	if err := f.ix.Apply(ctx, []string{"x"}, false); err != nil {
		t.Fatal(err)
	}
	var order []string
	f.st.Changed(seq, func(rel string, e state.Entry) error {
		order = append(order, fmt.Sprintf("%s:%v", rel, e.Deleted))
		return nil
	})
	// Changed lists by sequence number
	if len(order) != 3 || order[2] != "x:false" {
		t.Fatalf("order %v, want x/a and x/b deleted before x the file", order)
	}
}

// An rm -rf reaches the indexer in several batches, each too small to
// hold alone: the deletes of the last DeleteWindow count together.
func TestMaxDeleteWindow(t *testing.T) {
	ctx := context.Background()
	f := setup(t, nil)
	now := time.Unix(1e9, 0)
	f.ix.f.MaxDelete, f.ix.f.MinHeld, f.ix.f.Now = 0.5, 10, func() time.Time { return now }
	for i := range 40 {
		f.write(t, fmt.Sprintf("f%02d", i), []byte{byte(i)})
	}
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	del := func(from, to int) error {
		var paths []string
		for i := from; i < to; i++ {
			p := fmt.Sprintf("f%02d", i)
			os.Remove(filepath.Join(f.root, p))
			paths = append(paths, p)
		}
		now = now.Add(5 * time.Second)
		return f.ix.Apply(ctx, paths, false)
	}
	if err := del(0, 9); err != nil {
		t.Fatalf("9 of 40: %v", err)
	}
	if err := del(9, 18); err != nil {
		t.Fatalf("18 of 40 within a minute: %v", err)
	}
	var held *HeldError
	if err := del(18, 27); !errors.As(err, &held) || held.Files != 27 || held.Total != 40 {
		t.Fatalf("27 of 40 within a minute: %v, want held (27 of 40)", err)
	}
	if n := len(f.live(t)); n != 40-18 {
		t.Fatalf("%d live entries, want the 22 the first two batches left", n)
	}
	// a minute later the window is empty: the same 9 deletes go through
	now = now.Add(time.Minute)
	if err := f.ix.Apply(ctx, []string{"f18", "f19", "f20", "f21", "f22", "f23", "f24", "f25", "f26"}, false); err != nil {
		t.Fatalf("9 of 22 a minute later: %v", err)
	}
}
