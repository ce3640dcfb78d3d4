package receive

import (
	"golang.org/x/sys/unix"

	"github.com/syncd/syncd/state"
)

// A chunk found in a local file is hashed before it is used (the file may
// have changed since the index listed it), except where the file is, by
// its stat, still the version the index listed: the same inode, size,
// mtime and ctime (a write changes the ctime, and nothing but the clock
// sets it). That is the indexer's own rule for a file it does not read
// again. The stat is taken again after the read: a file that changed
// meanwhile is not trusted, and the chunk is hashed. (copy_file_range
// instead of the read and write was tried: on this ext4 it cost more CPU
// than reading, hashing and writing, 3.3 s against 1.7 s for the local
// chunks of an initial mirror of the bench data set.)

// facts returns what unchanged compares of e, a file's index entry (zero
// when the index has no stat of it).
func facts(e state.Entry) state.Entry {
	if e.Type != "file" || e.Deleted || e.Inode == 0 {
		return state.Entry{}
	}
	return state.Entry{Inode: e.Inode, Size: e.Size, ModTime: e.ModTime, ChTime: e.ChTime}
}

// unchanged reports whether the open file fd is still the version at of
// the index. (A raw fstat: it is asked twice for every chunk read from a
// local file, and os.File.Stat allocates its answer.)
func unchanged(fd int, at state.Entry) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Ino == at.Inode && st.Size == at.Size &&
		st.Mtim.Nano() == at.ModTime && st.Ctim.Nano() == at.ChTime
}
