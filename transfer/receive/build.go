package receive

import (
	"context"
	"fmt"
	"io/fs"
	"os"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/atdir"
	"github.com/syncd/syncd/internal/ownname"
	"github.com/syncd/syncd/state"
	"github.com/syncd/syncd/transfer/wire"
)

// build writes the temporary files of files: chunks found locally are
// copied, the others asked of the peer in few large requests.
func (r *Receiver) build(ctx context.Context, files []*action, fsync bool, rd *srcReader, dirs *dirCache, at *atdir.Dirs) error {
	var q wire.BlockRequest
	var owners []*action
	_, short := r.f.Health.Get(CondDiskFull)
	for _, a := range files {
		if err := r.f.checkParents(a.e.Path, dirs, at); err != nil {
			a.err = err
			continue
		}
		var f *os.File
		resumed := false
		if pt := r.takePartial(a.e.Path); pt != nil {
			if f = r.resume(pt, at); f != nil {
				a.tmp, resumed, a.resumed = pt.tmp, true, true
			}
		}
		if f == nil {
			a.tmp = ownname.TempBeside(a.e.Path)
			var err error
			if f, err = at.OpenFile(a.tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, createMode(a.e.Mode)); err != nil {
				a.err, a.tmp = err, ""
				continue
			}
		}
		a.file = f
		if resumed || short {
			if err := reserve(f, a.e.Size); err != nil {
				a.err = fmt.Errorf("write %s: %w", a.e.Path, err)
				continue
			}
		}
		var missing []wire.Block
		var off int64
		dw := r.openRun(a, at) // nil: through the page cache (see direct.go)
		for i, id := range a.e.Content {
			n := a.e.Lengths[i]
			if resumed && rd.holds(f, id, n, off) {
				off += int64(n)
				continue // received by an earlier try
			}
			if data, ok := rd.read(id, n); ok {
				if err := writeAt(a, dw, data, off); err != nil {
					a.err = fmt.Errorf("write %s: %w", a.e.Path, err)
					break
				}
			} else {
				missing = append(missing, wire.Block{Offset: off, Length: n, ID: id})
			}
			off += int64(n)
		}
		if dw != nil {
			if err := dw.close(); err != nil && a.err == nil {
				a.err = fmt.Errorf("write %s: %w", a.e.Path, err)
			}
		}
		// A new file gets every byte written (the chunks add up to its
		// size: wire.Entry.Check); a resumed or reserved one may be longer.
		if a.err == nil && (resumed || short) {
			if err := f.Truncate(a.e.Size); err != nil {
				a.err = fmt.Errorf("write %s: %w", a.e.Path, err)
			}
		}
		if a.err == nil && len(missing) > 0 {
			q.Files = append(q.Files, wire.FileBlocks{Path: a.e.Path, Blocks: missing})
			owners = append(owners, a)
		}
	}
	pcs, owners := r.delta(ctx, &q, owners, at)
	if err := r.fetchAll(ctx, &q, owners, at); err != nil {
		return err
	}
	if rq, ro := r.checkPieced(pcs); len(ro) > 0 {
		r.Log.Debug("blocks put together from segments do not match their IDs: asked for whole", "files", len(ro))
		if err := r.fetchAll(ctx, rq, ro, at); err != nil {
			return err
		}
	}
	for _, a := range files {
		if a.file == nil {
			continue
		}
		// Through the open file, not by path: a lookup fewer for each
		// (two for 27,000 files in the bench's initial mirror).
		if a.err == nil {
			if err := atdir.Futimens(int(a.file.Fd()), a.e.ModTime); err != nil {
				a.err = &fs.PathError{Op: "chtimes", Path: a.tmp, Err: err}
			}
		}
		if a.err == nil {
			a.tmpAt, a.err = finalMode(a.file, a.e.Mode)
		}
		if a.err == nil && fsync {
			a.err = a.file.Sync()
		} else if a.err == nil {
			a.finished()
		}
		if err := a.file.Close(); a.err == nil && err != nil {
			a.err = fmt.Errorf("write %s: %w", a.e.Path, err)
		}
		a.file = nil
		if a.err != nil {
			// At once, not at the end of the batch: on a full disk the
			// space goes to the files that follow, unless what this one
			// holds is kept for its next try (see keepPartial).
			if FailClass(a.err) != CondDiskFull || !r.keepPartial(a, at) {
				at.Remove(a.tmp)
			}
			a.tmp = ""
		}
	}
	return nil
}

// createMode is the mode a temporary file for a file of mode bits is
// made with: its permission bits, as the umask leaves them, so that most
// need no chmod (an inotify event and a system call fewer for each), and
// always readable and writable by the owner, since the receiver opens it
// again by name (O_DIRECT, a local source for later files).
func createMode(bits uint32) fs.FileMode {
	return chunkstore.FileMode(bits).Perm() | 0o600
}

// finalMode gives the open temporary file f the mode bits, if the umask,
// a default ACL or a kept partial left it another, and returns its stat
// facts, which vouch for it as a source (see trusted.go).
func finalMode(f *os.File, bits uint32) (state.Entry, error) {
	fi, err := f.Stat()
	if err != nil {
		return state.Entry{}, err
	}
	want := chunkstore.FileMode(bits)
	if fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == want {
		return facts(state.EntryOf(fi)), nil
	}
	if err := f.Chmod(want); err != nil {
		return state.Entry{}, err
	}
	if fi, err = f.Stat(); err != nil {
		return state.Entry{}, nil // the mode is set; only the facts are missing
	}
	return facts(state.EntryOf(fi)), nil
}
