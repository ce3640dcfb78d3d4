package watcher

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer // armed
	fired  []*fakeTimer // fired, value maybe not taken yet
}

type fakeTimer struct {
	c     chan time.Time
	at    time.Time
	clock *fakeClock
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: c.now.Add(d), clock: c}
	if d <= 0 {
		t.c <- c.now
		c.fired = append(c.fired, t)
	} else {
		c.timers = append(c.timers, t)
	}
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

// Stop stops t; like a time.Timer since Go 1.23, a stopped timer never
// delivers a value, even one it fired before.
func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-t.c:
	default:
	}
	i := slices.Index(c.timers, t)
	if i < 0 {
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	return true
}

// fireNext fires the earliest timer due at or before until, moving the
// clock to its time. It returns the timer, or nil if none is due.
func (c *fakeClock) fireNext(until time.Time) *fakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next *fakeTimer
	for _, t := range c.timers {
		if !t.at.After(until) && (next == nil || t.at.Before(next.at)) {
			next = t
		}
	}
	if next == nil {
		c.now = until
		return nil
	}
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool { return t == next })
	if next.at.After(c.now) {
		c.now = next.at
	}
	next.c <- next.at
	c.fired = append(c.fired, next)
	return next
}

// bump moves the clock by d without firing timers: time spent inside Run.
func (c *fakeClock) bump(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeNotifier is a notifier fed by the test.
type fakeNotifier struct {
	events chan fsnotify.Event
	errors chan error

	mu      sync.Mutex
	watched map[string]bool
	closed  bool
}

func newFakeNotifier() *fakeNotifier {
	return &fakeNotifier{
		events:  make(chan fsnotify.Event),
		errors:  make(chan error),
		watched: make(map[string]bool),
	}
}

func (n *fakeNotifier) Add(dir string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := os.Lstat(dir); err != nil {
		return err
	}
	n.watched[dir] = true
	return nil
}

func (n *fakeNotifier) Remove(dir string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.watched, dir)
	return nil
}

func (n *fakeNotifier) Events() <-chan fsnotify.Event { return n.events }
func (n *fakeNotifier) Errors() <-chan error          { return n.errors }

func (n *fakeNotifier) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	return nil
}

func (n *fakeNotifier) isWatched(dir string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.watched[dir]
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// harness runs a Watcher on a fake clock and a fake notifier, over a real
// temporary directory (for walks and stats).
type harness struct {
	t     *testing.T
	root  string
	w     *Watcher
	clock *fakeClock
	n     *fakeNotifier
	out   chan Batch
	logs  *syncBuffer
	start time.Time
}

// newHarness makes the tree (paths ending in "/" are directories), starts
// Run and consumes the start batch. setup, if not nil, may change the
// Watcher before Run.
func newHarness(t *testing.T, opts Options, tree []string, setup func(*Watcher)) *harness {
	t.Helper()
	h := &harness{t: t, root: t.TempDir(), clock: newFakeClock(), n: newFakeNotifier(),
		out: make(chan Batch, 16), logs: &syncBuffer{}}
	for _, p := range tree {
		h.mk(p)
	}
	opts.Root, opts.Clock = h.root, h.clock
	opts.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	w.newNotifier = func() (notifier, error) { return h.n, nil }
	w.syncc = make(chan chan struct{})
	if setup != nil {
		setup(w)
	}
	h.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, h.out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	h.sync()
	h.start = h.clock.Now()
	if b := h.recv(); !b.Rescan || !strings.Contains(b.Reason, "start") {
		t.Fatalf("first batch = %+v, want the start Rescan", b)
	}
	return h
}

// mk creates rel under the root: a directory if it ends in "/", else a
// small file.
func (h *harness) mk(rel string) {
	h.t.Helper()
	p := filepath.Join(h.root, rel)
	if strings.HasSuffix(rel, "/") {
		if err := os.MkdirAll(p, 0o755); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// sync returns once Run has handled everything sent to it so far,
// including fired timers.
func (h *harness) sync() {
	for {
		h.ping()
		h.clock.mu.Lock()
		h.clock.fired = slices.DeleteFunc(h.clock.fired, func(t *fakeTimer) bool { return len(t.c) == 0 })
		pending := len(h.clock.fired) > 0
		h.clock.mu.Unlock()
		h.ping() // whatever took a timer value has finished
		if !pending {
			return
		}
	}
}

func (h *harness) ping() {
	c := make(chan struct{})
	h.w.syncc <- c
	<-c
}

// event sends an event for rel (relative to the root) and waits until it
// is handled.
func (h *harness) event(rel string, op fsnotify.Op) {
	h.n.events <- fsnotify.Event{Name: filepath.Join(h.root, rel), Op: op}
	h.sync()
}

// advance moves the fake clock by d, firing timers in order and letting
// Run handle each before the next.
func (h *harness) advance(d time.Duration) {
	until := h.clock.Now().Add(d)
	for h.clock.fireNext(until) != nil {
		h.sync()
	}
	h.sync()
}

// next advances the clock timer by timer, up to max, until Run hands over
// a batch; it returns the batch and the fake time since the start batch.
func (h *harness) next(max time.Duration) (Batch, time.Duration) {
	h.t.Helper()
	until := h.clock.Now().Add(max)
	for {
		select {
		case b := <-h.out:
			return b, h.at()
		default:
		}
		if h.clock.fireNext(until) == nil {
			h.t.Fatalf("no batch by %v", h.at())
		}
		h.sync()
	}
}

// at is the fake time since the start batch.
func (h *harness) at() time.Duration { return h.clock.Now().Sub(h.start) }

// recv returns the batch Run has handed over, failing if there is none.
func (h *harness) recv() Batch {
	h.t.Helper()
	select {
	case b := <-h.out:
		return b
	default:
		h.t.Fatalf("at %v: no batch, want one", h.at())
		return Batch{}
	}
}

// none fails if Run has handed over a batch.
func (h *harness) none() {
	h.t.Helper()
	select {
	case b := <-h.out:
		h.t.Fatalf("at %v: unexpected batch %+v", h.at(), b)
	default:
	}
}
