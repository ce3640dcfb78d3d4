package receive

import (
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/atdir"
	"github.com/syncd/syncd/internal/freelist"
	"github.com/syncd/syncd/state"
)

// sources finds the chunks a receiver needs in local files, so that a
// renamed, copied or partly changed file costs no transfer of what is
// already here. It maps chunk IDs to a place in a file the index lists;
// the place may be stale, so every chunk read is hashed before it is used.
// Its methods are safe for concurrent use; each goroutine reads through a
// reader of its own.
type sources struct {
	f       *Folder
	trusted atomic.Int64 // bytes read unhashed from files their stat vouches for, for tests
	mu      sync.Mutex
	m       map[chunkstore.ID]place
	built   time.Time
	seq     uint64 // the folder's sequence number when m was built
}

type place struct {
	path string
	alt  string // tried if path cannot be opened ("": none)
	off  int64
	n    uint32
	// the file's version as the index listed it (Inode 0: unknown): a
	// file whose stat still matches holds these bytes (see trusted.go)
	at state.Entry
}

// rebuildAfter is how old the map may get before a miss rebuilds it.
const rebuildAfter = 5 * time.Second

func newSources(f *Folder) *sources { return &sources{f: f} }

// add records the chunks of e, a file at rel, in front of what the map
// knew of them: a file just written or about to be replaced is the
// likeliest to still hold them.
func (s *sources) add(rel string, e state.Entry) { s.addAt(rel, "", e, facts(e)) }

// addTemp records the chunks of e, built in the temporary file tmp, which
// is about to be renamed to rel: it is read under whichever name it has.
// at is the temporary file's stat once built (zero: unknown): while it
// matches, the file holds the bytes the receiver wrote and verified, and
// they are not hashed again (see trusted.go); the rename changes its
// change time, and under rel it is hashed.
func (s *sources) addTemp(tmp, rel string, e state.Entry, at state.Entry) { s.addAt(tmp, rel, e, at) }

func (s *sources) addAt(rel, alt string, e state.Entry, at state.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.rebuild()
	}
	var off int64
	for i, id := range e.Content {
		s.m[id] = place{rel, alt, off, e.Lengths[i], at}
		off += int64(e.Lengths[i])
	}
}

// lookup returns where chunk id may be, rebuilding a stale map on a miss.
func (s *sources) lookup(id chunkstore.ID) (place, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[id]
	if !ok {
		s.rebuild()
		p, ok = s.m[id]
	}
	return p, ok
}

// has reports whether the map knows a place of chunk id, without
// rebuilding it.
func (s *sources) has(id chunkstore.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[id]
	return ok
}

// rebuild reads the index anew if it changed and the map is old; s.mu is
// held.
func (s *sources) rebuild() {
	seq, now := s.f.Local.Index().Seq(), s.f.Clock.Now()
	if s.m != nil && (seq == s.seq || now.Sub(s.built) < rebuildAfter) {
		return
	}
	old := s.m
	s.m = map[chunkstore.ID]place{}
	s.seq, s.built = seq, now
	// The temporary files of batches prepared and not yet committed are
	// in no index: they stay sources (read under their final names once
	// renamed; every chunk read is checked).
	for id, p := range old {
		if p.alt != "" {
			s.m[id] = p
		}
	}
	s.f.Local.Index().Walk("", func(rel string, e state.Entry) error {
		if e.Type != "file" || e.Deleted {
			return nil
		}
		var off int64
		at := facts(e)
		for i, id := range e.Content {
			if p, ok := s.m[id]; !ok || p.alt != "" {
				s.m[id] = place{rel, "", off, e.Lengths[i], at}
			}
			off += int64(e.Lengths[i])
		}
		return nil
	})
}

// srcReader reads chunks from local files for one goroutine. It holds
// them as bare descriptors, not os.Files: a source opened with O_NONBLOCK
// (a FIFO must not block the open) made os.NewFile try, and fail, to add
// it to the poller, and the site copies of the bench's initial mirror
// open 19,000 of them.
type srcReader struct {
	s    *sources
	at   *atdir.Dirs    // the directories of the files opened, open until done
	open map[string]int // descriptors by path; -1: cannot be read
	h    *crypto.Hasher
	buf  *freelist.Lease // from readBufs
}

func (s *sources) reader() *srcReader {
	return &srcReader{s: s, at: s.f.at(), open: map[string]int{}, h: crypto.NewHasher(s.f.Chunking.Key), buf: readBufs.Lease()}
}

// readBufs holds the buffers of readers closed before, the size of the
// chunker's largest chunk, mapped outside the heap like the block
// buffers (see transfer's blockBufs): a reader per group of files built,
// 420 of them in the bench's initial mirror, each grew a buffer of its
// own to its largest chunk before there was a list.
var readBufs = freelist.NewMapped(builders, chunkstore.DefaultMaxChunk)

// read returns chunk id of length n from a local file, or false.
// The slice is reused by the next call.
func (r *srcReader) read(id chunkstore.ID, n uint32) ([]byte, bool) {
	p, ok := r.s.lookup(id)
	if !ok || p.n != n {
		return nil, false
	}
	fd := r.file(p)
	if fd < 0 {
		return nil, false
	}
	b := r.buf.Buf(int(p.n))
	trusted := p.at.Inode != 0 && unchanged(fd, p.at)
	if !preadFull(fd, b, p.off) {
		return nil, false
	}
	if trusted && unchanged(fd, p.at) {
		r.s.trusted.Add(int64(p.n))
		return b, true // the version the index lists (see trusted.go)
	}
	if r.s.f.Chunking.ID(r.h, b) != id {
		return nil, false
	}
	return b, true
}

// file returns the descriptor of p's file (-1: it cannot be opened as a
// regular file), opening it on first use.
func (r *srcReader) file(p place) int {
	fd, ok := r.open[p.path]
	if !ok {
		var err error
		fd, err = r.at.OpenFd(p.path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil && p.alt != "" {
			fd, err = r.at.OpenFd(p.alt, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		}
		if err == nil {
			var st unix.Stat_t
			if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				unix.Close(fd)
				err = fs.ErrInvalid
			}
		}
		if err != nil {
			fd = -1
		}
		if len(r.open) > 64 {
			r.closeFiles()
		}
		r.open[p.path] = fd
	}
	return fd
}

// preadFull reads len(b) bytes of fd at off; false: an error, or the file
// ended first.
func preadFull(fd int, b []byte, off int64) bool {
	for len(b) > 0 {
		n, err := unix.Pread(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return false
		}
		b, off = b[n:], off+int64(n)
	}
	return true
}

// close closes the files and directories the reader opened.
func (r *srcReader) close() {
	r.closeFiles()
	r.at.Close()
	r.buf.Release()
}

// closeFiles closes the files the reader opened.
func (r *srcReader) closeFiles() {
	for k, fd := range r.open {
		if fd >= 0 {
			unix.Close(fd)
		}
		delete(r.open, k)
	}
}
