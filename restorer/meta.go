package restorer

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncd/syncd/internal/atdir"
)

// asRoot tells whether ownership is restored: only root may chown.
var asRoot = os.Geteuid() == 0

// setFileMeta gives the open file fd its final size (a directory: size
// < 0), ownership (as root), mode and times.
func setFileMeta(fd int, size int64, uid, gid uint32, mode uint32, mtime time.Time) error {
	// a temporary file left by an interrupted restore may be longer
	if size >= 0 {
		if err := unix.Ftruncate(fd, size); err != nil {
			return &os.PathError{Op: "truncate", Path: "", Err: err}
		}
	}
	if asRoot {
		if err := unix.Fchown(fd, int(uid), int(gid)); err != nil {
			return &os.PathError{Op: "chown", Path: "", Err: err}
		}
	}
	// chmod after chown: chown clears the setuid and setgid bits
	if err := unix.Fchmod(fd, mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: "", Err: err}
	}
	if err := atdir.Futimens(fd, mtime.UnixNano()); err != nil {
		return &os.PathError{Op: "futimens", Path: "", Err: err}
	}
	return nil
}
