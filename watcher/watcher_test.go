package watcher

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

const ms = time.Millisecond

func wantPaths(t *testing.T, b Batch, want ...string) {
	t.Helper()
	if b.Rescan || !slices.Equal(b.Paths, want) {
		t.Fatalf("batch = %+v, want Paths %q and no Rescan", b, want)
	}
}

func TestWriteReportedOnceAfterDebounce(t *testing.T) {
	h := newHarness(t, Options{}, nil, nil)
	h.mk("f")
	h.event("f", fsnotify.Create)
	h.event("f", fsnotify.Write)
	h.advance(99 * ms)
	h.none()
	h.advance(1 * ms)
	wantPaths(t, h.recv(), "f")
	h.advance(time.Minute)
	h.none()
	if s := h.w.Stats(); s.Events != 2 || s.Batches != 2 || s.Paths != 1 || s.Pending != 0 {
		t.Errorf("Stats = %+v, want 2 events, 2 batches (start + f), 1 path, 0 pending", s)
	}
}

func TestDebounceIsConfigurable(t *testing.T) {
	h := newHarness(t, Options{Debounce: 250 * ms}, nil, nil)
	h.event("f", fsnotify.Create)
	h.advance(249 * ms)
	h.none()
	h.advance(1 * ms)
	wantPaths(t, h.recv(), "f")
}

func TestManyWritesCoalesce(t *testing.T) {
	h := newHarness(t, Options{}, nil, nil)
	h.mk("f")
	h.event("f", fsnotify.Create)
	for range 50 { // 50 writes 20ms apart: never quiet for 100ms
		h.advance(20 * ms)
		h.event("f", fsnotify.Write)
		h.none()
	}
	last := h.at()
	h.advance(100 * ms)
	wantPaths(t, h.recv(), "f")
	if got := h.at() - last; got != 100*ms {
		t.Errorf("reported %v after the last write, want 100ms", got)
	}
	h.advance(time.Second)
	h.none()
}

func TestFlushGroupsDuePaths(t *testing.T) {
	h := newHarness(t, Options{}, nil, nil)
	for _, p := range []string{"c", "a", "d/b"} {
		h.event(p, fsnotify.Create)
	}
	h.advance(5 * ms)
	h.event("late", fsnotify.Write)
	h.advance(95 * ms)
	wantPaths(t, h.recv(), "a", "c", "d/b") // one batch, sorted
	h.none()
	// late is due at 105ms, but flushes are at least Debounce/10 apart.
	h.advance(5 * ms)
	h.none()
	h.advance(5 * ms)
	wantPaths(t, h.recv(), "late")
}

// A file that keeps changing without events (pauses longer than Debounce,
// or writes inotify does not see) is held until its size and mtime stay
// the same for Settle.
func TestSettleHoldsFileStillBeingWritten(t *testing.T) {
	h := newHarness(t, Options{Settle: 250 * ms}, nil, nil)
	p := filepath.Join(h.root, "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h.event("big", fsnotify.Create)
	for i := range 4 { // a piece every 200ms, no events
		h.advance(200 * ms)
		h.none()
		if _, err := f.Write([]byte(strings.Repeat("x", 100*(i+1)))); err != nil {
			t.Fatal(err)
		}
	}
	// Checks at 100ms (first stat), 250, 500, 750, 1000ms each see a new
	// size; the last write (800ms) is seen at 1000ms, and the file must then
	// stay the same for Settle.
	b, at := h.next(5 * time.Second)
	wantPaths(t, b, "big")
	if at != 1250*ms {
		t.Errorf("reported at %v, want 1250ms (Settle after the check that saw the last write at 800ms)", at)
	}
}

func TestSettleExactTiming(t *testing.T) {
	h := newHarness(t, Options{Settle: 300 * ms}, []string{"f"}, nil)
	h.event("f", fsnotify.Write)
	h.advance(299 * ms) // stat at 100ms: held until 300ms
	h.none()
	h.advance(1 * ms)
	wantPaths(t, h.recv(), "f")

	// Pieces 200ms apart, each with events: pauses longer than Debounce but
	// shorter than Settle keep the file held.
	h.event("f", fsnotify.Write)
	for range 3 {
		h.advance(200 * ms)
		h.none()
		h.event("f", fsnotify.Write)
	}
	h.advance(299 * ms)
	h.none()
	h.advance(1 * ms)
	wantPaths(t, h.recv(), "f")
}

func TestMaxHoldBoundsTheWait(t *testing.T) {
	h := newHarness(t, Options{MaxHold: time.Second}, []string{"log"}, nil)
	for h.at() < 990*ms { // written every 10ms, never quiet
		h.event("log", fsnotify.Write)
		h.advance(10 * ms)
	}
	h.none()
	h.event("log", fsnotify.Write)
	h.advance(10 * ms) // 1s after the first event
	wantPaths(t, h.recv(), "log")
}

func TestIgnoredPathsNotReportedNorWatched(t *testing.T) {
	ignore := func(rel string, isDir bool) bool {
		return strings.HasSuffix(rel, ".log") || (isDir && filepath.Base(rel) == "cache")
	}
	h := newHarness(t, Options{Ignore: ignore}, []string{"cache/a/", "keep/"}, nil)
	if h.n.isWatched(filepath.Join(h.root, "cache")) || h.n.isWatched(filepath.Join(h.root, "cache/a")) {
		t.Error("ignored directory cache watched at start")
	}
	if !h.n.isWatched(filepath.Join(h.root, "keep")) {
		t.Error("keep not watched at start")
	}
	h.mk("keep/cache/x")
	h.event("keep/cache", fsnotify.Create) // an ignored directory appears
	h.event("x.log", fsnotify.Create)
	h.event("keep/y.log", fsnotify.Write)
	h.event("y", fsnotify.Write)
	h.advance(100 * ms)
	wantPaths(t, h.recv(), "y")
	if h.n.isWatched(filepath.Join(h.root, "keep/cache")) {
		t.Error("new ignored directory keep/cache watched")
	}
}

func TestOwnTempFilesNeverReported(t *testing.T) {
	h := newHarness(t, Options{}, []string{".syncd-tmp-old", "d/.syncd-stage/x"}, nil)
	if h.n.isWatched(filepath.Join(h.root, "d/.syncd-stage")) {
		t.Error("temporary directory watched")
	}
	h.event(".syncd-tmp-123", fsnotify.Create)
	h.event(".syncd-tmp-123", fsnotify.Write)
	h.event(".syncd-tmp-123", fsnotify.Rename)
	h.event("index.html", fsnotify.Create) // the rename's target
	h.mk("n/.syncd-tmp-9")
	h.event("n", fsnotify.Create) // a new directory holding a temp file
	h.advance(100 * ms)
	wantPaths(t, h.recv(), "index.html", "n")
}

func TestNewDirectoryWatchedAndContentsReported(t *testing.T) {
	h := newHarness(t, Options{}, nil, nil)
	// The files landed before the watches could exist: only the top
	// directory's Create is seen.
	h.mk("a/b/c/f")
	h.mk("a/g")
	h.event("a", fsnotify.Create)
	h.advance(100 * ms)
	wantPaths(t, h.recv(), "a", "a/b", "a/b/c", "a/b/c/f", "a/g")
	for _, d := range []string{"a", "a/b", "a/b/c"} {
		if !h.n.isWatched(filepath.Join(h.root, d)) {
			t.Errorf("%s not watched", d)
		}
	}
}

func TestDirectoryRenameMovesWatches(t *testing.T) {
	h := newHarness(t, Options{}, []string{"old/sub/f"}, nil)
	if err := os.Rename(filepath.Join(h.root, "old"), filepath.Join(h.root, "new")); err != nil {
		t.Fatal(err)
	}
	h.event("old", fsnotify.Rename)
	h.event("new", fsnotify.Create)
	h.advance(100 * ms)
	wantPaths(t, h.recv(), "new", "new/sub", "new/sub/f", "old")
	for d, want := range map[string]bool{"old": false, "old/sub": false, "new": true, "new/sub": true} {
		if got := h.n.isWatched(filepath.Join(h.root, d)); got != want {
			t.Errorf("%s watched = %v, want %v", d, got, want)
		}
	}
	if got := h.w.Stats().Watches; got != 3 {
		t.Errorf("Stats.Watches = %d, want 3 (root, new, new/sub)", got)
	}
}

func TestOverflowRescansOnce(t *testing.T) {
	h := newHarness(t, Options{}, nil, nil)
	h.mk("lost/dir/") // made while events were being dropped
	for range 3 {
		h.n.errors <- fsnotify.ErrEventOverflow
		h.sync()
	}
	h.event("f", fsnotify.Write)
	h.advance(100 * ms)
	b := h.recv()
	if !b.Rescan || b.Reason != "inotify queue overflow" || !slices.Equal(b.Paths, []string{"f"}) {
		t.Fatalf("batch = %+v, want one Rescan for the overflow (carrying f)", b)
	}
	h.advance(time.Second)
	h.none()
	if !h.n.isWatched(filepath.Join(h.root, "lost/dir")) {
		t.Error("directory made during the overflow not watched after the rescan")
	}
	if got := strings.Count(h.logs.String(), "overflowed"); got != 1 {
		t.Errorf("%d overflow warnings for one burst, want 1:\n%s", got, h.logs)
	}
	if s := h.w.Stats(); s.Overflows != 3 || s.Rescans != 2 {
		t.Errorf("Stats = %+v, want 3 overflows, 2 rescans (start, overflow)", s)
	}
}

func TestOverflowRefreshesAreThrottled(t *testing.T) {
	var clk *fakeClock
	var slow atomic.Bool
	slowWalk := func(rel string, isDir bool) bool {
		if isDir && slow.Load() {
			clk.bump(100 * ms) // each directory takes 100ms to watch
		}
		return false
	}
	h := newHarness(t, Options{Ignore: slowWalk}, []string{"a/", "b/"},
		func(w *Watcher) { clk = w.opts.Clock.(*fakeClock) })
	slow.Store(true)
	h.n.errors <- fsnotify.ErrEventOverflow
	h.sync()
	b, at := h.next(time.Second)
	if !b.Rescan || at != 300*ms {
		t.Fatalf("at %v: batch %+v, want the Rescan after a 100ms debounce and a 200ms refresh", at, b)
	}
	h.n.errors <- fsnotify.ErrEventOverflow // right after: the next walk waits
	h.sync()
	b, at = h.next(time.Minute)
	if !b.Rescan || at != 300*ms+9*200*ms+200*ms {
		t.Fatalf("at %v: batch %+v, want the Rescan 9×200ms after the last refresh ended, then 200ms of walking", at, b)
	}
}

func TestWatchLimitWarnsOnceAndRescans(t *testing.T) {
	limit := true
	enospc := func(n notifier, dir string) error {
		if limit && strings.Contains(dir, "deep") {
			return syscall.ENOSPC
		}
		return n.Add(dir)
	}
	h := newHarness(t, Options{Rescan: time.Hour}, nil, func(w *Watcher) { w.addWatch = enospc })
	h.mk("deep1/x")
	h.event("deep1", fsnotify.Create)
	b := h.recv() // at once: the rescan must cover what is not watched
	if !b.Rescan || b.Reason != "inotify watch limit reached" {
		t.Fatalf("batch = %+v, want a Rescan for the watch limit", b)
	}
	h.advance(100 * ms)
	wantPaths(t, h.recv(), "deep1", "deep1/x") // still reported
	h.mk("deep2/y")
	h.event("deep2", fsnotify.Create)
	h.advance(100 * ms)
	wantPaths(t, h.recv(), "deep2", "deep2/y") // no second Rescan
	logs := h.logs.String()
	if strings.Count(logs, "watch limit") != 1 ||
		!strings.Contains(logs, "sysctl -w fs.inotify.max_user_watches=1048576") {
		t.Errorf("want one warning naming the sysctl, got:\n%s", logs)
	}
	if !h.w.Stats().WatchLimited {
		t.Error("Stats.WatchLimited = false")
	}

	limit = false // the operator raised the limit; the periodic rescan adds the rest
	h.advance(time.Hour)
	if b := h.recv(); !b.Rescan || b.Reason != "periodic" {
		t.Fatalf("batch = %+v, want the periodic Rescan", b)
	}
	if !h.n.isWatched(filepath.Join(h.root, "deep2")) || h.w.Stats().WatchLimited {
		t.Errorf("after the periodic rescan: deep2 watched %v, Stats %+v", h.n.isWatched(filepath.Join(h.root, "deep2")), h.w.Stats())
	}
}

func TestPeriodicRescan(t *testing.T) {
	h := newHarness(t, Options{Rescan: 10 * time.Minute}, nil, nil)
	for range 3 {
		h.advance(10*time.Minute - ms)
		h.none()
		h.advance(ms)
		if b := h.recv(); !b.Rescan || b.Reason != "periodic" {
			t.Fatalf("batch = %+v, want the periodic Rescan", b)
		}
	}
	off := newHarness(t, Options{Rescan: -1}, nil, nil)
	off.advance(48 * time.Hour)
	off.none()
}

func TestRootRemovedAndRestored(t *testing.T) {
	h := newHarness(t, Options{}, []string{"a/f"}, nil)
	if err := os.RemoveAll(h.root); err != nil {
		t.Fatal(err)
	}
	h.event("a/f", fsnotify.Remove)
	h.event("a", fsnotify.Remove)
	h.n.events <- fsnotify.Event{Name: h.root, Op: fsnotify.Remove}
	h.sync()
	if b := h.recv(); !b.Rescan || b.Reason != "root removed" {
		t.Fatalf("batch = %+v, want a Rescan for the removed root", b)
	}
	if w := h.w.Stats().Watches; w != 0 {
		t.Errorf("Stats.Watches = %d after the root went, want 0", w)
	}
	h.advance(5 * time.Second)
	wantPaths(t, h.recv(), "a", "a/f")
	h.none() // still gone: no more noise
	h.mk("b/")
	h.advance(time.Second)
	if b := h.recv(); !b.Rescan || b.Reason != "root restored" {
		t.Fatalf("batch = %+v, want a Rescan for the restored root", b)
	}
	if !h.n.isWatched(filepath.Join(h.root, "b")) {
		t.Error("restored tree not watched")
	}
	if !strings.Contains(h.logs.String(), "root removed or moved away") {
		t.Errorf("no warning for the removed root:\n%s", h.logs)
	}
}

func TestSlowConsumerGetsMergedBatch(t *testing.T) {
	h := newHarness(t, Options{}, nil, nil)
	for i := range cap(h.out) { // fill the consumer's channel
		h.event("fill", fsnotify.Write)
		h.advance(100 * ms)
		if len(h.out) != i+1 {
			t.Fatalf("%d batches queued, want %d", len(h.out), i+1)
		}
	}
	for _, p := range []string{"a", "b", "c", "a"} { // due while nobody reads
		h.event(p, fsnotify.Write)
		h.advance(200 * ms)
	}
	for range cap(h.out) {
		wantPaths(t, h.recv(), "fill")
	}
	h.sync()
	wantPaths(t, h.recv(), "a", "b", "c")
	h.none()
}

func TestNewRejectsBadRoot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"", "relative/dir", file, filepath.Join(file, "missing")} {
		if _, err := New(Options{Root: root}); err == nil {
			t.Errorf("New(%q): no error", root)
		}
	}
	if _, err := New(Options{Root: t.TempDir(), Debounce: -1}); err == nil {
		t.Error("New with a negative Debounce: no error")
	}
	if err := syscall.ENOSPC; !isWatchLimit(err) || isWatchLimit(errors.New("x")) {
		t.Error("isWatchLimit misclassifies")
	}
}
