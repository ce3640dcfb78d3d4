package receive

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/syncd/syncd/internal/atdir"
	"github.com/syncd/syncd/state"
)

// Every file-system operation of the receiver goes through the folder's
// os.Root, which refuses to leave the folder, symlinks included; and every
// parent directory of a path is checked to be a real directory, so that a
// symlink inside the folder cannot redirect a write either.

// ErrLocalChange marks a path whose disk state differs from the index: a
// local change the indexer has not recorded yet. The peer's version waits
// until it has, and is then compared with it.
var ErrLocalChange = errors.New("changed locally, not yet indexed")

// ErrDirNotEmpty marks a deleted directory that still holds something.
var ErrDirNotEmpty = errors.New("deleted directory not empty")

// The folder conditions a receiver's failures are cases of (see
// FailClass): its maker reports them in [Folder.Health], and while the
// disk is full a receiver reserves each file's space before it asks for
// its blocks (see build).
const (
	CondDiskFull  = "disk-full"  // ENOSPC, EDQUOT
	CondDiskError = "disk-error" // EROFS, EIO
)

// FailClass returns the folder condition that err is a case of, or "".
func FailClass(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return CondDiskFull
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EIO):
		return CondDiskError
	}
	return ""
}

// at returns the directories of one step of the receiver (a batch's
// writes, a reader of local sources), opened as used and closed when the
// step ends, so that a directory moved away meanwhile is not written
// through for longer than that (the same window as the checks of
// checkParents).
func (f *Folder) at() *atdir.Dirs { return atdir.New(f.Root(), 0) }

// lookup returns the directories of a step that only looks (the plan of a
// batch): they also remember the directories that are not there, which
// answers for everything under them at once (a new replica plans
// thousands of files in directories not made yet), and is right only as
// long as the step makes none.
func (f *Folder) lookup() *atdir.Dirs { return atdir.NewLookup(f.Root()) }

// rename renames from to to in one directory of at; with noReplace,
// something at to stays and is ErrLocalChange.
func rename(at *atdir.Dirs, from, to string, noReplace bool) error {
	err := at.Rename(from, to, noReplace)
	if noReplace && errors.Is(err, fs.ErrExist) {
		return ErrLocalChange
	}
	return err
}

// checkParents makes sure the directories above rel are real directories,
// creating missing ones (mode 0755; their own entries set it later). seen,
// if not nil, remembers the directories found good during one batch, so
// that the files of one directory check it once; at is the step's open
// directories.
func (f *Folder) checkParents(rel string, seen *dirCache, at *atdir.Dirs) error {
	dir := path.Dir(rel)
	if dir == "." || seen.has(dir) {
		return nil
	}
	p := ""
	for name := range strings.SplitSeq(dir, "/") {
		p = path.Join(p, name)
		if seen.has(p) {
			continue
		}
		fi, err := at.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := at.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			// the watcher's report of it is ours (its entry is recorded
			// when the batch that holds it is committed)
			if fi, err := at.Lstat(p); err == nil && fi.IsDir() {
				f.Local.RecordOwn(p, state.EntryOf(fi))
			}
			seen.add(p)
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", p)
		}
		seen.add(p)
	}
	return nil
}

// dirCache is a set of directories checked during one batch; the nil
// cache remembers nothing. Safe for concurrent use.
type dirCache struct {
	mu sync.Mutex
	m  map[string]bool
}

func (c *dirCache) has(dir string) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[dir]
}

func (c *dirCache) add(dir string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]bool{}
	}
	c.m[dir] = true
}

// lstater is the part of os.Root (or an atdir.Dirs) that looks at a path.
type lstater interface {
	Lstat(rel string) (fs.FileInfo, error)
	Readlink(rel string) (string, error)
}

// matchesDisk reports whether the index entry e (which may be missing or a
// tombstone) still describes what is on disk at rel: otherwise the path
// has a local change the indexer has not seen yet.
func matchesDisk(fsys lstater, rel string, e state.Entry, have bool) error {
	fi, err := fsys.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		if have && !e.Deleted {
			return ErrLocalChange // deleted locally
		}
		return nil
	case err != nil:
		return err
	case !have || e.Deleted:
		return ErrLocalChange // created locally
	}
	switch e.Type {
	case "dir":
		if fi.IsDir() {
			return nil
		}
	case "symlink":
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err := fsys.Readlink(rel); err == nil && target == e.Target {
				return nil
			}
		}
	case "file":
		st, ok := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().IsRegular() && ok && fi.Size() == e.Size && fi.ModTime().UnixNano() == e.ModTime &&
			st.Ino == e.Inode && uint32(fi.Mode().Perm()) == e.Mode&0o777 {
			return nil
		}
	}
	return ErrLocalChange
}

// localFacts fills in what only a stat of the applied path knows; a
// directory's or a link's mtime is local too (see SameContent).
func localFacts(e *state.Entry, fi fs.FileInfo) {
	l := state.EntryOf(fi)
	e.ChTime, e.Inode, e.Device, e.Links, e.UID, e.GID = l.ChTime, l.Inode, l.Device, l.Links, l.UID, l.GID
	if e.Type == "dir" || e.Type == "symlink" {
		e.ModTime = l.ModTime
	}
}

// syncFS flushes the file system of the folder: one call makes every
// temporary file of a batch durable before any is renamed into place,
// and every rename durable before the index records it.
func (f *Folder) syncFS() error {
	d, err := f.Root().Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", f.Config.Path, err)
	}
	return nil
}

// removeDir removes the empty directory rel; a directory with something
// in it stays, and that is no error: what is in it is somebody's.
func removeDir(at *atdir.Dirs, rel string) (bool, error) {
	err := at.Remove(rel)
	switch {
	case err == nil || errors.Is(err, fs.ErrNotExist):
		return true, nil
	case errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST):
		return false, nil
	}
	return false, err
}
