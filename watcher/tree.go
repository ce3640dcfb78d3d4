package watcher

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/syncd/syncd/internal/health"
)

// progressEvery is how often a long walk logs its progress.
const progressEvery = 10 * time.Second

// refresh walks the whole tree and (re-)adds a watch to every directory:
// at start, after an overflow (directories made during lost events have
// none), periodically and when the root comes back. Re-adding a watched
// directory is cheap and repairs a path whose directory was replaced.
// Watches of directories no longer on disk are dropped. A complete walk
// that finds every directory watched clears the watch-limit condition.
//
// A refresh walks the tree in Run's goroutine; so that overflows under a
// sustained load do not turn into back-to-back walks, the next refresh
// waits nine times as long as this one took (refreshNotBefore).
func (s *session) refresh(progress bool) {
	seen := make(map[string]struct{}, len(s.dirs))
	t0 := s.opts.Clock.Now()
	done := s.walk(s.root, false, seen, progress)
	end := s.opts.Clock.Now()
	s.refreshNotBefore = end.Add(9 * end.Sub(t0))
	if !done {
		return // ctx ended
	}
	for d := range s.dirs {
		if _, ok := seen[d]; !ok {
			_ = s.n.Remove(d) // the kernel may have dropped it already
			delete(s.dirs, d)
		}
	}
	for d := range s.unwatched {
		if _, ok := seen[d]; !ok {
			delete(s.unwatched, d)
		}
	}
	s.counts()
	s.limitState()
}

// addTree watches the new directory dir and everything below it, and
// reports every entry found: files may land in dir before its watch exists.
func (s *session) addTree(dir string) {
	s.walk(dir, true, nil, false)
}

// walk watches dir and every directory below it that is not ignored,
// temporary or a symlink (symlinks are not followed). With report, each
// entry below dir is touched. Directories found are added to seen if it is
// not nil. walk reports whether it finished (false if ctx ended).
// Unreadable entries are logged and skipped.
func (s *session) walk(dir string, report bool, seen map[string]struct{}, progress bool) bool {
	s.stopAdding = false
	clock := s.opts.Clock
	start := clock.Now()
	lastLog, n := start, 0
	done := true
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if s.ctx.Err() != nil {
			done = false
			return fs.SkipAll
		}
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("watcher: cannot read", "path", p, "err", err)
			}
			return nil // for a directory: skip its entries
		}
		if p != dir {
			if !report && !d.IsDir() {
				return nil
			}
			rel, _ := s.rel(p)
			if s.opts.IsTemp(d.Name()) || s.ignored(rel, d.IsDir()) {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if report {
				s.touch(rel)
			}
		}
		if !d.IsDir() {
			return nil
		}
		if seen != nil {
			seen[p] = struct{}{}
		}
		s.watch(p)
		n++
		if now := clock.Now(); progress && now.Sub(lastLog) >= progressEvery {
			lastLog = now
			s.log.Info("watcher: adding watches", "root", s.root, "dirs", n,
				"elapsed", now.Sub(start).Round(time.Second))
		}
		return nil
	})
	s.counts()
	return done
}

// watch adds a watch for dir. Hitting the watch limit logs one warning and
// sets the watch-limit condition (until every directory is watched again),
// sends a Rescan and stops adding watches for the rest of the walk: no
// retry storm. The directories left without a watch are polled every
// Options.Poll, which also retries their watches.
func (s *session) watch(dir string) {
	if s.stopAdding {
		s.unwatch(dir)
		return
	}
	err := s.w.addWatch(s.n, dir)
	switch {
	case err == nil:
		if _, had := s.dirs[dir]; !had && s.opts.Arrivals != nil {
			// what was renamed into it before made no event here
			rel, ok := s.rel(dir)
			if !ok {
				rel = "."
			}
			s.opts.Arrivals.Forget(rel)
		}
		s.dirs[dir] = struct{}{}
		delete(s.unwatched, dir)
	case isWatchLimit(err):
		s.stopAdding = true
		s.unwatch(dir)
		if !s.limited {
			s.limited = true
			s.w.limited.Store(true)
			if s.opts.Health != nil {
				s.opts.Health.Set(watchLimitCondition, health.Degraded, s.limitReason())
			}
			s.log.Warn("watcher: "+fmt.Sprintf(watchLimitHelp, s.opts.Poll), "root", s.root, "watched", len(s.dirs), "dir", dir)
			s.emitRescan("inotify watch limit reached")
		}
	case errors.Is(err, fs.ErrNotExist):
		// gone already: its removal is an event of its parent
	default:
		s.log.Warn("watcher: cannot watch directory", "dir", dir, "err", err)
	}
}

// dropTree drops the watches of dir and every directory below it (dir was
// removed or moved; inotify watches follow a moved directory, which would
// report its events under the old name).
func (s *session) dropTree(dir string) {
	below := strings.TrimSuffix(dir, "/") + "/"
	for d := range s.dirs {
		if d == dir || strings.HasPrefix(d, below) {
			_ = s.n.Remove(d) // the kernel may have dropped it already
			delete(s.dirs, d)
		}
	}
	for d := range s.unwatched {
		if d == dir || strings.HasPrefix(d, below) {
			delete(s.unwatched, d)
		}
	}
	s.counts()
}

// counts publishes the numbers of watched and polled directories.
func (s *session) counts() {
	s.w.watches.Store(int64(len(s.dirs)))
	s.w.unwatched.Store(int64(len(s.unwatched)))
}
