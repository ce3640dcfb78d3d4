package transfer

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/state"
)

// A chunk found in a local file is hashed before it is used (the file may
// have changed since the index listed it), except where the file is, by
// its stat, still the version the index listed: the same inode, size,
// mtime and ctime (a write changes the ctime, and nothing but the clock
// sets it). That is the indexer's own rule for a file it does not read
// again. Such a chunk is copied by the kernel (copy_file_range), which on
// a large file with a small edit (a database dump) saves reading, hashing
// and writing back every unchanged byte in user space. The stat is taken
// again after the copy: a file that changed meanwhile is not trusted, and
// the chunk is read and hashed, or asked of the peer, as before.

// facts returns what copyTo compares of e, a file's index entry (zero
// when the index has no stat of it).
func facts(e state.Entry) state.Entry {
	if e.Type != "file" || e.Deleted || e.Inode == 0 {
		return state.Entry{}
	}
	return state.Entry{Inode: e.Inode, Size: e.Size, ModTime: e.ModTime, ChTime: e.ChTime}
}

// unchanged reports whether f is still the version at of the index.
func unchanged(f *os.File, at state.Entry) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode().IsRegular() && st.Ino == at.Inode && fi.Size() == at.Size &&
		fi.ModTime().UnixNano() == at.ModTime && st.Ctim.Sec*1e9+st.Ctim.Nsec == at.ChTime
}

// copyTo copies chunk id, n bytes, into dst at off from a local file the
// index lists unchanged since (see above), and reports whether it did.
func (r *srcReader) copyTo(dst *os.File, off int64, id chunkstore.ID, n uint32) bool {
	p, ok := r.s.lookup(id)
	if !ok || p.n != n || p.at.Inode == 0 || r.noCopy {
		return false
	}
	f := r.file(p)
	if f == nil || !unchanged(f, p.at) {
		return false
	}
	src, dstOff, left := p.off, off, int(n)
	for left > 0 {
		m, err := unix.CopyFileRange(int(f.Fd()), &src, int(dst.Fd()), &dstOff, left, 0)
		if err != nil || m == 0 {
			if err == unix.EXDEV || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP {
				r.noCopy = true // not between these files: read and hash from now on
			}
			return false
		}
		left -= m
	}
	if !unchanged(f, p.at) {
		return false
	}
	r.s.copied.Add(int64(n))
	return true
}
