package atdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The operations on a path rel do one system call on rel's last element
// in its open parent. None follows a symlink at rel. An error is a
// *fs.PathError naming rel (Op "open" when a directory above rel cannot
// be opened), or an error saying rel does not end in a name.

func pathErr(op, rel string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: rel, Err: err}
}

// do calls fn with the descriptor of rel's open parent, held until fn
// returns, and rel's last element; fn's error is named op and rel.
func (d *Dirs) do(op, rel string, fn func(dirfd int, name string) error) error {
	p, name, err := d.Parent(rel)
	if err != nil {
		return err
	}
	defer p.Release()
	return pathErr(op, rel, fn(p.fd, name))
}

// Lstat is os.Root.Lstat; Sys returns a *syscall.Stat_t.
func (d *Dirs) Lstat(rel string) (fs.FileInfo, error) {
	var st unix.Stat_t
	err := d.do("lstat", rel, func(dirfd int, name string) error {
		return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return nil, err
	}
	return newStatInfo(path.Base(rel), &st), nil
}

// Readlink is os.Root.Readlink.
func (d *Dirs) Readlink(rel string) (string, error) {
	buf := make([]byte, 4096)
	n := 0
	err := d.do("readlink", rel, func(dirfd int, name string) (err error) {
		n, err = unix.Readlinkat(dirfd, name, buf)
		return err
	})
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// OpenFd opens rel with flag (O_NOFOLLOW and O_CLOEXEC added) and, when it
// creates it, perm less the umask; it returns the raw descriptor, for a
// caller that opens a file for each write and wants no *os.File.
func (d *Dirs) OpenFd(rel string, flag int, perm fs.FileMode) (int, error) {
	fd := -1
	err := d.do("open", rel, func(dirfd int, name string) (err error) {
		fd, err = openat(dirfd, name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
		return err
	})
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// OpenFile is os.Root.OpenFile, except that it never follows a symlink.
func (d *Dirs) OpenFile(rel string, flag int, perm fs.FileMode) (*os.File, error) {
	fd, err := d.OpenFd(rel, flag, perm)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// Chtimes sets both times of rel (of a symlink itself, not of what it
// points to).
func (d *Dirs) Chtimes(rel string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return d.do("chtimes", rel, func(dirfd int, name string) error {
		return unix.UtimesNanoAt(dirfd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	})
}

// Futimens sets both times of the open file fd to ns since the epoch:
// utimensat(fd, NULL, times, 0), which x/sys does not offer by name. The
// error is the bare errno, for the caller to name the file.
func Futimens(fd int, ns int64) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
	for {
		_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if e != unix.EINTR {
			if e == 0 {
				return nil
			}
			return e
		}
	}
}

// Rename renames from to to, which must be in the same directory,
// replacing what is at to. With noReplace it replaces nothing: something
// at to is an error matching fs.ErrExist (where the kernel has no
// RENAME_NOREPLACE, a last look at to comes before a plain rename).
func (d *Dirs) Rename(from, to string, noReplace bool) error {
	if path.Dir(from) != path.Dir(to) {
		return fmt.Errorf("rename %s to %s: not in one directory", from, to)
	}
	p, fromName, err := d.Parent(from)
	if err != nil {
		return err
	}
	defer p.Release()
	_, toName := path.Split(to)
	if err := checkName(to, toName); err != nil {
		return err
	}
	if !noReplace {
		return pathErr("rename", to, unix.Renameat(p.fd, fromName, p.fd, toName))
	}
	err = unix.Renameat2(p.fd, fromName, p.fd, toName, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		var st unix.Stat_t
		if unix.Fstatat(p.fd, toName, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			err = unix.EEXIST
		} else {
			err = unix.Renameat(p.fd, fromName, p.fd, toName)
		}
	}
	return pathErr("rename", to, err)
}

// Mkdir makes the directory rel with mode perm (less the umask).
func (d *Dirs) Mkdir(rel string, perm fs.FileMode) error {
	return d.do("mkdir", rel, func(dirfd int, name string) error {
		return unix.Mkdirat(dirfd, name, uint32(perm.Perm()))
	})
}

// ChmodDir sets the permission bits of the directory rel, with its
// setuid, setgid and sticky bits; a symlink or a file at rel is refused
// (ENOTDIR).
func (d *Dirs) ChmodDir(rel string, mode fs.FileMode) error {
	o, err := d.get(path.Clean(rel))
	if err != nil {
		return pathErr("chmod", rel, err)
	}
	defer o.Release()
	bits := uint32(mode.Perm())
	for m, b := range map[fs.FileMode]uint32{fs.ModeSetuid: unix.S_ISUID, fs.ModeSetgid: unix.S_ISGID, fs.ModeSticky: unix.S_ISVTX} {
		if mode&m != 0 {
			bits |= b
		}
	}
	return pathErr("chmod", rel, unix.Fchmod(o.fd, bits))
}

// Remove removes the file, symlink or empty directory rel.
func (d *Dirs) Remove(rel string) error {
	return d.do("remove", rel, func(dirfd int, name string) error {
		err := unix.Unlinkat(dirfd, name, 0)
		if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
			err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
		}
		return err
	})
}
