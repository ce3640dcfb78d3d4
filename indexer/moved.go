package indexer

import (
	"path"
	"strings"
	"syscall"

	"github.com/syncd/syncd/state"
)

// A renamed directory keeps its inode, and so do the files below it: their
// size, mtime and ctime do not change either (rename(2) touches the ctime
// of the renamed directory only). So a file that is new in the index but
// lies below a directory that the index knows, by inode, under another
// name is the file that was there: its content is taken from the old
// entry instead of being read and chunked again. The test is the one that
// tells an unchanged file (sameFile: type, size, mtime, ctime, inode),
// plus the device. A deploy that renames a release directory of
// thousands of files is then indexed from metadata alone, as fast as the
// watcher reports it.
//
// Per Apply, each directory's origin is looked up once, and the index's
// directories are listed by inode once, only when a file's parent is not
// in the index under its own name (a new or renamed directory).

// devIno identifies an inode.
type devIno struct{ dev, ino uint64 }

// moves is what one Apply learned about renamed directories.
type moves struct {
	origin map[string]string // directory → its old name ("": none)
	dirs   map[devIno]string // the index's live directories by inode (nil: not listed yet)
}

// movedFrom returns the entry the new file rel (as lstat found it, e) had
// under its old name, if a directory above it was renamed and the file is
// unchanged since it was indexed there.
func (ix *Indexer) movedFrom(rel string, e state.Entry) (state.Entry, bool) {
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		old, known := ix.dirOrigin(dir)
		if known {
			return state.Entry{}, false // in the index under its own name: nothing above moved
		}
		if old == "" {
			continue // new here: perhaps one above it was renamed
		}
		prev, have, err := ix.st.Get(old + strings.TrimPrefix(rel, dir))
		if err != nil || !have || prev.Deleted || !sameFile(prev, e) || prev.Device != e.Device {
			return state.Entry{}, false
		}
		return prev, true
	}
	return state.Entry{}, false
}

// dirOrigin tells whether dir is in the index under its own name with
// the inode it has on disk (known), and otherwise the name under which
// the index knows that inode, if another ("" if none).
func (ix *Indexer) dirOrigin(dir string) (old string, known bool) {
	if ix.mv.origin == nil {
		ix.mv.origin = map[string]string{}
	}
	if o, ok := ix.mv.origin[dir]; ok {
		return o, o == dir
	}
	o := ix.lookupOrigin(dir)
	ix.mv.origin[dir] = o
	return o, o == dir
}

func (ix *Indexer) lookupOrigin(dir string) string {
	id, ok := inodeOf(ix.abs(dir))
	if !ok {
		return ""
	}
	if e, have, err := ix.st.Get(dir); err == nil && have && !e.Deleted && e.Type == "dir" && (devIno{e.Device, e.Inode}) == id {
		return dir
	}
	if ix.mv.dirs == nil {
		ix.mv.dirs = map[devIno]string{}
		err := ix.st.Dirs(func(rel string, e state.Entry) error {
			ix.mv.dirs[devIno{e.Device, e.Inode}] = rel
			return nil
		})
		if err != nil {
			return ""
		}
	}
	old, ok := ix.mv.dirs[id]
	if !ok || old == dir {
		return ""
	}
	if now, ok := inodeOf(ix.abs(old)); ok && now == id {
		return "" // still there under the old name too: a bind mount, not a rename
	}
	return old
}

// inodeOf returns the device and inode of the directory at abs.
func inodeOf(abs string) (devIno, bool) {
	var st syscall.Stat_t
	if err := syscall.Lstat(abs, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return devIno{}, false
	}
	return devIno{uint64(st.Dev), st.Ino}, true
}
