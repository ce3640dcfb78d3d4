package localfolder

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/clock/clocktest"
)

// An announced arrival matches once, and only the inode announced there;
// a withdrawn or forgotten one, and one past ownKeep, matches nothing.
func TestArrivals(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := newTestFolder(t, clk)
	if f.Arrived("a", 1) {
		t.Fatal("nothing announced: arrived")
	}
	f.Arriving("a", 7)
	f.Arriving("d/b", 8)
	f.Arriving("d/e/c", 9)
	f.Arriving("x", 10)
	if !f.Arrived("a", 7) {
		t.Error("a with the announced inode: not arrived")
	}
	if f.Arrived("a", 7) {
		t.Error("a second arrival of a matched the one announcement")
	}
	if f.Arrived("d/b", 5) {
		t.Error("d/b with another inode than announced: arrived")
	}
	if f.Arrived("d/b", 8) {
		t.Error("d/b matched after another file's arrival there ended its announcement")
	}
	f.NotArriving("x")
	if f.Arrived("x", 10) {
		t.Error("x matched after its announcement was withdrawn")
	}

	// Forget ends the files directly in the directory, not below it
	f.Arriving("d/b", 8)
	f.Arriving("top", 11)
	f.Forget("d")
	if f.Arrived("d/b", 8) {
		t.Error("d/b matched after Forget(d)")
	}
	if !f.Arrived("d/e/c", 9) {
		t.Error("d/e/c, below d, was forgotten by Forget(d)")
	}
	f.Forget(".")
	if f.Arrived("top", 11) {
		t.Error(`top matched after Forget(".")`)
	}
	f.Arriving("p/q", 12)
	f.ForgetAll()
	if f.Arrived("p/q", 12) {
		t.Error("p/q matched after ForgetAll")
	}

	f.Arriving("old", 13)
	clk.Advance(ownKeep + time.Second)
	if f.Arrived("old", 13) {
		t.Errorf("an announcement older than %v matched", ownKeep)
	}
	if n := f.arrivals.n; n != 0 {
		t.Errorf("%d announcements counted with none left", n)
	}
}

// Past maxArrivals, the expired announcements make room, and a new one is
// not kept while none has expired.
func TestArrivalsBounded(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := newTestFolder(t, clk)
	for i := range maxArrivals {
		f.Arriving(fmt.Sprintf("d%d/f", i%100), uint64(i+1))
		if i == maxArrivals/2 {
			clk.Advance(ownKeep + time.Second) // the first half expires
		}
	}
	f.Arriving("new", 1)
	if f.arrivals.n > maxArrivals/2 {
		t.Errorf("%d kept after a full set, half of it expired: want at most %d", f.arrivals.n, maxArrivals/2)
	}
	if !f.Arrived("new", 1) {
		t.Error("the announcement that found room was not kept")
	}
	for i := 0; f.arrivals.n < maxArrivals; i++ {
		f.Arriving(fmt.Sprintf("more%d", i), 1)
	}
	f.Arriving("over", 2)
	if f.Arrived("over", 2) {
		t.Error("an announcement beyond the bound, with none expired, was kept")
	}
	if f.arrivals.n > maxArrivals {
		t.Errorf("%d announcements kept, bound %d", f.arrivals.n, maxArrivals)
	}
}

// The paths of a failed commit wait for the indexer, sorted and once
// each, and the ready channel tells when there are any.
func TestUnrecorded(t *testing.T) {
	f := newTestFolder(t, nil)
	ready := func() bool {
		select {
		case <-f.UnrecordedReady():
			return true
		default:
			return false
		}
	}
	f.Unrecorded(nil)
	if ready() {
		t.Error("ready with nothing handed over")
	}
	f.Unrecorded([]string{"b", "a"})
	f.Unrecorded([]string{"a", "c"})
	if got := f.TakeUnrecorded(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("took %v, want [a b c]", got)
	}
	if ready() {
		t.Error("still ready once taken")
	}
	if got := f.TakeUnrecorded(); len(got) != 0 {
		t.Errorf("took %v a second time", got)
	}
	f.Unrecorded([]string{"d"})
	if !ready() {
		t.Fatal("not ready with d handed over")
	}
	if got := f.TakeUnrecorded(); !slices.Equal(got, []string{"d"}) {
		t.Errorf("took %v, want [d]", got)
	}
}
