package receive

import (
	"errors"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/atdir"
	"github.com/syncd/syncd/transfer/wire"
)

// A file that fails for lack of space keeps what it received: its
// temporary file stays (a partial), and the next try of its path builds
// into it, asking the peer only for the chunks it does not hold yet
// (each checked by hashing what is there, so nothing is trusted that a
// local writer could have changed). While that try cannot reserve the
// file's space, it asks the peer for nothing. A partial holds space that
// the files after it may need: when a file fails for space that it would
// find if the other partials were removed, they are.

// partial is the kept temporary file of a path that failed for space.
type partial struct {
	tmp   string   // its name in the folder, where it was made
	dir   *os.File // its directory as opened then, to remove it wherever that went
	ino   uint64
	bytes int64 // space it holds
}

// remove removes the partial's file from its directory, wherever that
// is now, and releases the directory.
func (pt *partial) remove() {
	unix.Unlinkat(int(pt.dir.Fd()), path.Base(pt.tmp), 0)
	pt.dir.Close()
}

// takePartial returns the partial kept for rel, if any, and forgets it:
// the caller resumes it or removes it.
func (r *Receiver) takePartial(rel string) *partial {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	pt := r.partials[rel]
	delete(r.partials, rel)
	return pt
}

// resume opens pt for its path's file to be built into it again, or
// removes it and returns nil if it is no longer the file that was kept
// (gone with its directory, swept by the indexer, replaced).
func (r *Receiver) resume(pt *partial, at *atdir.Dirs) *os.File {
	f, err := at.OpenFile(pt.tmp, os.O_RDWR, 0)
	if err == nil {
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Ino == pt.ino && st.Mode&unix.S_IFMT == unix.S_IFREG {
			pt.dir.Close()
			// changed now: the indexer takes a temporary file unchanged for
			// long for one left by a crash (by the system's time, which
			// the file system keeps: not the node's clock)
			at.Chtimes(pt.tmp, time.Now())
			return f
		}
		f.Close()
	}
	pt.remove()
	return nil
}

// holds reports whether f holds chunk id of length n at off.
func (rd *srcReader) holds(f *os.File, id chunkstore.ID, n uint32, off int64) bool {
	b := rd.buf.Buf(int(n))
	if _, err := f.ReadAt(b, off); err != nil {
		return false
	}
	return rd.s.f.Chunking.ID(rd.h, b) == id
}

// reserve allocates size bytes for f, so that a file that cannot fit
// fails before its chunks are asked for. Only a resumed file and, while
// the folder is short of space, every file is reserved: not on the way
// of a folder that has room.
func reserve(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil // the file system cannot: the writes will tell
	}
	if err != nil {
		return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
	}
	return nil
}

// keepPartial keeps a's temporary file, which failed for space, for the
// next try of its path if it holds anything, and makes room for a if
// other partials take what it needs. It reports whether it kept the
// file; if not, the caller removes it.
func (r *Receiver) keepPartial(a *action, at *atdir.Dirs) bool {
	dir, name, err := at.Parent(a.tmp)
	if err != nil {
		return false
	}
	defer dir.Release()
	fd := dir.Fd()
	var pt *partial
	var st unix.Stat_t
	// a file with nothing in it is not worth an open directory while it waits
	if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Blocks > 0 {
		if dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0); err == nil {
			pt = &partial{tmp: a.tmp, dir: os.NewFile(uintptr(dup), path.Dir(a.tmp)), ino: st.Ino, bytes: st.Blocks * 512}
		}
	}
	r.pmu.Lock()
	defer r.pmu.Unlock()
	if old := r.partials[a.e.Path]; old != nil {
		old.remove()
		delete(r.partials, a.e.Path)
	}
	if pt != nil {
		if r.partials == nil {
			r.partials = map[string]*partial{}
		}
		r.partials[a.e.Path] = pt
	}
	r.makeRoom(a.e.Path, a.e.Size, fd)
	return pt != nil
}

// makeRoom removes the partials of paths other than rel if rel, a file
// of size bytes that failed for space, would fit without them: the
// smaller files go through first (see transfer's puller.due), the larger
// ones fetch again what they held. fd is a directory on the folder's file
// system; r.pmu is held.
func (r *Receiver) makeRoom(rel string, size int64, fd int) {
	var held, own int64
	for p, o := range r.partials {
		if p == rel {
			own = o.bytes
		} else {
			held += o.bytes
		}
	}
	if held == 0 {
		return
	}
	var fs unix.Statfs_t
	if unix.Fstatfs(fd, &fs) != nil {
		return
	}
	free := int64(fs.Bavail) * fs.Bsize
	if os.Geteuid() == 0 {
		free = int64(fs.Bfree) * fs.Bsize // root may write into the reserved blocks
	}
	if size-own > free+held {
		return // it would not fit either way: what arrived stays
	}
	for p, o := range r.partials {
		if p != rel {
			o.remove()
			delete(r.partials, p)
		}
	}
}

// DropPartials removes the partials of the paths of es, a batch just
// settled, that keep does not report (those no longer waiting for a
// retry: applied, or nothing to do); es nil: of every path. The paths of
// other batches keep theirs (one prepared ahead has not settled yet).
func (r *Receiver) DropPartials(es []wire.Entry, keep func(rel string) bool) {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	if len(r.partials) == 0 {
		return
	}
	drop := func(rel string) {
		if pt := r.partials[rel]; pt != nil && !keep(rel) {
			pt.remove()
			delete(r.partials, rel)
		}
	}
	if es == nil {
		for rel := range r.partials {
			drop(rel)
		}
	}
	for _, e := range es {
		drop(e.Path)
	}
}
