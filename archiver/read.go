package archiver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/syncd/syncd/chunkstore"
)

// fileJob asks a reader to read node i of d from path.
type fileJob struct {
	d    *dirState
	i    int
	path string
	old  *chunkstore.Node // the parent snapshot's node, if any
}

// readAttempts bounds how often a file that changes while it is read is
// read again before it is reported.
const readAttempts = 3

// reader is one file-reading goroutine.
func (a *arch) reader() {
	r := &fileReader{a: a, sp: a.repo.NewSplitter()}
	for job := range a.jobs {
		if a.ctx.Err() == nil {
			r.read(job)
		}
		job.d.done()
	}
}

type fileReader struct {
	a  *arch
	sp *chunkstore.Splitter
}

// read fills the node's content. A file that cannot be read is dropped
// from the tree and reported; one that keeps changing while it is read is
// reported and keeps the parent snapshot's version if there is one.
func (r *fileReader) read(job fileJob) {
	a := r.a
	n := &job.d.nodes[job.i]
	if n.Links > 1 && r.fromLink(n) {
		return
	}
	f, err := openNoFollow(job.path)
	if err != nil {
		n.Type = ""
		if !errors.Is(err, os.ErrNotExist) {
			a.fileError(job.path, unwrapPathError(err))
		}
		return
	}
	defer f.Close()
	a.opts.Progress.FilesRead.Add(1)
	for attempt := range readAttempts {
		before, err := f.Stat()
		if err != nil {
			n.Type = ""
			a.fileError(job.path, unwrapPathError(err))
			return
		}
		if attempt > 0 {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				n.Type = ""
				a.fileError(job.path, err)
				return
			}
		}
		var old []chunkstore.OldChunk
		if job.old != nil && job.old.Type == chunkstore.NodeFile {
			old = a.repo.OldChunks(job.old.Content)
		}
		split, err := r.sp.Split(f, before.Size(), old, a.saver.Known, r.save)
		content, size := split.Content, split.Size
		a.opts.Progress.BytesRead.Add(split.Matched)
		a.opts.Progress.BytesMatched.Add(split.Matched)
		if err != nil {
			if a.ctx.Err() == nil {
				n.Type = ""
				a.fileError(job.path, err)
			}
			return
		}
		after, err := f.Stat()
		if err != nil {
			n.Type = ""
			a.fileError(job.path, unwrapPathError(err))
			return
		}
		if sameVersion(before, after) && size == after.Size() {
			meta := nodeFromInfo(n.FileName(), after)
			meta.Content = content
			*n = meta
			if n.Links > 1 {
				a.linkMu.Lock()
				a.links[[2]uint64{n.Device, n.Inode}] = linkEntry{node: *n, content: content}
				a.linkMu.Unlock()
			}
			return
		}
	}
	err = fmt.Errorf("changed while being read (%d attempts)", readAttempts)
	if job.old != nil && job.old.Type == chunkstore.NodeFile {
		*n = *job.old
		err = fmt.Errorf("%w; the snapshot keeps the previous version", err)
	} else {
		n.Type = ""
		err = fmt.Errorf("%w; not in this snapshot", err)
	}
	a.fileError(job.path, err)
}

// fromLink reuses the content of a hard link read earlier in this run.
func (r *fileReader) fromLink(n *chunkstore.Node) bool {
	r.a.linkMu.Lock()
	e, ok := r.a.links[[2]uint64{n.Device, n.Inode}]
	r.a.linkMu.Unlock()
	if !ok || e.node.Size != n.Size || !e.node.ModTime.Equal(n.ModTime) || !e.node.ChTime.Equal(n.ChTime) {
		return false
	}
	n.Content = e.content
	return true
}

// save stores a chunk cut from a file being read.
func (r *fileReader) save(id chunkstore.ID, data []byte) error {
	_, err := r.a.saver.Save(chunkstore.DataBlob, id, data)
	r.a.opts.Progress.BytesRead.Add(int64(len(data)))
	return err
}

// sameVersion reports whether two stats of one open file show no change.
func sameVersion(a, b os.FileInfo) bool {
	if a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime()) {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Ctim == sb.Ctim
}

// openNoFollow opens a regular file for reading without following a
// symlink that replaced it, and without updating its access time where
// the caller may (owner or root).
func openNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("no longer a regular file")
	}
	return f, nil
}
