package restorer

import (
	"container/list"
	"os"
	"path"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// dirCache keeps descriptors of target directories open, so that a file
// operation costs one system call on a name inside a directory instead of
// a walk of the whole path. The target itself is opened through the
// os.Root; every other directory is opened from its parent's descriptor,
// and every operation on a name inside a directory uses *at calls with
// O_NOFOLLOW on a single validated path element: nothing is ever resolved
// through a symlink, so nothing outside the target can be reached.
type dirCache struct {
	root *os.Root
	max  int

	mu  sync.Mutex
	m   map[string]*dirRef
	lru *list.List // of *dirRef with refs == 0, least recently used first
}

type dirRef struct {
	rel  string
	fd   int
	refs int
	elem *list.Element
}

func newDirCache(root *os.Root, max int) *dirCache {
	return &dirCache{root: root, max: max, m: make(map[string]*dirRef), lru: list.New()}
}

// acquire returns the open directory rel ("" for the target); release it
// when done.
func (c *dirCache) acquire(rel string) (*dirRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acquireLocked(rel)
}

func (c *dirCache) acquireLocked(rel string) (*dirRef, error) {
	if d, ok := c.m[rel]; ok {
		if d.elem != nil {
			c.lru.Remove(d.elem)
			d.elem = nil
		}
		d.refs++
		return d, nil
	}
	var fd int
	if rel == "" {
		f, err := c.root.Open(".")
		if err != nil {
			return nil, err
		}
		fd, err = unix.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			return nil, err
		}
	} else {
		parent := path.Dir(rel)
		if parent == "." {
			parent = ""
		}
		p, err := c.acquireLocked(parent)
		if err != nil {
			return nil, err
		}
		fd, err = unix.Openat(p.fd, path.Base(rel), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		c.releaseLocked(p)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: rel, Err: err}
		}
	}
	d := &dirRef{rel: rel, fd: fd, refs: 1}
	c.m[rel] = d
	for len(c.m) > c.max && c.lru.Len() > 0 {
		old := c.lru.Remove(c.lru.Front()).(*dirRef)
		delete(c.m, old.rel)
		unix.Close(old.fd)
	}
	return d, nil
}

func (c *dirCache) release(d *dirRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseLocked(d)
}

func (c *dirCache) releaseLocked(d *dirRef) {
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
		unix.Close(d.fd)
	}
	clear(c.m)
	c.lru.Init()
}

// openAt opens name in d without following a symlink, returning a raw
// descriptor.
func (d *dirRef) openAt(name string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(d.fd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return fd, nil
	}
}

// renameAt renames from to to, both in d.
func (d *dirRef) renameAt(from, to string) error {
	if err := unix.Renameat(d.fd, from, d.fd, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// unlinkAt removes the file name in d.
func (d *dirRef) unlinkAt(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &os.PathError{Op: "unlink", Path: name, Err: err}
	}
	return nil
}

// exists reports whether name is in d, and whether it is a directory.
func (d *dirRef) exists(name string) (exists, isDir bool, err error) {
	var st unix.Stat_t
	err = unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return true, st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

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
	return futimens(fd, unix.NsecToTimespec(mtime.UnixNano()))
}
