package receive

import (
	"context"
	"fmt"
	"os"
	"time"

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
			if f, err = at.OpenFile(a.tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
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
		if a.err == nil {
			a.err = a.file.Chmod(chunkstore.FileMode(a.e.Mode))
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
		if a.err == nil {
			a.err = at.Chtimes(a.tmp, time.Unix(0, a.e.ModTime))
		}
		if a.err == nil {
			if fi, err := at.Lstat(a.tmp); err == nil {
				a.tmpAt = facts(state.EntryOf(fi)) // its stat vouches for it as a source
			}
		}
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
