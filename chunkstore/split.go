package chunkstore

import (
	"crypto/sha256"
	"encoding/binary"
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
	c   Chunking
	chk *chunker.Chunker
	buf []byte
	h   *crypto.Hasher

	buf2 []byte         // the second lane's of verifyOld
	h2   *crypto.Hasher // made on first use
}

// NewSplitter returns a Splitter for r.
func (r *Repository) NewSplitter() *Splitter { return r.Chunking().NewSplitter() }

// NewSplitter returns a Splitter that cuts with c.
func (c Chunking) NewSplitter() *Splitter {
	return &Splitter{
		c:   c,
		chk: chunker.NewWithBoundaries(nil, c.Pol, uint(c.Min), uint(c.Max)),
		buf: make([]byte, 0, 1<<20),
		h:   crypto.NewHasher(c.Key),
	}
}

// Chunking is what decides the chunks of a file and their IDs: the
// chunker polynomial and size bounds, and the key of the chunk IDs. Nodes
// that mirror a folder must chunk it alike for their chunk IDs to agree.
type Chunking struct {
	Pol      chunker.Pol
	Min, Max int
	Key      []byte // the chunk ID key; secret
}

// Chunking returns the repository's chunking parameters.
func (r *Repository) Chunking() Chunking {
	return Chunking{Pol: r.pol, Min: r.cfg.MinChunk, Max: r.cfg.MaxChunk, Key: r.chunkKey}
}

// mirrorPol is the polynomial of [MirrorChunking]; any irreducible one
// does, this is the one restic's chunker documents as an example.
const mirrorPol = chunker.Pol(0x3DA3358B4DC173)

// MirrorChunking returns the chunking of nodes that mirror without a
// repository: fixed, public parameters. Chunk IDs then are plain keyed
// hashes under a published key, which is fine for the local index and
// the TLS-protected peer protocol, but never used for a repository.
func MirrorChunking() Chunking {
	key := sha256.Sum256([]byte("syncd mirror chunking v1"))
	return Chunking{Pol: mirrorPol, Min: DefaultMinChunk, Max: DefaultMaxChunk, Key: key[:]}
}

// Fingerprint identifies c without revealing its key: peers compare
// fingerprints to make sure they chunk a folder alike.
func (c Chunking) Fingerprint() ID {
	var b []byte
	b = append(b, "syncd chunking v1"...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Pol))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Min))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Max))
	var id ID
	crypto.NewHasher(c.Key).Sum(id[:0], b)
	return id
}

// ID returns the keyed ID of a chunk's data, with h from [Splitter.Hasher]
// or crypto.NewHasher(c.Key).
func (c Chunking) ID(h *crypto.Hasher, data []byte) ID {
	var id ID
	h.Sum(id[:0], data)
	return id
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
		// Try old chunks from k on, a few at once (see verifyOld).
		for k < len(old) {
			end, pos := k, out.Size
			for end < len(old) && end-k < verifyAhead {
				c := old[end]
				last := end == len(old)-1
				if pos+c.Len > size || (last && pos+c.Len != size) {
					break
				}
				pos += c.Len
				end++
			}
			if end == k {
				break
			}
			n, err := s.verifyOld(f, old[k:end], out.Size)
			if err != nil {
				return Split{}, err
			}
			stop := n < end-k
			for _, c := range old[k : k+n] {
				if known != nil && !known(c.ID) {
					stop = true
					break
				}
				out.add(c.ID, c.Len)
				out.Matched += c.Len
				k++
			}
			if stop {
				break
			}
		}
		if out.Size >= size {
			break
		}
		// Chunk from here until a chunk is one of the old ones again.
		s.chk.ResetWithBoundaries(io.NewSectionReader(f, out.Size, size-out.Size), s.c.Pol, uint(s.c.Min), uint(s.c.Max))
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
			id := s.c.ID(s.h, c.Data)
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

// verifyAhead is how many old chunks verifyOld takes at once: a few MiB,
// so that what it hashes past a chunk that changed is little.
const verifyAhead = 8

// verifyOld reads and hashes the old chunks cs, the first at offset off
// of f, on two goroutines (hashing an unchanged 512 MiB dump took one core
// 0.6 s), and returns how many of them, from the first, have their old
// ID; or the error of reading one of those or the first that differs.
func (s *Splitter) verifyOld(f io.ReaderAt, cs []OldChunk, off int64) (int, error) {
	if len(cs) == 0 {
		return 0, nil
	}
	offs := make([]int64, len(cs))
	for i := range cs {
		offs[i] = off
		off += cs[i].Len
	}
	type result struct {
		ok  bool
		err error
	}
	res := make([]result, len(cs))
	check := func(i int, buf *[]byte, h *crypto.Hasher) {
		if int64(cap(*buf)) < cs[i].Len {
			*buf = make([]byte, cs[i].Len)
		}
		b := (*buf)[:cs[i].Len]
		if _, err := f.ReadAt(b, offs[i]); err != nil {
			res[i].err = err
			return
		}
		res[i].ok = s.c.ID(h, b) == cs[i].ID
	}
	done := make(chan struct{})
	if len(cs) > 1 {
		if s.h2 == nil {
			s.h2 = crypto.NewHasher(s.c.Key)
		}
		go func() {
			defer close(done)
			for i := 1; i < len(cs); i += 2 {
				check(i, &s.buf2, s.h2)
			}
		}()
	} else {
		close(done)
	}
	for i := 0; i < len(cs); i += 2 {
		check(i, &s.buf, s.h)
	}
	<-done
	for i, r := range res {
		if r.err != nil {
			return i, r.err
		}
		if !r.ok {
			return i, nil
		}
	}
	return len(cs), nil
}
