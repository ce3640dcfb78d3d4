package receive

import (
	"os"
	"sync/atomic"
	"syscall"

	"github.com/syncd/syncd/internal/atdir"
)

// Replacing or removing a large file frees its blocks, and the file
// system does that in the rename or unlink itself: 0.35 to 0.7 s for a
// 512 MiB file on the bench machine's ext4 (more with online discard),
// under the folder lock and on the way to the replica being complete. The
// receiver instead holds the old file open across the rename or unlink,
// which leaves only a name to drop, and closes it afterwards on a
// goroutine of its own: the last close frees the blocks, off the path of
// the batch. A crash in between loses nothing: the file system frees an
// unlinked inode that was still open when it mounts again.

// releaseFloor is the size from which an old file's freeing is moved off
// the batch's path; smaller files cost less to free than the open.
const releaseFloor = 16 << 20

// holdOld opens the regular file at rel, which is about to be replaced or
// removed, when the index says it is at least releaseFloor bytes; the
// caller passes the result to release once the name is gone. It returns
// nil when there is nothing to hold.
func holdOld(at *atdir.Dirs, rel string, size int64) *os.File {
	if size < releaseFloor {
		return nil
	}
	f, err := at.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil
	}
	return f
}

// released counts the old files release closed, for tests.
var released atomic.Int64

// Released returns how many old versions of large files the receivers of
// this process held open across their replacement or removal, and have
// closed since (see holdOld).
func Released() int64 { return released.Load() }

// release closes f, from holdOld, in the background.
func release(f *os.File) {
	if f != nil {
		go func() {
			f.Close()
			released.Add(1)
		}()
	}
}
