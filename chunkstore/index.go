package chunkstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/chunkstore/backend"
)

// Location says where a blob is stored.
type Location struct {
	Pack     ID
	PackSize int64 // encrypted size of the pack object
	Type     BlobType
	Offset   uint32 // in the pack's plaintext
	Length   uint32 // stored length (compressed or raw)
	Raw      uint32 // plaintext length of the blob
	Zstd     bool   // stored as a zstd frame
}

// Index maps blob IDs to their locations. It is safe for concurrent use.
type Index struct {
	mu     sync.RWMutex
	m      map[ID]Location
	alt    map[ID][]Location // other copies of a blob (two writers stored it)
	sealed map[ID][]string   // pack → IndexPack.SealedTo (nil where its entries disagree)
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{m: make(map[ID]Location), alt: make(map[ID][]Location), sealed: make(map[ID][]string)}
}

// SealedTo returns what the index entries of pack record of the recipients
// it is sealed to ([IndexPack].SealedTo): nil when they record none, or
// when two entries for the pack disagree.
func (x *Index) SealedTo(pack ID) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return slices.Clone(x.sealed[pack])
}

// Lookup returns the location of blob id.
func (x *Index) Lookup(id ID) (Location, bool) {
	x.mu.RLock()
	l, ok := x.m[id]
	x.mu.RUnlock()
	return l, ok
}

// Has reports whether blob id is in the index.
func (x *Index) Has(id ID) bool {
	_, ok := x.Lookup(id)
	return ok
}

// Len returns the number of blobs.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.m)
}

// Each calls fn for every blob, under a read lock: fn must not modify x.
func (x *Index) Each(fn func(ID, Location)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for id, l := range x.m {
		fn(id, l)
	}
}

// LookupAll returns the location of blob id that Lookup returns, and a copy
// of the list of its other copies (nil for a blob stored once).
func (x *Index) LookupAll(id ID) (first Location, others []Location, ok bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	first, ok = x.m[id]
	if alts := x.alt[id]; ok && len(alts) > 0 {
		others = slices.Clone(alts)
	}
	return first, others, ok
}

// Copies appends every stored copy of blob id to dst and returns it: the
// location Lookup returns first, then the others in the order they were
// loaded. Most blobs have one copy; a blob that two writers stored, or that
// a run stored again, has more, and a hostile writer can add copies whose
// bytes are wrong. Readers try the next copy when one does not hash to id.
func (x *Index) Copies(dst []Location, id ID) []Location {
	x.mu.RLock()
	defer x.mu.RUnlock()
	l, ok := x.m[id]
	if !ok {
		return dst
	}
	return append(append(dst, l), x.alt[id]...)
}

// EachCopy calls fn for every copy of every blob (Each, plus the copies
// beyond the first), under a read lock: fn must not modify x.
func (x *Index) EachCopy(fn func(ID, Location)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for id, l := range x.m {
		fn(id, l)
	}
	for id, alts := range x.alt {
		for _, l := range alts {
			fn(id, l)
		}
	}
}

// addPack records the blobs of one pack.
func (x *Index) addPack(p IndexPack) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if prev, ok := x.sealed[p.ID]; !ok {
		x.sealed[p.ID] = p.SealedTo
	} else if !slices.Equal(prev, p.SealedTo) {
		x.sealed[p.ID] = nil
	}
	for _, b := range p.Blobs {
		l := Location{Pack: p.ID, PackSize: p.Size, Type: p.Type, Offset: b.Offset,
			Length: b.Length, Raw: b.Raw, Zstd: b.Compression == "zstd"}
		if first, ok := x.m[b.ID]; ok {
			// another copy, from a concurrent writer or a run that stored
			// the blob again after its pack was lost; the same pack listed
			// by two index objects (a prune that died) is one copy
			if first.Pack != l.Pack && !slices.ContainsFunc(x.alt[b.ID], func(a Location) bool { return a.Pack == l.Pack }) {
				x.alt[b.ID] = append(x.alt[b.ID], l)
			}
			continue
		}
		x.m[b.ID] = l
	}
}

// IndexBlob is one blob entry of an index object or pack header.
type IndexBlob struct {
	ID          ID     `json:"id"`
	Offset      uint32 `json:"offset"`
	Length      uint32 `json:"length"`
	Raw         uint32 `json:"raw_length"`
	Compression string `json:"compression,omitempty"` // "zstd" or empty
}

// IndexPack lists the blobs of one pack.
type IndexPack struct {
	ID    ID          `json:"id"`
	Type  BlobType    `json:"type"`
	Size  int64       `json:"size"`
	Blobs []IndexBlob `json:"blobs"`
	// SealedTo holds the fingerprints (crypto.Fingerprint), sorted, of the
	// recipients the pack is sealed to, as its writer recorded them (a
	// copy takes the source's record); nil for a pack written or copied
	// before syncd recorded them. The age header cannot tell: its X25519
	// stanzas do not name their recipients. It is the writer's word, not
	// checked against the pack.
	SealedTo []string `json:"sealed_to,omitempty"`
}

// indexFile is the content of an "index/<id>" object.
type indexFile struct {
	Packs []IndexPack `json:"packs"`
}

// validate checks an index object from the repository.
func (f *indexFile) validate() error {
	for _, p := range f.Packs {
		if p.Type != DataBlob && p.Type != TreeBlob {
			return fmt.Errorf("pack %s: unknown type", p.ID.Short())
		}
		if p.Size <= 0 {
			return fmt.Errorf("pack %s: invalid size %d", p.ID.Short(), p.Size)
		}
		if err := validateBlobs(p.Blobs, p.Size); err != nil {
			return fmt.Errorf("pack %s: %w", p.ID.Short(), err)
		}
	}
	return nil
}

func validateBlobs(blobs []IndexBlob, limit int64) error {
	for _, b := range blobs {
		if int64(b.Offset)+int64(b.Length) > limit {
			return fmt.Errorf("blob %s: extends past the end of the pack", b.ID.Short())
		}
		if b.Raw > maxBlobSize || (b.Compression != "" && b.Compression != "zstd") {
			return fmt.Errorf("blob %s: invalid entry", b.ID.Short())
		}
		if b.Compression == "" && b.Raw != b.Length {
			return fmt.Errorf("blob %s: uncompressed but length %d != %d", b.ID.Short(), b.Length, b.Raw)
		}
	}
	return nil
}

// maxBlobSize bounds a single blob.
const maxBlobSize = 64 << 20

// IndexError reports an index object that could not be read.
type IndexError struct {
	Name string
	Err  error
}

func (e *IndexError) Error() string { return e.Err.Error() }
func (e *IndexError) Unwrap() error { return e.Err }

// LoadIndex reads every index object not yet loaded into the in-memory
// index. Objects that
// cannot be read are skipped and returned as []*IndexError (the rest are
// loaded); the error is for failures that stop the whole load.
func (r *Repository) LoadIndex(ctx context.Context) ([]*IndexError, error) {
	var names []string
	err := r.be.List(ctx, "index/", func(fi backend.Info) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list index: %w", err)
	}
	var mu sync.Mutex
	var bad []*IndexError
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, name := range names {
		if r.isLoaded(name) {
			continue
		}
		g.Go(func() error {
			var f indexFile
			err := r.readIndexFile(gctx, name, &f)
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				mu.Lock()
				bad = append(bad, &IndexError{Name: name, Err: err})
				mu.Unlock()
				return nil
			}
			for _, p := range f.Packs {
				r.idx.addPack(p)
			}
			r.markLoaded(name)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return bad, nil
}

func (r *Repository) readIndexFile(ctx context.Context, name string, f *indexFile) error {
	id, err := ParseID(strings.TrimPrefix(name, "index/"))
	if err != nil {
		return fmt.Errorf("%s: unexpected object name: %w", name, ErrCorrupt)
	}
	if err := r.loadMeta(ctx, name, id, f); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return fmt.Errorf("%s: %v: %w", name, err, ErrCorrupt)
	}
	return nil
}

// IndexObjects lists the packs each index object names: index name → packs.
// Unreadable index objects are reported in the error slice.
func (r *Repository) IndexObjects(ctx context.Context) (map[string][]IndexPack, []*IndexError, error) {
	var names []string
	err := r.be.List(ctx, "index/", func(fi backend.Info) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list index: %w", err)
	}
	out := make(map[string][]IndexPack)
	var bad []*IndexError
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, name := range names {
		g.Go(func() error {
			var f indexFile
			err := r.readIndexFile(gctx, name, &f)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				bad = append(bad, &IndexError{Name: name, Err: err})
				return nil
			}
			out[name] = f.Packs
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}

// saveIndex writes one index object for packs.
func (r *Repository) saveIndex(ctx context.Context, packs []IndexPack) (ID, error) {
	return r.saveMeta(ctx, "index", indexFile{Packs: packs})
}

// DropMissingPacks lists the packs in the backend (one listing per pack
// type) and removes from the in-memory index every blob whose pack is
// missing or has another size than recorded, so that a snapshot stores
// those blobs again instead of referencing lost data. It returns the
// names of the packs dropped.
func (r *Repository) DropMissingPacks(ctx context.Context) ([]string, error) {
	have := map[string]int64{}
	for _, prefix := range []string{"data/", "tree/"} {
		err := r.be.List(ctx, prefix, func(fi backend.Info) error {
			have[fi.Name] = fi.Size
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
	}
	r.idx.mu.Lock()
	defer r.idx.mu.Unlock()
	dropped := map[string]bool{}
	good := func(l Location) bool {
		name := ObjectName(l.Type, l.Pack)
		if size, ok := have[name]; !ok || size != l.PackSize {
			dropped[name] = true
			return false
		}
		return true
	}
	for id, alts := range r.idx.alt {
		alts = slices.DeleteFunc(alts, func(l Location) bool { return !good(l) })
		if len(alts) == 0 {
			delete(r.idx.alt, id)
		} else {
			r.idx.alt[id] = alts
		}
	}
	for id, l := range r.idx.m {
		if good(l) {
			continue
		}
		if alts := r.idx.alt[id]; len(alts) > 0 { // a copy survives
			r.idx.m[id] = alts[0]
			if len(alts) == 1 {
				delete(r.idx.alt, id)
			} else {
				r.idx.alt[id] = alts[1:]
			}
			continue
		}
		delete(r.idx.m, id)
	}
	var out []string
	for n := range dropped {
		out = append(out, n)
	}
	return out, nil
}
