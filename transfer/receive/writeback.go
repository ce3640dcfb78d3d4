package receive

import (
	"golang.org/x/sys/unix"
)

// A batch is made durable at its end, by a syncfs (or an fsync of each
// file of a small batch), and the kernel, left alone, starts writing a
// file's data to disk only seconds after it was written: so the syncfs
// waited for the whole batch's data, after the build, one after the
// other (1.9 s for the mutation round's 512 MiB file). Instead the
// receiver asks the kernel to start writing back each temporary file as
// it fills (sync_file_range with SYNC_FILE_RANGE_WRITE: it starts the
// writes and does not wait for them), so the disk writes while the batch
// is still being built and the syncfs finds little left to do. It is
// only a hint: a file system without it loses nothing but the overlap.
const (
	writebackBytes = 8 << 20   // a file being built: start its writeback every this many bytes
	writebackFloor = 256 << 10 // a finished file: start the rest of its writeback if it holds this much
)

// wrote counts n bytes written into a's temporary file and starts their
// writeback once writebackBytes have gathered. Fetchers call it
// concurrently for the same file.
func (a *action) wrote(n int) {
	if a.dirty.Add(int64(n)) < writebackBytes {
		return
	}
	if a.dirty.Swap(0) >= writebackBytes {
		startWriteback(int(a.file.Fd()))
	}
}

// finished starts the writeback of what is left of a's temporary file
// before it is closed, when the batch is made durable by one syncfs.
func (a *action) finished() {
	if a.dirty.Swap(0) > 0 && a.e.Size >= writebackFloor {
		startWriteback(int(a.file.Fd()))
	}
}

// startWriteback asks the kernel to start writing the dirty pages of the
// file fd to disk, without waiting for them; errors are ignored (see
// above). Tests replace it to count the calls.
var startWriteback = func(fd int) {
	_ = unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
