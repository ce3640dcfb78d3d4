package watcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/syncd/syncd/internal/health"
)

// watchLimitCondition names the folder condition set while directories are
// without a watch because of the inotify watch limit.
const watchLimitCondition = "watch-limit"

// listing is what a poll compares in a directory without a watch: each
// entry's type, size, mtime and inode.
type listing map[string]entry

type entry struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
	ino   uint64
}

// same reports whether an entry looks unchanged. A directory's own size and
// mtime change with its entries, which are watched or polled by themselves.
func (e entry) same(o entry) bool {
	if e.mode.IsDir() && o.mode.IsDir() {
		return e.ino == o.ino
	}
	return e.mode == o.mode && e.size == o.size && e.mtime.Equal(o.mtime) && e.ino == o.ino
}

// list reads the entries of dir that are not temporary.
func (s *session) list(dir string) (listing, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	l := make(listing, len(des))
	for _, de := range des {
		if s.opts.IsTemp(de.Name()) {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // gone meanwhile: a removal the next poll sees
		}
		e := entry{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.ino = st.Ino
		}
		l[de.Name()] = e
	}
	return l, nil
}

// unwatch records dir as a directory without a watch, to be polled, with
// its entries as they are now.
func (s *session) unwatch(dir string) {
	if _, ok := s.unwatched[dir]; ok {
		return
	}
	l, err := s.list(dir)
	if err != nil {
		return // gone already, or unreadable: the walk logs it
	}
	s.unwatched[dir] = l
	s.armPoll()
}

// armPoll arms the poll timer if directories are without a watch. Polls
// are spaced so that they take at most a tenth of the time, like walks.
func (s *session) armPoll() {
	if s.pollT != nil || len(s.unwatched) == 0 {
		return
	}
	s.pollT = s.opts.Clock.NewTimer(max(s.opts.Poll, 9*s.pollTook))
}

// poll runs every Options.Poll while directories are without a watch. It
// first tries to add their watches (stopping at the first that hits the
// limit again); each directory, watched now or not, is then compared with
// its last listing and what changed is reported. A directory that became
// watched gets this last look, for what changed before its watch existed.
func (s *session) poll() {
	t0 := s.opts.Clock.Now()
	dirs := make([]string, 0, len(s.unwatched))
	for d := range s.unwatched {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs) // parents first: a parent's poll may add or drop its children
	retry := true
	for _, dir := range dirs {
		if _, ok := s.unwatched[dir]; !ok {
			continue // dropped by its parent's poll
		}
		watched := false
		if retry {
			switch err := s.w.addWatch(s.n, dir); {
			case err == nil:
				s.dirs[dir], watched = struct{}{}, true
			case isWatchLimit(err):
				retry = false
			}
		}
		s.pollDir(dir)
		if watched {
			delete(s.unwatched, dir)
		}
	}
	s.counts()
	s.pollTook = s.opts.Clock.Now().Sub(t0)
	s.limitState()
}

// pollDir compares dir with its last listing and reports what changed: a
// new, changed or removed entry is touched, a new directory is watched (or
// polled) and walked, a removed one is dropped.
func (s *session) pollDir(dir string) {
	old := s.unwatched[dir]
	cur, err := s.list(dir)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist) && dir == s.root:
			s.lostRoot("removed or moved away") // no watch told
		case errors.Is(err, fs.ErrNotExist):
			s.dropTree(dir) // its removal is seen from its parent
		}
		return
	}
	s.unwatched[dir] = cur
	for name, e := range cur {
		o, had := old[name]
		if had && o.same(e) {
			continue
		}
		p := filepath.Join(dir, name)
		rel, ok := s.rel(p)
		if !ok || s.ignored(rel, e.mode.IsDir()) {
			continue
		}
		s.touch(rel)
		if had && o.mode.IsDir() {
			s.dropTree(p) // replaced
		}
		if e.mode.IsDir() {
			s.addTree(p)
		}
	}
	for name, o := range old {
		if _, ok := cur[name]; ok {
			continue
		}
		p := filepath.Join(dir, name)
		rel, ok := s.rel(p)
		if !ok || s.ignored(rel, o.mode.IsDir()) {
			continue
		}
		s.touch(rel)
		if o.mode.IsDir() {
			s.dropTree(p)
		}
	}
}

// limitState updates the watch-limit condition after a walk or a poll:
// while directories are without a watch, the folder is degraded and they
// are polled; once every directory is watched, the condition clears.
func (s *session) limitState() {
	if len(s.unwatched) > 0 {
		if s.limited && s.opts.Health != nil {
			s.opts.Health.Set(watchLimitCondition, health.Degraded, s.limitReason())
		}
		s.armPoll()
		return
	}
	stop(&s.pollT)
	if !s.limited {
		return
	}
	s.limited = false
	s.w.limited.Store(false)
	if s.opts.Health != nil {
		s.opts.Health.Clear(watchLimitCondition)
	}
	s.log.Info("watcher: every directory is watched again", "root", s.root, "dirs", len(s.dirs))
}

// limitReason is the reason of the watch-limit condition.
func (s *session) limitReason() string {
	return fmt.Sprintf("inotify watch limit reached: %d directories are not watched and are polled every %v; "+
		"raise the limit with: sysctl -w fs.inotify.max_user_watches=1048576", len(s.unwatched), s.opts.Poll)
}
