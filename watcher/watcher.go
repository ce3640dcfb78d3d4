package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// rootRetry is how often a removed root is looked for.
const rootRetry = time.Second

// Watcher watches one folder. Create it with [New] and run it with
// [Watcher.Run]; [Watcher.Stats] is safe to call concurrently with Run.
type Watcher struct {
	opts Options

	// Test hooks. newNotifier makes the event source; addWatch adds one
	// directory watch (a test makes it fail with ENOSPC); syncc, if not
	// nil, receives channels that Run closes between two steps.
	newNotifier func() (notifier, error)
	addWatch    func(n notifier, dir string) error
	syncc       chan chan struct{}

	running                                    atomic.Bool
	watches, unwatched, pending                atomic.Int64
	limited                                    atomic.Bool
	events, overflows, rescans, batches, paths atomic.Uint64
}

// New checks opts (Root must be an existing directory) and returns a
// Watcher for it. It does not start watching: Run does.
func New(opts Options) (*Watcher, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Watcher{opts: o, newNotifier: newFSNotifier, addWatch: addWatch}, nil
}

// Stats returns the current counters. It is safe for concurrent use.
func (w *Watcher) Stats() Stats {
	return Stats{
		Watches:      int(w.watches.Load()),
		Unwatched:    int(w.unwatched.Load()),
		WatchLimited: w.limited.Load(),
		Pending:      int(w.pending.Load()),
		Events:       w.events.Load(),
		Overflows:    w.overflows.Load(),
		Rescans:      w.rescans.Load(),
		Batches:      w.batches.Load(),
		Paths:        w.paths.Load(),
	}
}

// Run watches the folder and sends batches to out until ctx ends. It first
// adds a watch to every directory (logging progress on a large tree), then
// sends Batch{Rescan: true, Reason: "start"}; after that, batches of
// changed paths, and Rescan batches on overflow, on hitting the watch limit
// and every Options.Rescan. A slow consumer does not stall the watcher:
// what is due while a batch waits to be received is merged into it.
//
// File-system errors are logged, never fatal. If the root is removed or
// moved away, Run logs a warning, sends a Rescan ("root removed") and keeps
// going: it looks for the root every second and, once it is back, watches
// it again and sends a Rescan ("root restored").
//
// Run returns nil when ctx ends, or an error if inotify cannot be started
// (e.g. fs.inotify.max_user_instances reached) or stops. It closes out and
// its inotify instance before it returns. A second Run while one is
// running returns an error at once (and leaves out open).
func (w *Watcher) Run(ctx context.Context, out chan<- Batch) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watcher: Run called while already running")
	}
	defer w.running.Store(false)
	defer close(out)
	n, err := w.newNotifier()
	if err != nil {
		return fmt.Errorf("watch %s: %w", w.opts.Root, err)
	}
	s := &session{
		w: w, ctx: ctx, n: n, opts: &w.opts, log: w.opts.Logger,
		root: w.opts.Root, prefix: strings.TrimSuffix(w.opts.Root, "/") + "/",
		dirs: make(map[string]struct{}), unwatched: make(map[string]listing),
		pending: make(map[string]*pend),
	}
	defer s.close()
	s.start()
	return s.loop(out)
}

// session is the state of one Run, owned by its goroutine.
type session struct {
	w            *Watcher
	ctx          context.Context
	n            notifier
	opts         *Options
	log          *slog.Logger
	root, prefix string

	dirs      map[string]struct{} // watched directories (absolute)
	unwatched map[string]listing  // directories without a watch (the limit), polled
	pending   map[string]*pend    // relative path → state, not yet reported
	out       *Batch              // due, not yet received by the consumer
	outSet    map[string]struct{} // paths in out

	flushT    Timer
	flushAt   time.Time // when flushT fires; zero if not armed
	lastFlush time.Time
	rescanT   Timer
	retryT    Timer
	pollT     Timer         // polls the unwatched directories
	pollTook  time.Duration // how long the last poll took

	limited          bool      // the watch limit was hit (warned once)
	stopAdding       bool      // the watch limit was hit in the current walk
	rootGone         bool      // the root is missing; retryT looks for it
	needRefresh      bool      // re-add watches at the next flush (after overflow)
	refreshNotBefore time.Time // the next refresh waits until then
	rescanReason     string    // a Rescan to send at the next flush
}

func (s *session) close() {
	stop(&s.flushT)
	stop(&s.rescanT)
	stop(&s.retryT)
	stop(&s.pollT)
	if err := s.n.Close(); err != nil {
		s.log.Warn("watcher: close inotify", "root", s.root, "err", err)
	}
	s.w.watches.Store(0)
	s.w.unwatched.Store(0)
	s.w.pending.Store(0)
}

// start watches the tree and queues the start Rescan, then arms the
// periodic rescan.
func (s *session) start() {
	s.forgetAll()
	if fi, err := os.Stat(s.root); err != nil || !fi.IsDir() {
		s.lostRoot("missing at start")
	} else {
		t0 := s.opts.Clock.Now()
		s.refresh(true)
		s.log.Info("watcher: watching folder", "root", s.root, "dirs", len(s.dirs),
			"took", s.opts.Clock.Now().Sub(t0).Round(time.Millisecond))
	}
	s.emitRescan("start")
	s.armRescan()
}

func (s *session) loop(out chan<- Batch) error {
	for {
		if s.out != nil { // hand over a due batch before anything else
			select {
			case out <- *s.out:
				s.sent()
			default:
			}
		}
		var sendc chan<- Batch
		var b Batch
		if s.out != nil {
			sendc, b = out, *s.out
		}
		select {
		case <-s.ctx.Done():
			return nil
		case sendc <- b:
			s.sent()
		case ev, ok := <-s.n.Events():
			if !ok {
				return fmt.Errorf("watch %s: inotify stopped", s.root)
			}
			s.w.events.Add(1)
			s.event(ev)
		case err, ok := <-s.n.Errors():
			if !ok {
				return fmt.Errorf("watch %s: inotify stopped", s.root)
			}
			s.notifyError(err)
		case <-timerC(s.flushT):
			s.flushT, s.flushAt = nil, time.Time{}
			if err := s.drain(); err != nil {
				return err
			}
			s.flush()
		case <-timerC(s.rescanT):
			s.rescanT = nil
			s.rescanReason = joinReason(s.rescanReason, "periodic")
			s.needRefresh = true
			s.flush()
			s.armRescan()
		case <-timerC(s.retryT):
			s.retryT = nil
			s.retryRoot()
		case <-timerC(s.pollT):
			s.pollT = nil
			s.poll()
		case c := <-s.w.syncc:
			close(c)
		}
		s.w.pending.Store(int64(len(s.pending)))
	}
}

// event handles one fsnotify event.
func (s *session) event(ev fsnotify.Event) {
	name := filepath.Clean(ev.Name)
	if name == s.root {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			s.lostRoot("removed or moved away")
		}
		return // the root's own metadata is left to rescans
	}
	rel, ok := s.rel(name)
	if !ok || s.opts.IsTemp(filepath.Base(name)) {
		return
	}
	_, isDir := s.dirs[name]
	if isDir && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
		s.dropTree(name) // a moved directory comes back as a Create elsewhere
	}
	created := false
	if ev.Has(fsnotify.Create) {
		fi, err := os.Lstat(name)
		if err == nil && fi.IsDir() {
			isDir, created = true, true
		} else if err == nil && s.opts.Arrivals != nil && s.opts.Arrivals.Arrived(rel, inode(fi)) {
			return // the receiver's rename, as it announced it
		}
	}
	if _, seen := s.pending[rel]; !seen && s.ignored(rel, isDir) {
		return
	}
	s.touch(rel)
	if created {
		s.addTree(name)
	}
}

// drain handles the events already waiting, so that a flush does not
// report a path whose newer event it has not seen yet (select picks among
// ready cases at random).
func (s *session) drain() error {
	for range eventBuffer {
		select {
		case ev, ok := <-s.n.Events():
			if !ok {
				return fmt.Errorf("watch %s: inotify stopped", s.root)
			}
			s.w.events.Add(1)
			s.event(ev)
		default:
			return nil
		}
	}
	return nil
}

// notifyError handles an error from fsnotify.
func (s *session) notifyError(err error) {
	if !errors.Is(err, fsnotify.ErrEventOverflow) {
		s.log.Warn("watcher: inotify error", "root", s.root, "err", err)
		return
	}
	s.w.overflows.Add(1)
	s.forgetAll()
	if !s.needRefresh { // once per burst
		s.log.Warn("watcher: inotify event queue overflowed, events were lost; rescanning the folder "+
			"(if this recurs, raise fs.inotify.max_queued_events with: sysctl -w fs.inotify.max_queued_events=65536)",
			"root", s.root)
	}
	// Directories made during the lost events have no watch yet: re-add
	// watches first, then send the Rescan, both at the next flush.
	s.needRefresh = true
	s.rescanReason = joinReason(s.rescanReason, "inotify queue overflow")
	at := s.opts.Clock.Now().Add(s.opts.Debounce)
	if at.Before(s.refreshNotBefore) {
		at = s.refreshNotBefore
	}
	s.armFlush(at)
}

// lostRoot drops every watch and waits for the root to come back.
func (s *session) lostRoot(why string) {
	if s.rootGone {
		return
	}
	s.log.Warn("watcher: folder root "+why+"; waiting for it to reappear", "root", s.root)
	s.rootGone = true
	s.forgetAll()
	s.dropTree(s.root)
	s.emitRescan("root removed")
	s.retryT = s.opts.Clock.NewTimer(rootRetry)
}

// retryRoot watches the root again if it is back.
func (s *session) retryRoot() {
	if fi, err := os.Stat(s.root); err != nil || !fi.IsDir() {
		s.retryT = s.opts.Clock.NewTimer(rootRetry)
		return
	}
	s.rootGone = false
	s.refresh(false)
	s.log.Info("watcher: folder root is back", "root", s.root, "dirs", len(s.dirs))
	s.emitRescan("root restored")
}

func (s *session) armRescan() {
	if s.opts.Rescan > 0 {
		s.rescanT = s.opts.Clock.NewTimer(s.opts.Rescan)
	}
}

// rel returns name relative to the root, slash-separated.
func (s *session) rel(name string) (string, bool) {
	r, ok := strings.CutPrefix(name, s.prefix)
	return filepath.ToSlash(r), ok && r != ""
}

func (s *session) ignored(rel string, isDir bool) bool {
	return s.opts.Ignore != nil && s.opts.Ignore(rel, isDir)
}

// joinReason adds r to the reasons in old unless it is there.
func joinReason(old, r string) string {
	switch {
	case old == "":
		return r
	case strings.Contains(old, r):
		return old
	}
	return old + "; " + r
}

// forgetAll ends every announced arrival (see [Arrivals]).
func (s *session) forgetAll() {
	if s.opts.Arrivals != nil {
		s.opts.Arrivals.ForgetAll()
	}
}

// inode returns the inode number of fi, or 0.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
