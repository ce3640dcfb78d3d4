package restorer

import (
	"container/list"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// dirCache keeps descriptors of target directories open, so that a file
// operation costs one system call on a name inside a directory instead of
// a walk of the whole path. Directories are opened through the os.Root
// (which refuses to leave the target), and every operation on a name
// inside one uses *at calls with O_NOFOLLOW on a single validated path
// element: nothing is ever resolved through a symlink.
type dirCache struct {
	root *os.Root
	max  int

	mu  sync.Mutex
	m   map[string]*dirRef
	lru *list.List // of *dirRef with refs == 0, least recently used first
}

type dirRef struct {
	rel  string
	f    *os.File
	refs int
	elem *list.Element
}

func newDirCache(root *os.Root, max int) *dirCache {
	return &dirCache{root: root, max: max, m: make(map[string]*dirRef), lru: list.New()}
}

// acquire returns the open directory rel; release it when done.
func (c *dirCache) acquire(rel string) (*dirRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.m[rel]; ok {
		if d.elem != nil {
			c.lru.Remove(d.elem)
			d.elem = nil
		}
		d.refs++
		return d, nil
	}
	if rel == "" {
		rel = "."
	}
	f, err := c.root.Open(rel)
	if err != nil {
		return nil, err
	}
	d := &dirRef{rel: rel, f: f, refs: 1}
	c.m[rel] = d
	for len(c.m) > c.max && c.lru.Len() > 0 {
		old := c.lru.Remove(c.lru.Front()).(*dirRef)
		delete(c.m, old.rel)
		old.f.Close()
	}
	return d, nil
}

func (c *dirCache) release(d *dirRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d.refs--
	if d.refs == 0 {
		d.elem = c.lru.PushBack(d)
	}
}

// closeAll closes every cached directory.
func (c *dirCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.m {
		d.f.Close()
	}
	clear(c.m)
	c.lru.Init()
}

func (d *dirRef) fd() int { return int(d.f.Fd()) }

// openAt opens name in d without following a symlink.
func (d *dirRef) openAt(name string, flags int, perm uint32) (*os.File, error) {
	fd, err := unix.Openat(d.fd(), name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// renameAt renames from to to, both in d.
func (d *dirRef) renameAt(from, to string) error {
	if err := unix.Renameat(d.fd(), from, d.fd(), to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// unlinkAt removes the file name in d.
func (d *dirRef) unlinkAt(name string) error {
	return unix.Unlinkat(d.fd(), name, 0)
}

// exists reports whether name is in d, and whether it is a directory.
func (d *dirRef) exists(name string) (exists, isDir bool, err error) {
	var st unix.Stat_t
	err = unix.Fstatat(d.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return true, st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// setFileMeta applies ownership (as root), mode and times to an open file.
func setFileMeta(f *os.File, uid, gid uint32, mode os.FileMode, mtime time.Time) error {
	if os.Geteuid() == 0 {
		if err := f.Chown(int(uid), int(gid)); err != nil {
			return err
		}
	}
	// chmod after chown: chown clears setuid and setgid bits
	if err := f.Chmod(mode); err != nil {
		return err
	}
	return futimens(f, unix.NsecToTimespec(mtime.UnixNano()))
}
