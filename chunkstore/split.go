package chunkstore

import (
	"io"

	"github.com/restic/chunker"

	"github.com/syncd/syncd/crypto"
)

// A changed file is mostly its old self: a database dump with one page
// rewritten, a log with lines appended. So its old chunks are tried first:
// for each chunk of the previous version, in order, the same number of
// bytes is read and hashed, and if the hash is the old chunk's ID the chunk
// is taken as is. Hashing runs about five times faster than
// content-defined chunking.
//
// This gives exactly the chunks that chunking the file would: the chunker
// starts afresh at every cut, and where it cuts depends only on the bytes
// since the last cut, so identical bytes from an identical start are cut
// at the identical place. The one exception is a chunk that ended at the
// old end of file rather than at a cut: it is taken only if it ends at the
// end of the file again. Where a chunk differs, the file is chunked from
// the last good cut; as soon as a new chunk is one of the old ones, the
// chunks that followed it are tried again.

// OldChunk is a chunk of a file's previous version: its ID and length.
type OldChunk struct {
	ID  ID
	Len int64
}

// Split is the result of Splitter.Split.
type Split struct {
	Content []ID     // the chunks, in order
	Lengths []uint32 // their lengths
	Size    int64    // bytes read
	Matched int64    // of which found unchanged by hashing against old chunks
}

// Splitter cuts files into content-defined chunks with the repository's
// chunker parameters and computes their keyed IDs. It is not safe for
// concurrent use; make one per goroutine.
type Splitter struct {
	r   *Repository
	chk *chunker.Chunker
	buf []byte
	h   *crypto.Hasher
}

// NewSplitter returns a Splitter for r.
func (r *Repository) NewSplitter() *Splitter {
	return &Splitter{
		r:   r,
		chk: chunker.NewWithBoundaries(nil, r.pol, uint(r.cfg.MinChunk), uint(r.cfg.MaxChunk)),
		buf: make([]byte, 0, 1<<20),
		h:   r.NewHasher(),
	}
}

// Split reads the size bytes of f and returns its chunks. old, if not nil,
// are the chunks of the previous version, tried first (see above); known,
// if not nil, says whether an old chunk may be reused (its blob is still
// stored). fresh, if not nil, is called with each chunk that was cut (not
// matched), in order; the slice is reused once fresh returns.
func (s *Splitter) Split(f io.ReaderAt, size int64, old []OldChunk, known func(ID) bool, fresh func(id ID, data []byte) error) (Split, error) {
	next := make(map[ID]int, len(old)) // old chunk → index of the one after it
	for i, c := range old {
		if _, dup := next[c.ID]; !dup {
			next[c.ID] = i + 1
		}
	}
	var out Split
	k := 0 // the old chunk to try next
	for out.Size < size {
		// Try old chunks from k on.
		for ; k < len(old); k++ {
			c := old[k]
			last := k == len(old)-1
			if out.Size+c.Len > size || (last && out.Size+c.Len != size) {
				break
			}
			if int64(cap(s.buf)) < c.Len {
				s.buf = make([]byte, c.Len)
			}
			buf := s.buf[:c.Len]
			if _, err := f.ReadAt(buf, out.Size); err != nil {
				return Split{}, err
			}
			if s.r.BlobID(s.h, buf) != c.ID || (known != nil && !known(c.ID)) {
				break
			}
			out.add(c.ID, c.Len)
			out.Matched += c.Len
		}
		if out.Size >= size {
			break
		}
		// Chunk from here until a chunk is one of the old ones again.
		s.chk.ResetWithBoundaries(io.NewSectionReader(f, out.Size, size-out.Size), s.r.pol, uint(s.r.cfg.MinChunk), uint(s.r.cfg.MaxChunk))
		k = len(old)
		for k == len(old) && out.Size < size {
			c, err := s.chk.Next(s.buf)
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return Split{}, err
			}
			s.buf = c.Data[:0] // keep a grown buffer
			id := s.r.BlobID(s.h, c.Data)
			if fresh != nil {
				if err := fresh(id, c.Data); err != nil {
					return Split{}, err
				}
			}
			out.add(id, int64(len(c.Data)))
			if j, ok := next[id]; ok {
				k = j
			}
		}
	}
	return out, nil
}

func (s *Split) add(id ID, n int64) {
	s.Content = append(s.Content, id)
	s.Lengths = append(s.Lengths, uint32(n))
	s.Size += n
}

// OldChunks returns the chunks of content with their lengths from the
// index, or nil when a length is unknown or there is at most one chunk
// (nothing to gain over chunking).
func (r *Repository) OldChunks(content []ID) []OldChunk {
	if len(content) < 2 {
		return nil
	}
	out := make([]OldChunk, len(content))
	for i, id := range content {
		loc, ok := r.idx.Lookup(id)
		if !ok {
			return nil
		}
		out[i] = OldChunk{ID: id, Len: int64(loc.Raw)}
	}
	return out
}
