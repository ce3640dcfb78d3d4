package restorer

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/syncd/syncd/chunkstore"
)

// fetch reads every needed pack once and writes its blobs. Packs are read
// on opts.Workers goroutines, the largest first. A blob whose copy cannot
// be read or does not hash to its ID is read again from its next copy, in
// another round over the packs holding those copies. Files whose blobs
// have copies of different lengths are restored last, blob by blob.
func (p *planner) fetch() error {
	for len(p.packs) > 0 {
		if err := p.fetchRound(); err != nil {
			return err
		}
		p.packs = make(map[chunkstore.ID]*packJob)
		for _, bj := range p.retry {
			pj := p.packs[bj.loc.Pack]
			if pj == nil {
				pj = &packJob{id: bj.loc.Pack, size: bj.loc.PackSize, blobs: make(map[chunkstore.ID]*blobJob)}
				p.packs[bj.loc.Pack] = pj
			}
			pj.blobs[bj.id] = bj
			pj.needed += int64(bj.loc.Length)
		}
		p.retry = nil
	}
	g, ctx := errgroup.WithContext(p.ctx)
	g.SetLimit(p.opts.Workers)
	for _, f := range p.slow {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return p.fetchSlow(f)
		})
	}
	return g.Wait()
}

// fetchRound reads the packs of p.packs.
func (p *planner) fetchRound() error {
	jobs := make([]*packJob, 0, len(p.packs))
	for _, pj := range p.packs {
		jobs = append(jobs, pj)
	}
	slices.SortFunc(jobs, func(a, b *packJob) int { return cmp.Compare(b.needed, a.needed) })
	g, ctx := errgroup.WithContext(p.ctx)
	g.SetLimit(p.opts.Workers)
	for _, pj := range jobs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return p.fetchPack(pj)
		})
	}
	return g.Wait()
}

// fetchPack restores the blobs of one pack. A pack that cannot be read
// fails the files that need it, not the restore.
func (p *planner) fetchPack(pj *packJob) error {
	var pack *chunkstore.Pack
	var err error
	if pj.needed*4 > pj.size { // most of it: one read of the whole pack
		var buf []byte
		pack, buf, err = p.repo.ReadPack(p.ctx, chunkstore.DataBlob, pj.id, pj.size, p.packBufs.Get())
		defer func() { p.packBufs.Put(buf) }()
	} else {
		pack, err = p.repo.OpenPack(p.ctx, chunkstore.DataBlob, pj.id, pj.size, false)
	}
	if err != nil {
		if p.ctx.Err() != nil {
			return p.ctx.Err()
		}
		err = p.badPack(pj.id, err)
		for _, bj := range pj.blobs {
			p.blobFailed(bj, err)
		}
		return nil
	}
	blobs := make([]*blobJob, 0, len(pj.blobs))
	for _, bj := range pj.blobs {
		blobs = append(blobs, bj)
	}
	slices.SortFunc(blobs, func(a, b *blobJob) int { return cmp.Compare(a.loc.Offset, b.loc.Offset) })
	h := p.repo.NewHasher()
	var buf []byte
	for _, bj := range blobs {
		if len(bj.targets) == 0 { // planned for a file restored by fetchSlow
			continue
		}
		buf, err = pack.ReadBlob(buf[:0], bj.id, bj.loc, h)
		if err != nil {
			if p.ctx.Err() != nil {
				return p.ctx.Err()
			}
			p.blobFailed(bj, p.badPack(bj.loc.Pack, err))
			continue
		}
		for _, t := range bj.targets {
			if t.f.failed.Load() {
				continue
			}
			if err := p.writeAt(t.f, buf, t.off); err != nil {
				p.fail(t.f, err)
				continue
			}
			p.opts.Progress.BytesWritten.Add(int64(len(buf)))
		}
	}
	return nil
}

// writeAt writes one blob of f; the write that completes the file also
// finishes it, through the same descriptor.
func (p *planner) writeAt(f *file, data []byte, off int64) error {
	fd, err := p.open(f)
	if err != nil {
		return err
	}
	if err := pwriteAll(fd, data, off); err != nil {
		unix.Close(fd)
		return err
	}
	if f.remaining.Add(-1) == 0 {
		p.finishFile(f, fd)
		return nil
	}
	return unix.Close(fd)
}

func pwriteAll(fd int, data []byte, off int64) error {
	for len(data) > 0 {
		n, err := unix.Pwrite(fd, data, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write: %w", err) // FileError names the file
		}
		data, off = data[n:], off+int64(n)
	}
	return nil
}

// blobFailed queues bj for its next copy, if it has one of the same
// length; otherwise it fails the files that need it, with the error of the
// first copy tried.
func (p *planner) blobFailed(bj *blobJob, err error) {
	copies := p.repo.Index().Copies(nil, bj.id)
	i := slices.IndexFunc(copies, func(l chunkstore.Location) bool { return l.Pack == bj.loc.Pack })
	p.mu.Lock()
	first, seen := p.firstErr[bj]
	if !seen {
		first = err
	}
	for _, l := range copies[i+1:] {
		if l.Type != chunkstore.DataBlob || l.Raw != bj.loc.Raw {
			continue
		}
		if p.firstErr == nil {
			p.firstErr = make(map[*blobJob]error)
			p.warned = make(map[chunkstore.ID]bool)
		}
		p.firstErr[bj] = first
		if !p.warned[bj.loc.Pack] {
			p.warned[bj.loc.Pack] = true
			p.opts.Logger.Warn("a blob copy cannot be used; reading its other copies",
				"pack", chunkstore.ObjectName(chunkstore.DataBlob, bj.loc.Pack), "err", err)
		}
		bj.loc = l
		p.retry = append(p.retry, bj)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if seen {
		err = fmt.Errorf("%w; no other copy is the blob either", first)
	}
	p.failTargets(bj, err)
}

// fetchSlow restores f blob by blob, each from the first of its copies
// that reads back as the blob: for a file with a blob whose copies
// disagree on its length, which only reading them settles.
func (p *planner) fetchSlow(f *file) error {
	fd, err := p.open(f)
	if err != nil {
		p.fail(f, err)
		return nil
	}
	h := p.repo.NewHasher()
	var buf []byte
	var copies []chunkstore.Location
	var off int64
	for _, id := range f.node.Content {
		copies = p.repo.Index().Copies(copies[:0], id)
		var first error
		done := false
		for _, l := range copies {
			if l.Type != chunkstore.DataBlob {
				continue
			}
			pack, err := p.repo.OpenPack(p.ctx, chunkstore.DataBlob, l.Pack, l.PackSize, false)
			if err == nil {
				buf, err = pack.ReadBlob(buf[:0], id, l, h)
			}
			if err == nil {
				done = true
				break
			}
			if p.ctx.Err() != nil {
				unix.Close(fd)
				return p.ctx.Err()
			}
			err = p.badPack(l.Pack, err)
			if first == nil {
				first = err
			}
		}
		if !done {
			unix.Close(fd)
			p.fail(f, fmt.Errorf("%w; no other copy is the blob either", first))
			return nil
		}
		if err := pwriteAll(fd, buf, off); err != nil {
			unix.Close(fd)
			p.fail(f, err)
			return nil
		}
		off += int64(len(buf))
		p.opts.Progress.BytesWritten.Add(int64(len(buf)))
	}
	if uint64(off) != f.node.Size {
		unix.Close(fd)
		p.fail(f, fmt.Errorf("content adds up to %d bytes, the tree says %d", off, f.node.Size))
		return nil
	}
	p.finishFile(f, fd)
	return nil
}

func (p *planner) failTargets(bj *blobJob, err error) {
	for _, t := range bj.targets {
		p.fail(t.f, err)
	}
}

// fail marks f failed (once) and removes its temporary file.
func (p *planner) fail(f *file, err error) {
	if f.failed.Swap(true) {
		return
	}
	p.removeTemp(f)
	p.fileError("/"+f.path, err)
}

func (p *planner) removeTemp(f *file) {
	err := p.fds.Remove(f.tmp)
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
		p.opts.Logger.Warn("cannot remove temporary file", "path", f.tmp, "err", err)
	}
}

// finishFile sets the metadata of f through its open descriptor fd (which
// it closes) and renames it into place.
func (p *planner) finishFile(f *file, fd int) {
	if f.failed.Load() {
		unix.Close(fd)
		return
	}
	err := setFileMeta(fd, int64(f.node.Size), f.node.UID, f.node.GID, f.node.Mode, f.node.ModTime)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: f.path, Err: cerr}
	}
	if err != nil {
		p.fail(f, err)
		return
	}
	if p.opts.Overwrite {
		// a directory standing where the file goes must go first
		if fi, err := p.fds.Lstat(f.path); err == nil && fi.IsDir() {
			if err := p.root.RemoveAll(f.path); err != nil {
				p.fail(f, err)
				return
			}
		}
	}
	if err := p.fds.Rename(f.tmp, f.path, false); err != nil {
		p.fail(f, err)
		return
	}
	f.done.Store(true)
	p.opts.Progress.FilesDone.Add(1)
	p.mu.Lock()
	p.res.Files++
	p.res.FileBytes += int64(f.node.Size)
	p.mu.Unlock()
}

// setMeta applies mode, ownership (as root) and times of n to rel.
func (p *planner) setMeta(rel string, n chunkstore.Node, symlink bool) error {
	if asRoot {
		if err := p.root.Lchown(rel, int(n.UID), int(n.GID)); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if symlink {
		if err := p.fds.Chtimes(rel, n.ModTime); err != nil {
			return fmt.Errorf("set symlink times: %w", err)
		}
		return nil
	}
	if err := p.root.Chmod(rel, chunkstore.FileMode(n.Mode)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := p.root.Chtimes(rel, n.ModTime, n.ModTime); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// finishLinks creates the hard links to files restored earlier.
func (p *planner) finishLinks() {
	for _, l := range p.later {
		if !l.src.done.Load() {
			p.fileError("/"+l.path, fmt.Errorf("hard link to /%s, which was not restored", l.src.path))
			continue
		}
		if err := p.clear(l.path, false); err != nil {
			p.fileError("/"+l.path, err)
			continue
		}
		if err := p.root.Link(l.src.path, l.path); err != nil {
			p.fileError("/"+l.path, err)
			continue
		}
		p.res.Hardlinks++
	}
}

// finishDirs applies directory metadata, deepest first, after everything
// inside them is written.
func (p *planner) finishDirs() {
	for i := len(p.dirs) - 1; i >= 0; i-- {
		d := p.dirs[i]
		if err := p.setDirMeta(d); err != nil {
			p.fileError("/"+d.path, err)
		}
	}
}

// setDirMeta applies a directory's metadata through its descriptor.
func (p *planner) setDirMeta(d dirMeta) error {
	dir, err := p.fds.Acquire(d.path)
	if err != nil {
		return err
	}
	defer dir.Release()
	n := d.node
	return setFileMeta(dir.Fd(), -1, n.UID, n.GID, n.Mode, n.ModTime)
}

// cleanup removes the temporary files of the files not restored (a
// failed file's may have been recreated by a write already under way).
func (p *planner) cleanup() {
	for _, f := range p.files {
		if !f.done.Load() {
			p.removeTemp(f)
		}
	}
}
