package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// atRoot does the receiver's file operations of one batch step on names
// inside directories it keeps open: each directory is opened once, by one
// openat of its name in its parent (itself kept open), starting from the
// folder's os.Root; every component is opened with O_NOFOLLOW and
// O_DIRECTORY, so a symlink or a file where a directory should be is
// refused, and ".." never appears. Every operation on a name is then one
// *at system call with AT_SYMLINK_NOFOLLOW or O_NOFOLLOW on that single,
// checked name. A batch touches a thousand files in a few dozen
// directories: this turns a path walk per operation (a system call per
// component) into one call. The directories are closed when the step
// ends, so a directory moved away meanwhile is not written through for
// longer than that (the same window as the checks of checkParents).
type atRoot struct {
	f   *Folder
	mu  sync.Mutex
	fds map[string]*os.File
	// missing, in a lookup (see Folder.lookup), remembers the directories
	// found missing, and so answers for everything under them at once: a
	// new replica plans thousands of files in directories not made yet.
	missing map[string]error
}

func (f *Folder) at() *atRoot { return &atRoot{f: f, fds: map[string]*os.File{}} }

// lookup is an atRoot for a step that only looks (the plan of a batch):
// it also remembers the directories that are not there, which is right
// only as long as the step makes none.
func (f *Folder) lookup() *atRoot {
	a := f.at()
	a.missing = map[string]error{}
	return a
}

// close closes the directories opened.
func (a *atRoot) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, d := range a.fds {
		d.Close()
		delete(a.fds, k)
	}
}

// dir returns the open parent directory of rel and rel's last element.
func (a *atRoot) dir(rel string) (int, string, error) {
	dir, name := path.Split(rel)
	if name == "" || name == "." || name == ".." {
		return -1, "", fmt.Errorf("%q: not a name in a directory", rel)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	d, err := a.openDir(path.Clean(dir))
	if err != nil {
		return -1, "", &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	return int(d.Fd()), name, nil
}

// openDir returns the directory dir, opened through its parent; a.mu is
// held.
func (a *atRoot) openDir(dir string) (*os.File, error) {
	if d, ok := a.fds[dir]; ok {
		return d, nil
	}
	if err, ok := a.missing[dir]; ok {
		return nil, err
	}
	var d *os.File
	if dir == "." {
		var err error
		if d, err = a.f.root().Open("."); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // named after rel by dir, as os.Root names it
			}
			return nil, err
		}
	} else {
		parent, name := path.Split(dir)
		if name == "." || name == ".." {
			return nil, fmt.Errorf("%q: not a directory name", name)
		}
		pd, err := a.openDir(path.Clean(parent))
		if err != nil {
			return nil, err // remembered where it was found
		}
		fd, err := unix.Openat(int(pd.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ELOOP) {
				err = unix.ENOTDIR // a symlink: not a directory the receiver goes through
			}
			if a.missing != nil && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)) {
				a.missing[dir] = err
			}
			return nil, err
		}
		d = os.NewFile(uintptr(fd), dir)
	}
	a.fds[dir] = d
	return d, nil
}

func pathErr(op, rel string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: rel, Err: err}
}

// Lstat is os.Root.Lstat.
func (a *atRoot) Lstat(rel string) (fs.FileInfo, error) {
	fd, name, err := a.dir(rel)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, pathErr("lstat", rel, err)
	}
	return newStatInfo(name, &st), nil
}

// Readlink is os.Root.Readlink.
func (a *atRoot) Readlink(rel string) (string, error) {
	fd, name, err := a.dir(rel)
	if err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(fd, name, buf)
	if err != nil {
		return "", pathErr("readlink", rel, err)
	}
	return string(buf[:n]), nil
}

// OpenFile is os.Root.OpenFile; it never follows a symlink.
func (a *atRoot) OpenFile(rel string, flag int, perm fs.FileMode) (*os.File, error) {
	fd, name, err := a.dir(rel)
	if err != nil {
		return nil, err
	}
	f, err := unix.Openat(fd, name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, pathErr("open", rel, err)
	}
	return os.NewFile(uintptr(f), rel), nil
}

// Chtimes sets both times of rel (not of what a symlink points to).
func (a *atRoot) Chtimes(rel string, t time.Time) error {
	fd, name, err := a.dir(rel)
	if err != nil {
		return err
	}
	ts := unix.NsecToTimespec(t.UnixNano())
	return pathErr("chtimes", rel, unix.UtimesNanoAt(fd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
}

// Rename renames from to to, which must be in the same directory, replacing
// what is at to; with noReplace something at to is errLocalChange instead.
func (a *atRoot) Rename(from, to string, noReplace bool) error {
	if path.Dir(from) != path.Dir(to) {
		return fmt.Errorf("rename %s to %s: not in one directory", from, to)
	}
	fd, fromName, err := a.dir(from)
	if err != nil {
		return err
	}
	_, toName, err := a.dir(to)
	if err != nil {
		return err
	}
	if !noReplace {
		return pathErr("rename", to, unix.Renameat(fd, fromName, fd, toName))
	}
	err = unix.Renameat2(fd, fromName, fd, toName, unix.RENAME_NOREPLACE)
	switch {
	case errors.Is(err, unix.EEXIST):
		return errLocalChange
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS):
		// no RENAME_NOREPLACE here: a last look, then a plain rename
		if _, lerr := a.Lstat(to); lerr == nil {
			return errLocalChange
		}
		return pathErr("rename", to, unix.Renameat(fd, fromName, fd, toName))
	}
	return pathErr("rename", to, err)
}

// Mkdir makes the directory rel with mode perm (less the umask).
func (a *atRoot) Mkdir(rel string, perm fs.FileMode) error {
	fd, name, err := a.dir(rel)
	if err != nil {
		return err
	}
	return pathErr("mkdir", rel, unix.Mkdirat(fd, name, uint32(perm.Perm())))
}

// ChmodDir sets the permission bits of the directory rel, with its
// setuid, setgid and sticky bits (refused if rel is a symlink or not a
// directory).
func (a *atRoot) ChmodDir(rel string, mode fs.FileMode) error {
	a.mu.Lock()
	d, err := a.openDir(path.Clean(rel))
	a.mu.Unlock()
	if err != nil {
		return &fs.PathError{Op: "chmod", Path: rel, Err: err}
	}
	bits := uint32(mode.Perm())
	for m, b := range map[fs.FileMode]uint32{fs.ModeSetuid: unix.S_ISUID, fs.ModeSetgid: unix.S_ISGID, fs.ModeSticky: unix.S_ISVTX} {
		if mode&m != 0 {
			bits |= b
		}
	}
	return pathErr("chmod", rel, unix.Fchmod(int(d.Fd()), bits))
}

// Remove removes the file, link or empty directory rel.
func (a *atRoot) Remove(rel string) error {
	fd, name, err := a.dir(rel)
	if err != nil {
		return err
	}
	err = unix.Unlinkat(fd, name, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		err = unix.Unlinkat(fd, name, unix.AT_REMOVEDIR)
	}
	return pathErr("remove", rel, err)
}

// statInfo is an fs.FileInfo of an fstatat result, as os.Lstat makes it
// (Sys is a *syscall.Stat_t, which state.EntryOf reads).
type statInfo struct {
	name string
	mode fs.FileMode
	sys  syscall.Stat_t
}

func newStatInfo(name string, st *unix.Stat_t) *statInfo {
	s := &statInfo{name: name, sys: syscall.Stat_t{
		Dev: st.Dev, Ino: st.Ino, Nlink: st.Nlink, Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Rdev: st.Rdev,
		Size: st.Size, Blksize: st.Blksize, Blocks: st.Blocks,
		Atim: syscall.Timespec(st.Atim), Mtim: syscall.Timespec(st.Mtim), Ctim: syscall.Timespec(st.Ctim),
	}}
	s.mode = fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		s.mode |= fs.ModeDevice
	case unix.S_IFCHR:
		s.mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		s.mode |= fs.ModeDir
	case unix.S_IFIFO:
		s.mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		s.mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		s.mode |= fs.ModeSocket
	}
	if st.Mode&unix.S_ISGID != 0 {
		s.mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISUID != 0 {
		s.mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		s.mode |= fs.ModeSticky
	}
	return s
}

func (s *statInfo) Name() string       { return s.name }
func (s *statInfo) Size() int64        { return s.sys.Size }
func (s *statInfo) Mode() fs.FileMode  { return s.mode }
func (s *statInfo) ModTime() time.Time { return time.Unix(s.sys.Mtim.Unix()) }
func (s *statInfo) IsDir() bool        { return s.mode.IsDir() }
func (s *statInfo) Sys() any           { return &s.sys }
