package restorer

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futimens sets the access and modification times of an open file:
// utimensat(fd, NULL, times, 0), which x/sys does not offer by name.
func futimens(fd int, ts unix.Timespec) error {
	times := [2]unix.Timespec{ts, ts}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&times[0])), 0, 0, 0)
	if errno != 0 {
		return &os.PathError{Op: "futimens", Path: "", Err: errno}
	}
	return nil
}
