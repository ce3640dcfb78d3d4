package indexer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/state"
)

// ErrChanging is recorded for a file that kept changing while it was
// read; the watcher reports it again once it settles.
var ErrChanging = errors.New("changed while being read")

// file indexes the regular file rel with metadata e: unchanged files are
// not read; changed ones are chunked against their previous chunks. A
// read stops when ctx ends (a huge file takes minutes to hash).
func (ix *Indexer) file(ctx context.Context, rel string, e state.Entry) error {
	old, have, err := ix.st.Get(rel)
	if err != nil {
		return err
	}
	if have && !old.Deleted && sameFile(old, e) {
		ix.ok(rel)
		return nil
	}
	if ix.sp == nil { // no repository: metadata only, nothing to chunk with
		ix.ok(rel)
		return ix.put(rel, e)
	}
	if !have || old.Deleted {
		if prev, ok := ix.movedFrom(rel, e); ok {
			e.Content, e.Lengths = prev.Content, prev.Lengths
			ix.filesMoved.Add(1)
			ix.ok(rel)
			return ix.put(rel, e)
		}
	}
	f, err := os.OpenFile(ix.abs(rel), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return ix.removeTree(rel)
		}
		ix.fail(rel, err)
		return nil
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil || !before.Mode().IsRegular() {
		ix.fail(rel, fmt.Errorf("no longer a regular file"))
		return nil
	}
	var oldChunks []chunkstore.OldChunk
	if have && old.Type == "file" && len(old.Content) > 1 && len(old.Lengths) == len(old.Content) {
		oldChunks = make([]chunkstore.OldChunk, len(old.Content))
		for i, id := range old.Content {
			oldChunks[i] = chunkstore.OldChunk{ID: id, Len: int64(old.Lengths[i])}
		}
	}
	split, err := ix.sp.Split(ctxReaderAt{ctx, f}, before.Size(), oldChunks, nil, nil)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ix.fail(rel, err)
		return nil
	}
	after, err := f.Stat()
	if err != nil {
		ix.fail(rel, err)
		return nil
	}
	if !sameStat(before, after) || split.Size != after.Size() {
		ix.fail(rel, ErrChanging)
		return nil
	}
	e = state.EntryOf(after)
	e.Content, e.Lengths = split.Content, split.Lengths
	ix.filesRead.Add(1)
	ix.bytesRead.Add(split.Size)
	ix.bytesMatched.Add(split.Matched)
	ix.ok(rel)
	return ix.put(rel, e)
}

// ctxReaderAt is r that fails with ctx's error once ctx ends.
type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}

// sameFile reports whether the index entry old still describes the file
// whose lstat gave e, so that its content need not be read.
func sameFile(old, e state.Entry) bool {
	return old.Type == "file" && old.Size == e.Size && old.ModTime == e.ModTime &&
		old.ChTime == e.ChTime && old.Inode == e.Inode && (old.Size == 0 || len(old.Content) > 0)
}

func sameStat(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && sa.Ctim == sb.Ctim
}
