package archiver

import (
	"io"
	"os"

	"github.com/syncd/syncd/chunkstore"
)

// A changed file is mostly its old self: a database dump with one page
// rewritten, a log with lines appended. Its old chunks come first: for each
// chunk of the previous version, in order, the same number of bytes is read
// and hashed, and if the hash is the old chunk's ID the chunk is taken as
// is. Hashing runs about five times faster than content-defined chunking.
//
// This gives exactly the chunks that chunking the file would: the chunker
// starts afresh at every cut, and where it cuts depends only on the bytes
// since the last cut, so identical bytes from an identical start are cut
// at the identical place. The one exception is a chunk that ended at the
// old end of file rather than at a cut: it is taken only if it ends at the
// end of the file again. Where a chunk differs, the file is chunked from
// the last good cut; as soon as a new chunk is one of the old ones, the
// chunks that followed it are tried again.

// oldChunk is a chunk of the previous version: its ID and length.
type oldChunk struct {
	id  chunkstore.ID
	len int64
}

// oldChunks returns the chunks of the parent snapshot's version of a file,
// or nil when their lengths are not all known.
func (r *fileReader) oldChunks(old *chunkstore.Node) []oldChunk {
	if old == nil || old.Type != chunkstore.NodeFile || len(old.Content) < 2 {
		return nil // one chunk: nothing to gain over chunking it
	}
	out := make([]oldChunk, len(old.Content))
	for i, id := range old.Content {
		loc, ok := r.a.repo.Index().Lookup(id)
		if !ok {
			return nil
		}
		out[i] = oldChunk{id: id, len: int64(loc.Raw)}
	}
	return out
}

// rechunk splits f (of size bytes) using the chunks of its previous
// version where they still hold, and the chunker elsewhere. It returns the
// content and the number of bytes read.
func (r *fileReader) rechunk(f *os.File, size int64, old []oldChunk) ([]chunkstore.ID, int64, error) {
	a := r.a
	next := make(map[chunkstore.ID]int, len(old)) // old chunk → index of the one after it
	for i, c := range old {
		if _, dup := next[c.id]; !dup {
			next[c.id] = i + 1
		}
	}
	var content []chunkstore.ID
	var off int64
	k := 0 // the old chunk to try next
	for off < size {
		// Try old chunks from k on.
		for k < len(old) {
			c := old[k]
			last := k == len(old)-1
			if off+c.len > size || (last && off+c.len != size) {
				break
			}
			if int64(cap(r.buf)) < c.len {
				r.buf = make([]byte, c.len)
			}
			buf := r.buf[:c.len]
			if _, err := f.ReadAt(buf, off); err != nil {
				return nil, 0, err
			}
			if a.repo.BlobID(r.h, buf) != c.id || !a.saver.Known(c.id) {
				break
			}
			content = append(content, c.id)
			off += c.len
			k++
			a.opts.Progress.BytesRead.Add(c.len)
			a.opts.Progress.BytesMatched.Add(c.len)
		}
		if off >= size {
			break
		}
		// Chunk from off until a chunk is one of the old ones again.
		r.startChunking(io.NewSectionReader(f, off, size-off))
		k = len(old)
		for k == len(old) && off < size {
			id, n, err := r.nextChunk()
			if err == io.EOF {
				return content, off, nil
			}
			if err != nil {
				return nil, 0, err
			}
			content = append(content, id)
			off += n
			if j, ok := next[id]; ok {
				k = j
			}
		}
	}
	return content, off, nil
}
