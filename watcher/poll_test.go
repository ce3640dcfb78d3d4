package watcher

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/syncd/syncd/internal/health"
)

// With the watch limit reached, the directories without a watch are polled
// every Options.Poll: what changes in them is reported as a normal batch,
// the folder is degraded with the reason, and once watches can be added
// again the condition clears and the polling stops.
func TestWatchLimitPollsUnwatchedDirs(t *testing.T) {
	limit := true
	enospc := func(n notifier, dir string) error {
		if limit && strings.Contains(dir, "deep") {
			return syscall.ENOSPC
		}
		return n.Add(dir)
	}
	hc := health.NewConditions(nil)
	const poll = 10 * time.Second
	h := newHarness(t, Options{Poll: poll, Health: hc}, []string{"a/", "deep/f", "deep/sub/"},
		func(w *Watcher) { w.addWatch = enospc })
	c, ok := hc.Get(watchLimitCondition)
	if !ok || c.Severity != health.Degraded || !strings.Contains(c.Reason, "sysctl -w fs.inotify.max_user_watches=") {
		t.Fatalf("condition %+v (set %v), want degraded naming the sysctl", c, ok)
	}
	if s := h.w.Stats(); !s.WatchLimited || s.Unwatched != 2 {
		t.Fatalf("Stats = %+v, want WatchLimited and 2 unwatched", s)
	}
	write := func(rel, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(h.root, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// No events come from the unwatched directories: only the poll sees
	// these changes, within Poll (plus Debounce).
	write("deep/f", "changed")
	write("a/watched", "x") // a watched directory is not polled: no event, no report
	b, at := h.next(time.Minute)
	wantPaths(t, b, "deep/f")
	if at != poll+DefaultDebounce {
		t.Errorf("reported at %v, want %v", at, poll+DefaultDebounce)
	}
	write("deep/sub/new", "x")
	h.mk("deep/n/x")
	b, at = h.next(time.Minute)
	wantPaths(t, b, "deep/n", "deep/n/x", "deep/sub/new")
	if at != 2*poll+DefaultDebounce {
		t.Errorf("reported at %v, want %v", at, 2*poll+DefaultDebounce)
	}
	if err := os.Remove(filepath.Join(h.root, "deep/f")); err != nil {
		t.Fatal(err)
	}
	b, _ = h.next(time.Minute)
	wantPaths(t, b, "deep/f")
	if s := h.w.Stats(); s.Unwatched != 3 {
		t.Errorf("Stats.Unwatched = %d, want 3 (deep, deep/sub, deep/n)", s.Unwatched)
	}

	limit = false // the operator raised the limit: the next poll adds the watches
	write("deep/sub/last", "x")
	b, _ = h.next(time.Minute)
	wantPaths(t, b, "deep/sub/last") // the last look after the watch was added
	for _, d := range []string{"deep", "deep/sub", "deep/n"} {
		if !h.n.isWatched(filepath.Join(h.root, d)) {
			t.Errorf("%s not watched after the limit was raised", d)
		}
	}
	if _, ok := hc.Get(watchLimitCondition); ok {
		t.Error("condition still set with every directory watched")
	}
	if s := h.w.Stats(); s.WatchLimited || s.Unwatched != 0 {
		t.Errorf("Stats = %+v, want no watch limit", s)
	}
	write("deep/sub/quiet", "x") // watched now: no event sent, so no report
	h.advance(time.Minute)
	h.none()
	logs := h.logs.String()
	if strings.Count(logs, "watch limit") != 1 || strings.Count(logs, "every directory is watched again") != 1 {
		t.Errorf("want one warning and one all-clear, got:\n%s", logs)
	}
	h.event("deep/sub/quiet", fsnotify.Write)
	h.advance(DefaultDebounce)
	wantPaths(t, h.recv(), "deep/sub/quiet")
}

// The same on real inotify: a write in a directory the watch limit left
// without a watch is reported by the poll.
func TestRealWatchLimitPollsUnwatchedDirs(t *testing.T) {
	t.Parallel()
	enospc := func(n notifier, dir string) error {
		if strings.Contains(dir, "nowatch") {
			return syscall.ENOSPC
		}
		return n.Add(dir)
	}
	hc := health.NewConditions(nil)
	r := startReal(t, "", Options{Poll: 50 * time.Millisecond, Health: hc}, func(w *Watcher) { w.addWatch = enospc })
	staged := filepath.Join(t.TempDir(), "nowatch")
	if err := os.MkdirAll(filepath.Join(staged, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staged, filepath.Join(r.root, "nowatch")); err != nil {
		t.Fatal(err)
	}
	r.collect(3*time.Second, has("nowatch", "nowatch/sub"))
	if _, ok := hc.Get(watchLimitCondition); !ok {
		t.Error("watch-limit condition not set")
	}
	r.write("nowatch/sub/page.html", "<html>")
	r.collect(3*time.Second, has("nowatch/sub/page.html"))
}

// A root that the watch limit left without a watch is polled too: its
// removal is noticed by the poll.
func TestWatchLimitUnwatchedRootRemoved(t *testing.T) {
	enospc := func(n notifier, dir string) error { return syscall.ENOSPC }
	h := newHarness(t, Options{Poll: time.Second}, []string{"a/f"}, func(w *Watcher) { w.addWatch = enospc })
	if err := os.RemoveAll(h.root); err != nil {
		t.Fatal(err)
	}
	b, at := h.next(time.Minute)
	if !b.Rescan || b.Reason != "root removed" || at != time.Second {
		t.Fatalf("at %v: batch %+v, want the Rescan for the removed root at the first poll", at, b)
	}
}
