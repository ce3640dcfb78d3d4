package localfolder

import (
	"path"
	"slices"
	"sync"
	"time"
)

// arrivals holds the names the receiver is about to rename a file into,
// each with the file's inode, so that the watcher can drop the one event
// that rename makes (an inotify "moved to") as soon as it reads it,
// rather than report the path, have it looked at under the folder's lock
// and found to be the receiver's own (see [Folder.NotOwn], which stays
// the answer for every other report of the receiver's writes).
//
// An announcement whose event never comes would be stale; it is harmless
// while it waits, as only a later arrival of that very inode at that name
// would match it. The watcher forgets the announcements of a directory
// whenever its events there may have been lost (it adds the directory's
// watch, the queue overflowed, the root went away), and an announcement
// older than ownKeep no longer counts.
type arrivals struct {
	mu sync.Mutex
	m  map[string]map[string]arrival // directory → base name → announcement
	n  int

	unrecorded []string      // placed, announced, and not recorded: for the indexer
	ready      chan struct{} // made by New, buffered 1: holds a value while unrecorded is not empty
}

type arrival struct {
	ino uint64
	at  time.Time
}

// maxArrivals bounds the announcements kept (a receiver whose folder has
// no watcher announces with nobody to hear): beyond it, the expired ones
// are dropped, and if none has expired a new one is not kept (its event is
// then reported and judged by NotOwn, as without announcements).
const maxArrivals = 1 << 16

// Arriving announces that the receiver is about to rename the file with
// inode ino into place at rel (slash-separated, relative to the root).
// The receiver withdraws it with [Folder.NotArriving] if the rename fails.
func (f *Folder) Arriving(rel string, ino uint64) {
	a := &f.arrivals
	now := f.own.clk.Now()
	dir, name := split(rel)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n >= maxArrivals {
		a.expire(now)
		if a.n >= maxArrivals {
			return
		}
	}
	if a.m == nil {
		a.m = map[string]map[string]arrival{}
	}
	names := a.m[dir]
	if names == nil {
		names = map[string]arrival{}
		a.m[dir] = names
	}
	if _, ok := names[name]; !ok {
		a.n++
	}
	names[name] = arrival{ino: ino, at: now}
}

// NotArriving withdraws the announcement of rel: its rename failed.
func (f *Folder) NotArriving(rel string) {
	dir, name := split(rel)
	a := &f.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	a.take(dir, name)
}

// Arrived is the watcher's side: the path rel was reported created or
// moved in, and holds the inode ino now. It reports whether that is the
// file the receiver announced there, and ends the announcement either way.
func (f *Folder) Arrived(rel string, ino uint64) bool {
	dir, name := split(rel)
	a := &f.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == 0 {
		return false
	}
	v, ok := a.take(dir, name)
	return ok && v.ino == ino && f.own.clk.Now().Sub(v.at) <= ownKeep
}

// Forget ends the announcements of the files directly in the directory
// dir (relative, slash-separated; "." is the root): the watcher has just
// added its watch, so the events of renames before that are not coming.
func (f *Folder) Forget(dir string) {
	a := &f.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n -= len(a.m[dir])
	delete(a.m, dir)
}

// ForgetAll ends every announcement: the watcher may have lost events (a
// queue overflow, a new start, the root gone).
func (f *Folder) ForgetAll() {
	a := &f.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m, a.n = nil, 0
}

// take removes and returns the announcement of dir/name.
func (a *arrivals) take(dir, name string) (arrival, bool) {
	names := a.m[dir]
	v, ok := names[name]
	if !ok {
		return v, false
	}
	a.n--
	if len(names) == 1 {
		delete(a.m, dir)
	} else {
		delete(names, name)
	}
	return v, true
}

// expire drops the announcements older than ownKeep.
func (a *arrivals) expire(now time.Time) {
	for dir, names := range a.m {
		for name, v := range names {
			if now.Sub(v.at) > ownKeep {
				a.take(dir, name)
			}
		}
	}
}

// split returns the directory ("." for the root) and base name of rel.
func split(rel string) (string, string) {
	return path.Dir(rel), path.Base(rel)
}

// Unrecorded hands over paths the receiver renamed into place, announced,
// and then could not record in the index (its commit failed after the
// renames: a failed syncfs, a failed index write). The watcher may have
// dropped their arrivals, so the indexer is to look at them as if it had
// reported them (see [Folder.TakeUnrecorded]); they are indexed as local
// files then, as they would have been without announcements. At most
// maxArrivals paths wait; beyond that the folder's periodic rescan finds
// the rest.
func (f *Folder) Unrecorded(paths []string) {
	if len(paths) == 0 {
		return
	}
	a := &f.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unrecorded = append(a.unrecorded, paths[:min(len(paths), maxArrivals-len(a.unrecorded))]...)
	select {
	case a.ready <- struct{}{}:
	default:
	}
}

// UnrecordedReady returns a channel that holds a value while paths handed
// over by [Folder.Unrecorded] wait for [Folder.TakeUnrecorded].
func (f *Folder) UnrecordedReady() <-chan struct{} { return f.arrivals.ready }

// TakeUnrecorded returns the paths handed over by [Folder.Unrecorded]
// since the last call, sorted, each once, and forgets them.
func (f *Folder) TakeUnrecorded() []string {
	a := &f.arrivals
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.ready:
	default:
	}
	p := a.unrecorded
	a.unrecorded = nil
	slices.Sort(p) // sorted and once each, as the watcher reports paths
	return slices.Compact(p)
}
