package watcher

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
)

// These tests run real inotify (fsnotify) on t.TempDir() in real time.

type realRun struct {
	t    *testing.T
	root string
	w    *Watcher
	out  chan Batch
	logs *syncBuffer
	done chan error
	stop context.CancelFunc
}

// startReal runs a Watcher on root (a new temporary directory if empty)
// and consumes the start batch.
func startReal(t *testing.T, root string, opts Options, setup func(*Watcher)) *realRun {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	r := &realRun{t: t, root: root, out: make(chan Batch), logs: &syncBuffer{}, done: make(chan error, 1)}
	opts.Root = root
	opts.Logger = slog.New(slog.NewTextHandler(r.logs, nil))
	w, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.root = w.opts.Root // symlinks resolved
	if setup != nil {
		setup(w)
	}
	r.w = w
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { r.done <- w.Run(ctx, r.out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case b := <-r.out:
		if !b.Rescan || b.Reason != "start" {
			t.Fatalf("first batch = %+v, want the start Rescan", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no start batch")
	}
	return r
}

func (r *realRun) write(rel, data string) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.root, rel), []byte(data), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// collect gathers reported paths until done reports true for them or the
// timeout passes; seen counts the reports of each path, and rescans the
// Rescan reasons.
type collected struct {
	seen    map[string]int
	rescans []string
}

func (r *realRun) collect(timeout time.Duration, done func(c collected) bool) collected {
	r.t.Helper()
	c := collected{seen: map[string]int{}}
	deadline := time.After(timeout)
	for done == nil || !done(c) {
		select {
		case b := <-r.out:
			for _, p := range b.Paths {
				c.seen[p]++
			}
			if b.Rescan {
				c.rescans = append(c.rescans, b.Reason)
			}
		case <-deadline:
			if done != nil {
				r.t.Fatalf("timed out; reported so far: %v, rescans %q", c.seen, c.rescans)
			}
			return c
		}
	}
	return c
}

func has(paths ...string) func(collected) bool {
	return func(c collected) bool {
		for _, p := range paths {
			if c.seen[p] == 0 {
				return false
			}
		}
		return true
	}
}

func TestRealWriteReportedOnceAfterDebounce(t *testing.T) {
	t.Parallel()
	r := startReal(t, "", Options{}, nil)
	t0 := time.Now()
	r.write("index.html", "<html>")
	r.collect(2*time.Second, has("index.html"))
	if d := time.Since(t0); d < DefaultDebounce {
		t.Errorf("reported after %v, before the debounce of %v", d, DefaultDebounce)
	}
	if c := r.collect(400*time.Millisecond, nil); len(c.seen) != 0 {
		t.Errorf("reported again: %v", c.seen)
	}
}

func TestRealSlowWriteReportedAfterItStops(t *testing.T) {
	t.Parallel()
	for _, settle := range []time.Duration{0, 300 * time.Millisecond} {
		t.Run(fmt.Sprintf("settle=%v", settle), func(t *testing.T) {
			t.Parallel()
			slowWrite(t, settle)
		})
	}
}

// slowWrite writes a file in 10 pieces over ~300ms, pausing 30ms (less
// than Debounce and Settle), and checks it is reported once, after the
// last piece and no sooner than Settle after it. On a machine so loaded
// that the writer itself stalls for Settle, the file is rightly reported
// early: such an attempt is retried, and after three the test is skipped.
func slowWrite(t *testing.T, settle time.Duration) {
	r := startReal(t, "", Options{Settle: settle}, nil)
	hold := r.w.opts.Settle
	for attempt := range 3 {
		name := fmt.Sprintf("upload-%d.bin", attempt)
		if stall := slowWriteOnce(t, r, name, hold); stall == 0 {
			return
		} else {
			t.Logf("attempt %d: the writer stalled for %v", attempt, stall)
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("the writer stalled in all three attempts; under CI this is a failure, not a skip")
	}
	t.Skip("the machine is too loaded to write with pauses shorter than Settle (not CI)")
}

// slowWriteOnce returns 0 if it passed, or the writer's longest stall if
// that made the test meaningless.
func slowWriteOnce(t *testing.T, r *realRun, name string, hold time.Duration) time.Duration {
	f, err := os.Create(filepath.Join(r.root, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lastWrite time.Time
	var stall time.Duration
	for i := range 10 {
		if i > 0 {
			c := r.collect(30*time.Millisecond, nil)
			stall = max(stall, time.Since(lastWrite))
			if len(c.seen) != 0 {
				if stall >= hold {
					r.collect(2*hold, nil) // let it go quiet
					return stall
				}
				t.Fatalf("reported while still being written (pauses up to %v): %v", stall, c.seen)
			}
		}
		lastWrite = time.Now() // before: the event may be handled before Write returns
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			t.Fatal(err)
		}
	}
	c := r.collect(3*time.Second, has(name))
	if d := time.Since(lastWrite); d < hold {
		t.Errorf("reported %v after the last write, want at least Settle (%v)", d, hold)
	}
	c2 := r.collect(2*hold, nil)
	if n := c.seen[name] + c2.seen[name]; n != 1 {
		t.Errorf("reported %d times, want once", n)
	}
	return 0
}

func TestRealMkdirThenWriteImmediately(t *testing.T) {
	t.Parallel()
	r := startReal(t, "", Options{}, nil)
	if err := os.MkdirAll(filepath.Join(r.root, "a/b/c"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.write("a/b/c/f", "landed before the watch")
	r.collect(3*time.Second, has("a", "a/b", "a/b/c", "a/b/c/f"))
	r.write("a/b/c/g", "after") // the new directory is watched now
	r.collect(3*time.Second, has("a/b/c/g"))
}

func TestRealDirectoryRename(t *testing.T) {
	t.Parallel()
	r := startReal(t, "", Options{}, nil)
	if err := os.MkdirAll(filepath.Join(r.root, "old/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.write("old/sub/f", "x")
	r.collect(3*time.Second, has("old/sub/f"))

	mv := func(from, to string) {
		if err := os.Rename(filepath.Join(r.root, from), filepath.Join(r.root, to)); err != nil {
			t.Fatal(err)
		}
	}
	mv("old", "new")
	r.collect(3*time.Second, has("old", "new", "new/sub", "new/sub/f"))
	r.write("new/sub/g", "x") // watches follow the new name, not the old
	c := r.collect(3*time.Second, has("new/sub/g"))
	for p := range c.seen {
		if strings.HasPrefix(p, "old/") {
			t.Errorf("reported %q under the old name", p)
		}
	}
	// Again, writing at once: the file may also be hinted under the old
	// name (its event can come through the moved watch before the Rename
	// is handled), but it must be reported under the new one.
	mv("new", "newer")
	r.write("newer/sub/h", "x")
	r.collect(3*time.Second, has("new", "newer", "newer/sub/h"))
	r.write("newer/sub/i", "x")
	r.collect(3*time.Second, has("newer/sub/i"))
}

func TestRealIgnoredAndTempNotReported(t *testing.T) {
	t.Parallel()
	m, err := config.NewMatcher([]string{"*.log", "/cache/"}) // what cmd/syncd passes
	if err != nil {
		t.Fatal(err)
	}
	r := startReal(t, "", Options{Ignore: m.Match}, nil)
	r.write("error.log", "x")
	if err := os.Mkdir(filepath.Join(r.root, "cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.write("cache/page", "x")
	r.write(".syncd-tmp-123", "<html>") // how a transfer lands a file
	if err := os.Rename(filepath.Join(r.root, ".syncd-tmp-123"), filepath.Join(r.root, "page.html")); err != nil {
		t.Fatal(err)
	}
	c := r.collect(3*time.Second, has("page.html"))
	more := r.collect(300*time.Millisecond, nil)
	for p := range more.seen {
		c.seen[p]++
	}
	if len(c.seen) != 1 {
		t.Errorf("reported %v, want only page.html", c.seen)
	}
}

func TestRealWatchLimitWarnsAndRescans(t *testing.T) {
	t.Parallel()
	enospc := func(n notifier, dir string) error {
		if strings.Contains(filepath.Base(dir), "nowatch") {
			return syscall.ENOSPC // what inotify_add_watch says at max_user_watches
		}
		return n.Add(dir)
	}
	r := startReal(t, "", Options{}, func(w *Watcher) { w.addWatch = enospc })
	// The tree appears at once (moved in, as a deploy does): it cannot be
	// watched, but what is in it is reported.
	staged := filepath.Join(t.TempDir(), "nowatch1")
	if err := os.MkdirAll(filepath.Join(staged, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staged, filepath.Join(r.root, "nowatch1")); err != nil {
		t.Fatal(err)
	}
	c := r.collect(3*time.Second, has("nowatch1", "nowatch1/sub"))
	if len(c.rescans) != 1 || c.rescans[0] != "inotify watch limit reached" {
		t.Errorf("rescans %q, want one for the watch limit", c.rescans)
	}
	if logs := r.logs.String(); !strings.Contains(logs, "fs.inotify.max_user_watches") ||
		!strings.Contains(logs, "sysctl -w fs.inotify.max_user_watches=1048576") {
		t.Errorf("no warning naming the sysctl:\n%s", logs)
	}
	r.write("still-watching", "x")
	r.collect(3*time.Second, has("still-watching"))
}

func TestRealRootRemovedKeepsRunning(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "www")
	if err := os.MkdirAll(filepath.Join(root, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := startReal(t, root, Options{}, nil)
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	c := r.collect(3*time.Second, func(c collected) bool { return len(c.rescans) > 0 })
	if !strings.Contains(c.rescans[0], "root removed") {
		t.Errorf("rescan reason %q, want root removed", c.rescans[0])
	}
	select {
	case err := <-r.done:
		t.Fatalf("Run returned %v after the root was removed; want it to keep going", err)
	default:
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	c = r.collect(5*time.Second, func(c collected) bool { return len(c.rescans) > 0 })
	if c.rescans[0] != "root restored" {
		t.Errorf("rescan reason %q, want root restored", c.rescans[0])
	}
	r.write("f", "x")
	r.collect(3*time.Second, has("f"))
}

// Not parallel: it counts the goroutines of the whole process.
func TestRealCancelStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	root := t.TempDir()
	w, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	var n notifier
	w.newNotifier = func() (notifier, error) {
		var err error
		n, err = newFSNotifier()
		return n, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Batch)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out) }()
	<-out // start
	if err := os.WriteFile(filepath.Join(root, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // an event pending in the debounce
	t0 := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return within 1s of cancel")
	}
	t.Logf("Run returned %v after cancel", time.Since(t0))
	if _, open := <-out; open {
		t.Error("out not closed")
	}
	if err := n.Add(root); err == nil {
		t.Error("the fsnotify watcher still accepts watches: not closed")
	}
	var now int
	for range 100 {
		if now = runtime.NumGoroutine(); now <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("%d goroutines before Run, %d after it returned:\n%s", before, now, buf[:runtime.Stack(buf, true)])
}
