package transfer

import (
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/state"
)

// sources finds the chunks a receiver needs in local files, so that a
// renamed, copied or partly changed file costs no transfer of what is
// already here. It maps chunk IDs to a place in a file the index lists;
// the place may be stale, so every chunk read is hashed before it is used.
type sources struct {
	f     *Folder
	m     map[chunkstore.ID]place
	built time.Time
	seq   uint64 // the folder's sequence number when m was built

	open map[string]*os.File // files read in this batch
	h    *crypto.Hasher
	buf  []byte
}

type place struct {
	path string
	off  int64
	n    uint32
}

// rebuildAfter is how old the map may get before a miss rebuilds it.
const rebuildAfter = 5 * time.Second

func newSources(f *Folder) *sources {
	return &sources{f: f, open: map[string]*os.File{}, h: crypto.NewHasher(f.Chunking.Key)}
}

// add records the chunks of e, a file at rel, in front of what the map
// knew of them: a file just written or about to be replaced is the
// likeliest to still hold them.
func (s *sources) add(rel string, e state.Entry) {
	if s.m == nil {
		s.rebuild()
	}
	var off int64
	for i, id := range e.Content {
		s.m[id] = place{rel, off, e.Lengths[i]}
		off += int64(e.Lengths[i])
	}
}

// addIndexed is add for the rebuild: the first place found stays.
func (s *sources) addIndexed(rel string, e state.Entry) {
	var off int64
	for i, id := range e.Content {
		if _, ok := s.m[id]; !ok {
			s.m[id] = place{rel, off, e.Lengths[i]}
		}
		off += int64(e.Lengths[i])
	}
}

// rebuild reads the index anew if it changed and the map is old.
func (s *sources) rebuild() {
	seq := s.f.State.Seq()
	if s.m != nil && (seq == s.seq || time.Since(s.built) < rebuildAfter) {
		return
	}
	s.m = map[chunkstore.ID]place{}
	s.seq, s.built = seq, time.Now()
	s.f.State.Walk("", func(rel string, e state.Entry) error {
		if e.Type == "file" && !e.Deleted {
			s.addIndexed(rel, e)
		}
		return nil
	})
}

// read returns chunk id of length n from a local file, or false.
// The slice is reused by the next call.
func (s *sources) read(id chunkstore.ID, n uint32) ([]byte, bool) {
	p, ok := s.m[id]
	if !ok {
		s.rebuild()
		if p, ok = s.m[id]; !ok {
			return nil, false
		}
	}
	if p.n != n {
		return nil, false
	}
	return s.readAt(p, id)
}

// readAt reads and checks chunk id at p.
func (s *sources) readAt(p place, id chunkstore.ID) ([]byte, bool) {
	f, ok := s.open[p.path]
	if !ok {
		var err error
		f, err = s.f.root.OpenFile(p.path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err == nil {
			if fi, err2 := f.Stat(); err2 != nil || !fi.Mode().IsRegular() {
				f.Close()
				f, err = nil, fs.ErrInvalid
			}
		}
		if err != nil {
			s.open[p.path] = nil
			return nil, false
		}
		if len(s.open) > 64 {
			s.closeAll()
		}
		s.open[p.path] = f
	}
	if f == nil {
		return nil, false
	}
	if cap(s.buf) < int(p.n) {
		s.buf = make([]byte, p.n)
	}
	b := s.buf[:p.n]
	if _, err := f.ReadAt(b, p.off); err != nil {
		return nil, false
	}
	if s.f.Chunking.ID(s.h, b) != id {
		return nil, false
	}
	return b, true
}

func (s *sources) closeAll() {
	for k, f := range s.open {
		if f != nil {
			f.Close()
		}
		delete(s.open, k)
	}
}
