package localfolder

import (
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/state"
)

// ownWrites remembers what the receiver last left at each path it wrote
// (its lstat, read after the rename), so that the watcher's
// reports of those writes are not indexed a second time: the receiver
// records every entry it applies in the same step. Anything that touches
// the path afterwards changes its change time, and is indexed as usual.
type ownWrites struct {
	clk clock.Clock // of ownKeep; set by New

	mu sync.Mutex
	m  map[string]ownStamp
}

// ownStamp holds what the indexer compares to tell a file unchanged
// (inode, size, mtime, change time): a report NotOwn drops is one the
// indexer would have found unchanged. A directory is the receiver's
// while it is the same inode with the same mode and owner: files moved
// into it change its times, and are reported (and judged) themselves.
type ownStamp struct {
	ino          uint64 // 0: the receiver removed the path
	dir          bool
	size         int64
	mtime, ctime int64
	mode         uint32 // permission bits, for a directory
	uid, gid     uint32
	at           time.Time
}

// ownKeep bounds how long a write waits for its report: the watcher
// reports within its debounce, and a report that never comes (coalesced
// into a directory's scan, or lost to a rescan) must not be kept forever.
const ownKeep = time.Minute

// RecordOwn records that the receiver left the path rel (slash-separated,
// relative to the root) as e, its local facts read after the rename, or
// removed it (e.Deleted): the watcher's reports of that write are dropped
// by [Folder.NotOwn] while the path stays as e says, for up to a minute.
func (f *Folder) RecordOwn(rel string, e state.Entry) {
	o := &f.own
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.clk.Now()
	if o.m == nil {
		o.m = map[string]ownStamp{}
	}
	if len(o.m) >= 1<<16 {
		for p, s := range o.m {
			if now.Sub(s.at) > ownKeep {
				delete(o.m, p)
			}
		}
	}
	s := ownStamp{ino: e.Inode, dir: e.Type == "dir", size: e.Size, mtime: e.ModTime, ctime: e.ChTime,
		mode: e.Mode & 0o7777, uid: e.UID, gid: e.GID, at: now}
	if e.Deleted {
		s = ownStamp{at: now}
	}
	o.m[rel] = s
}

// NotOwn returns the paths of a watcher report that still need indexing:
// all but those that are as the receiver left them (see
// [Folder.RecordOwn]). It keeps the order of paths and reuses its array.
// The indexer's caller holds the folder's lock, so that every write the
// receiver has placed is recorded by then.
func (f *Folder) NotOwn(paths []string) []string {
	o := &f.own
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.m) == 0 {
		return paths
	}
	out := paths[:0]
	now := o.clk.Now()
	for _, p := range paths {
		// A path is reported once per event, and the receiver's writes
		// make several (a directory's creation, mode and times): a match
		// is kept for the next report; anything else ends it.
		s, ok := o.m[p]
		if ok && now.Sub(s.at) <= ownKeep && sameStamp(filepath.Join(f.root, filepath.FromSlash(p)), s) {
			continue
		}
		delete(o.m, p)
		out = append(out, p)
	}
	return out
}

// sameStamp reports whether the path abs is the inode of s, unchanged
// since (for a removal: still absent). It only compares (nothing is read
// through it), so the plain path will do.
func sameStamp(abs string, s ownStamp) bool {
	var st syscall.Stat_t
	err := syscall.Lstat(abs, &st)
	if s.ino == 0 {
		return errors.Is(err, fs.ErrNotExist)
	}
	if err != nil || st.Ino != s.ino || (st.Mode&syscall.S_IFMT == syscall.S_IFDIR) != s.dir {
		return false
	}
	if s.dir {
		return st.Mode&0o7777 == s.mode && st.Uid == s.uid && st.Gid == s.gid
	}
	return st.Size == s.size && st.Mtim.Sec*1e9+st.Mtim.Nsec == s.mtime && st.Ctim.Sec*1e9+st.Ctim.Nsec == s.ctime
}
