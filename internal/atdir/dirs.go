// Package atdir does file operations on names inside directories it keeps
// open under an [os.Root], so that no operation resolves a path through a
// symlink or "..": each directory is opened once, by one openat of its
// name in its parent (itself kept open), starting from the root; every
// component is opened with O_NOFOLLOW and O_DIRECTORY, so a symlink or a
// file where a directory should be is refused. Every operation on a path
// is then one *at system call with AT_SYMLINK_NOFOLLOW or O_NOFOLLOW on
// its last element, in its open parent. A thousand files in a few dozen
// directories cost a few dozen opens instead of a walk of every path (a
// system call per component).
//
// A directory moved away while it is open is still written through: the
// owner of a [Dirs] bounds that window by when it calls [Dirs.Close].
package atdir

import (
	"container/list"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"

	"golang.org/x/sys/unix"
)

// Dirs is a set of open directories under a root. Its methods are safe for
// concurrent use, except Close, which must not run with any other.
type Dirs struct {
	root *os.Root
	max  int

	mu   sync.Mutex
	open map[string]*Dir
	lru  list.List // of *Dir with refs == 0, least recently used first; only with max > 0
	// missing, in a lookup (see NewLookup), remembers the directories
	// found missing, and so answers for everything under them at once.
	missing map[string]error
}

// Dir is an open directory of a [Dirs], held from [Dirs.Acquire] until
// [Dir.Release].
type Dir struct {
	dirs *Dirs
	rel  string
	f    *os.File
	fd   int
	refs int
	elem *list.Element
}

// New returns the directories under root, none open yet. With max > 0 it
// keeps at most max directories open that are not acquired, closing the
// least recently used first; with max 0 it keeps every directory it opens
// until Close.
func New(root *os.Root, max int) *Dirs {
	return &Dirs{root: root, max: max, open: map[string]*Dir{}}
}

// NewLookup is New(root, 0) for a user that only looks: it also remembers
// the directories it found missing (or not directories), and fails every
// later operation under them without a system call. That is right only as
// long as the user makes no directory.
func NewLookup(root *os.Root) *Dirs {
	d := New(root, 0)
	d.missing = map[string]error{}
	return d
}

// Close closes the directories open. The Dirs may be used again: it then
// opens them anew.
func (d *Dirs) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.open {
		o.f.Close()
	}
	clear(d.open)
	d.lru.Init()
}

// Held returns how many directories are open.
func (d *Dirs) Held() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.open)
}

// Acquire returns the directory rel ("." or "" for the root), opened
// through its parents; release it when done. An error is a
// *fs.PathError naming rel.
func (d *Dirs) Acquire(rel string) (*Dir, error) {
	o, err := d.get(path.Clean(rel))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	return o, nil
}

// Fd returns the descriptor of the directory, valid until Release.
func (o *Dir) Fd() int { return o.fd }

// Release gives back a directory from Acquire.
func (o *Dir) Release() {
	d := o.dirs
	d.mu.Lock()
	defer d.mu.Unlock()
	d.release(o)
}

// Parent returns the open directory holding rel, and rel's last element;
// release the directory when done. An error is a *fs.PathError naming rel,
// or an error saying rel does not end in a name.
func (d *Dirs) Parent(rel string) (*Dir, string, error) {
	dir, name := path.Split(rel)
	if err := checkName(rel, name); err != nil {
		return nil, "", err
	}
	o, err := d.get(path.Clean(dir))
	if err != nil {
		return nil, "", &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	return o, name, nil
}

func checkName(rel, name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%q: not a name in a directory", rel)
	}
	return nil
}

// get acquires the clean directory dir.
func (d *Dirs) get(dir string) (*Dir, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acquire(dir)
}

// acquire returns the clean directory dir with one more reference,
// opened through its parent; d.mu is held.
func (d *Dirs) acquire(dir string) (*Dir, error) {
	if o, ok := d.open[dir]; ok {
		if o.elem != nil {
			d.lru.Remove(o.elem)
			o.elem = nil
		}
		o.refs++
		return o, nil
	}
	if err, ok := d.missing[dir]; ok {
		return nil, err
	}
	var f *os.File
	if dir == "." {
		var err error
		if f, err = d.root.Open("."); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the caller names the path
			}
			return nil, err
		}
	} else {
		parent, name := path.Split(dir)
		if name == "" || name == "." || name == ".." {
			return nil, fmt.Errorf("%q: not a directory name", name)
		}
		p, err := d.acquire(path.Clean(parent))
		if err != nil {
			return nil, err // remembered where it was found
		}
		fd, err := openat(p.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		d.release(p)
		if err != nil {
			if errors.Is(err, unix.ELOOP) {
				err = unix.ENOTDIR // a symlink: not a directory to go through
			}
			if d.missing != nil && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)) {
				d.missing[dir] = err
			}
			return nil, err
		}
		f = os.NewFile(uintptr(fd), dir)
	}
	o := &Dir{dirs: d, rel: dir, f: f, fd: int(f.Fd()), refs: 1}
	d.open[dir] = o
	for d.max > 0 && len(d.open) > d.max && d.lru.Len() > 0 {
		old := d.lru.Remove(d.lru.Front()).(*Dir)
		delete(d.open, old.rel)
		old.f.Close()
	}
	return o, nil
}

// release drops a reference to o; d.mu is held.
func (d *Dirs) release(o *Dir) {
	o.refs--
	if o.refs == 0 && d.max > 0 && d.open[o.rel] == o {
		o.elem = d.lru.PushBack(o)
	}
}

// openat is unix.Openat, again when interrupted.
func openat(dirfd int, name string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}
