package atdir

import (
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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
