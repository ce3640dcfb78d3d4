package receive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/atdir"
	"github.com/syncd/syncd/internal/ownname"
	"github.com/syncd/syncd/state"
)

// place moves a's new version into place, keeping a conflicting local
// version under its conflict name first.
func (r *Receiver) place(a *action, at *atdir.Dirs) {
	p := a.e.Path
	// A new file (the index has nothing there) needs no look first: the
	// rename does not replace what may be there now, and that is a local
	// change as the look would have found it. Two system calls fewer for
	// each file of a new replica (27k in the bench's initial mirror).
	fresh := a.kind == actFile && (!a.have || a.local.Deleted) && a.conflict == ""
	// once more, right before the rename: a local write a moment ago must
	// not be replaced (the window left is that of two system calls)
	if !fresh {
		if err := r.diskOK(a.e, a.local, a.have, at); err != nil {
			a.err = err
			return
		}
	}
	if a.conflict != "" {
		name, err := r.keepConflict(p, a.conflictTime, a.conflict)
		if err != nil {
			a.err = fmt.Errorf("keep conflict copy of %s: %w", p, err)
			return
		}
		r.Count.AddConflict()
		r.Log.Warn("conflict: kept the local version as a copy", "folder", r.f.Config.ID, "path", p,
			"copy", name, "peer", r.Peer)
	}
	var err error
	switch a.kind {
	case actMerge:
		a.done = true
		return
	case actFile, actLink:
		if a.kind == actLink {
			if err = r.f.checkParents(p, nil, at); err != nil {
				break
			}
			a.tmp = ownname.TempBeside(p)
			if err = r.f.Root().Symlink(a.e.Target, a.tmp); err != nil {
				break
			}
		}
		var cleared bool
		if !fresh {
			if cleared, err = r.clearDir(p, at); err != nil {
				if at.Remove(a.tmp) == nil {
					a.tmp = "" // else the batch's cleanup removes it where it is now
				}
				break
			}
		}
		// Where nothing should be now (a new path, or the local version
		// just moved aside), a file made there since the last look is
		// somebody's, and stays: the rename does not replace it.
		noReplace := !a.have || a.local.Deleted || a.conflict != "" || cleared
		var old *os.File
		if !noReplace && a.local.Type == "file" {
			old = holdOld(at, p, a.local.Size)
		}
		// the watcher drops the event of this rename when it reads it
		announced := a.kind == actFile && a.tmpAt.Inode != 0
		if announced {
			r.f.Local.Arriving(p, a.tmpAt.Inode)
		}
		err = rename(at, a.tmp, p, noReplace)
		if err != nil && announced {
			r.f.Local.NotArriving(p)
		}
		a.announced = announced && err == nil
		release(old)
		if err == nil || at.Remove(a.tmp) == nil {
			a.tmp = "" // else (its directory was renamed) the batch's cleanup removes it
		}
	case actDir:
		if err = r.f.checkParents(p, nil, at); err != nil {
			break
		}
		if fi, lerr := at.Lstat(p); lerr == nil && !fi.IsDir() {
			if err = at.Remove(p); err != nil {
				break
			}
		}
		if err = at.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			break
		}
		err = at.ChmodDir(p, chunkstore.FileMode(a.rec.Mode))
	}
	if err == nil {
		if r.Hooks.AfterPlace != nil {
			r.Hooks.AfterPlace(p)
		}
		err = r.record(a, at)
	}
	if err != nil {
		a.err = fmt.Errorf("apply %s: %w", p, err)
		return
	}
	a.done = true
}

// clearDir removes an empty directory at p, which a file or a link is
// about to replace, and says whether it did; a directory with something
// in it is an error.
func (r *Receiver) clearDir(p string, at *atdir.Dirs) (bool, error) {
	fi, err := at.Lstat(p)
	if err != nil || !fi.IsDir() {
		return false, nil
	}
	if ok, err := removeDir(at, p); err != nil || !ok {
		return false, fmt.Errorf("directory in the way is not empty")
	}
	return true, nil
}

// record completes a.rec with the local facts of the path now on disk. A
// file whose permission bits or size are not what the receiver left (a
// local chmod or write between the rename and this look) is recorded with
// no change time, so the indexer looks at it again and indexes the local
// change, and it is not noted as the receiver's own write.
func (r *Receiver) record(a *action, at *atdir.Dirs) error {
	fi, err := at.Lstat(a.e.Path)
	if err != nil {
		return err
	}
	localFacts(&a.rec, fi)
	if l := state.EntryOf(fi); a.rec.Type == "file" && (l.Type != "file" || l.Mode&0o7777 != a.rec.Mode&0o7777 || l.Size != a.rec.Size) {
		a.rec.ChTime, a.touched = 0, true
	}
	return nil
}

// deletes removes what the peer deleted, deepest paths first, so that a
// directory is empty by the time its turn comes.
func (r *Receiver) deletes(acts []*action, at *atdir.Dirs) {
	var dels []*action
	for _, a := range acts {
		if a.kind == actDelete && a.err == nil {
			dels = append(dels, a)
		}
	}
	slices.SortFunc(dels, func(a, b *action) int {
		return strings.Count(b.e.Path, "/") - strings.Count(a.e.Path, "/")
	})
	var wanted map[chunkstore.ID]bool // built for the first file with content, if any
	for _, a := range dels {
		if a.local.Type == "file" && len(a.local.Content) > 0 && wanted == nil {
			if wanted = r.f.claims.wanted(); wanted == nil {
				wanted = map[chunkstore.ID]bool{}
			}
		}
		if a.local.Type == "file" && slices.ContainsFunc(a.local.Content, func(id chunkstore.ID) bool { return wanted[id] }) {
			// another receiver may be building a file from it: deleted
			// when planned again, once that one is built (see claims.wanted)
			a.err = ErrClaimed
			continue
		}
		if err := r.diskOK(a.e, a.local, a.have, at); err != nil {
			a.err = err // changed a moment ago: not removed
			continue
		}
		var err error
		if a.local.Type == "dir" {
			var gone bool
			gone, err = removeDir(at, a.e.Path)
			if err == nil && !gone {
				// What is in it may be deleted by the next batch: tried
				// again; the puller gives up after a few tries (then it is
				// somebody's, and the indexer announces it again).
				a.err = ErrDirNotEmpty
				continue
			}
		} else {
			old := holdOld(at, a.e.Path, a.local.Size)
			err = at.Remove(a.e.Path)
			release(old)
			if errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
		}
		if err != nil {
			a.err = fmt.Errorf("delete %s: %w", a.e.Path, err)
			continue
		}
		a.rec = a.e.State()
		a.rec.Vector = a.rec.Vector.Merge(a.local.Vector)
		a.rec.Type = a.local.Type
		a.done = true
	}
}

// dirTimes sets the mtimes of the directories made or changed, deepest
// first, once nothing more is written into them.
func (r *Receiver) dirTimes(acts []*action, at *atdir.Dirs) {
	var dirs []*action
	for _, a := range acts {
		if a.kind == actDir && a.done && a.err == nil {
			dirs = append(dirs, a)
		}
	}
	slices.SortFunc(dirs, func(a, b *action) int {
		return strings.Count(b.e.Path, "/") - strings.Count(a.e.Path, "/")
	})
	for _, a := range dirs {
		if err := at.Chtimes(a.e.Path, time.Unix(0, a.e.ModTime)); err == nil {
			r.record(a, at)
		}
	}
}

// keepConflict moves the local version at p aside under its conflict
// name (see [ConflictName]), or, if a different file has that name, the
// next free [ConflictNameN]. A copy already there with the same content
// (another node made the same copy) is kept as it is. It never replaces a
// file.
func (r *Receiver) keepConflict(p string, mtime time.Time, node string) (string, error) {
	for n := 1; n < 1000; n++ {
		cand := ConflictNameN(p, mtime, node, n)
		_, err := r.f.Root().Lstat(cand)
		if errors.Is(err, fs.ErrNotExist) {
			if err := r.f.Root().Rename(p, cand); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
			return cand, nil
		}
		if err != nil {
			return "", err
		}
		if r.sameFile(p, cand) {
			// The copy is there already (an earlier try, or the same
			// conflict met through another peer): the local version must
			// still leave p, or the winner can never take its place and
			// the path is retried forever. Moving it over its twin loses
			// nothing.
			if err := r.f.Root().Rename(p, cand); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
			return cand, nil
		}
	}
	return "", fmt.Errorf("too many conflict copies of %s", p)
}

// sameFile reports whether the files or links at a and b hold the same
// bytes.
func (r *Receiver) sameFile(a, b string) bool {
	fa, err1 := r.f.Root().Lstat(a)
	fb, err2 := r.f.Root().Lstat(b)
	if err1 != nil || err2 != nil || fa.Mode().Type() != fb.Mode().Type() || fa.Size() != fb.Size() {
		return false
	}
	if fa.Mode()&fs.ModeSymlink != 0 {
		ta, err1 := r.f.Root().Readlink(a)
		tb, err2 := r.f.Root().Readlink(b)
		return err1 == nil && err2 == nil && ta == tb
	}
	fa2, err1 := r.f.Root().Open(a)
	if err1 != nil {
		return false
	}
	defer fa2.Close()
	fb2, err2 := r.f.Root().Open(b)
	if err2 != nil {
		return false
	}
	defer fb2.Close()
	return sameContent(fa2, fb2)
}

// sameContent compares two readers block by block, in bounded memory
// whatever their size.
func sameContent(a, b io.Reader) bool {
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, erra := io.ReadFull(a, ba)
		nb, errb := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		endA := erra == io.EOF || erra == io.ErrUnexpectedEOF
		endB := errb == io.EOF || errb == io.ErrUnexpectedEOF
		if endA || endB {
			return endA && endB
		}
		if erra != nil || errb != nil {
			return false
		}
	}
}

// touchedDirs returns the directories, other than those acts make or
// change themselves, that its done actions created, removed or renamed
// an entry in, with their stat now. Such a change moves a directory's
// mtime and ctime, which its index entry records; left as they were, the
// indexer would find the directory changed and record it again (its own
// rule after an event: refreshDir), a new sequence number for nothing.
func touchedDirs(acts []*action, at *atdir.Dirs) map[string]fs.FileInfo {
	own := map[string]bool{}
	for _, a := range acts {
		if a.kind == actDir {
			own[a.e.Path] = true
		}
	}
	dirs := map[string]fs.FileInfo{}
	for _, a := range acts {
		if !a.done || a.kind == actMerge || a.kind == actDir {
			continue
		}
		dir := path.Dir(a.e.Path)
		if _, seen := dirs[dir]; seen || dir == "." || own[dir] {
			continue
		}
		if fi, err := at.Lstat(dir); err == nil && fi.IsDir() {
			dirs[dir] = fi
		}
	}
	return dirs
}

// recordDirs records the stat of the directories touchedDirs returned in
// their index entries, where those are directories.
func recordDirs(tx *state.Tx, dirs map[string]fs.FileInfo) error {
	for dir, fi := range dirs {
		e, ok, err := tx.Get(dir)
		if err != nil {
			return err
		}
		if !ok || e.Type != "dir" || e.Deleted {
			continue
		}
		was := e
		localFacts(&e, fi)
		if e.ModTime != was.ModTime || e.ChTime != was.ChTime {
			if err := tx.Put(dir, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// unrecorded hands files the receiver renamed into place as announced,
// and did not record, to the indexer (see localfolder.Folder.Unrecorded):
// the watcher dropped their arrivals, and nothing else would report them.
// With all, the commit failed after the renames and none is recorded;
// else those whose own step failed after the rename (the look at the file
// placed).
func (r *Receiver) unrecorded(acts []*action, all bool) {
	var paths []string
	for _, a := range acts {
		if a.announced && (all || a.err != nil) {
			paths = append(paths, a.e.Path)
		}
	}
	r.f.Local.Unrecorded(paths)
}
