package chunkstore

import (
	"context"
	"fmt"
	"os"

	"github.com/syncd/syncd/chunkstore/backend"
)

// What prune needs of the repository's internals: writing an index object
// for a chosen set of packs, copying blobs into new packs, and reloading
// the index after a prune.

// Add records the blobs of pack p in the index.
func (x *Index) Add(p IndexPack) { x.addPack(p) }

// reset empties the index.
func (x *Index) reset() {
	x.mu.Lock()
	defer x.mu.Unlock()
	clear(x.m)
	clear(x.alt)
	clear(x.sealed)
}

// SaveIndex writes index objects (one per 2,000 packs) listing packs, and
// returns their IDs.
func (r *Repository) SaveIndex(ctx context.Context, packs []IndexPack) ([]ID, error) {
	var ids []ID
	for i := 0; i < len(packs); i += 2000 {
		id, err := r.saveIndex(ctx, packs[i:min(i+2000, len(packs))])
		if err != nil {
			return ids, fmt.Errorf("save index: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// ReloadIndex brings the in-memory index up to date with the repository:
// when index objects it loaded are gone (a prune replaced them), it empties
// the index and loads it again, so that blobs of deleted packs are no
// longer taken as stored; otherwise it loads the new objects only. A
// snapshot calls it once it holds its lock.
func (r *Repository) ReloadIndex(ctx context.Context) ([]*IndexError, error) {
	present := map[string]bool{}
	err := r.be.List(ctx, "index/", func(fi backend.Info) error {
		present[fi.Name] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list index: %w", err)
	}
	r.loadedMu.Lock()
	gone := false
	for name := range r.loaded {
		if !present[name] {
			gone = true
			break
		}
	}
	r.loadedMu.Unlock()
	if gone {
		r.resetIndex()
	}
	return r.LoadIndex(ctx)
}

// resetIndex forgets everything loaded.
func (r *Repository) resetIndex() {
	r.idx.reset()
	r.loadedMu.Lock()
	clear(r.loaded)
	r.loadedMu.Unlock()
	r.trees.mu.Lock()
	clear(r.trees.packs)
	r.trees.used = 0
	r.trees.mu.Unlock()
}

func (r *Repository) isLoaded(name string) bool {
	r.loadedMu.Lock()
	defer r.loadedMu.Unlock()
	return r.loaded[name]
}

func (r *Repository) markLoaded(name string) {
	r.loadedMu.Lock()
	defer r.loadedMu.Unlock()
	if r.loaded == nil {
		r.loaded = map[string]bool{}
	}
	r.loaded[name] = true
}

// Repacker writes blobs into new packs, for prune: Add compresses and packs
// each blob, and uploads a pack when it is full; Finish uploads the rest.
// A blob added twice (two packs being rewritten hold a copy each) is
// written once. It writes no index. A Repacker is not safe for concurrent
// use.
type Repacker struct {
	r     *Repository
	dir   string
	open  map[BlobType]*packWriter
	zbuf  []byte
	done  []IndexPack
	added map[ID]bool
}

// NewRepacker returns a Repacker whose packs wait for their upload in
// temporary files in dir ("": os.TempDir()).
func (r *Repository) NewRepacker(dir string) *Repacker {
	if dir == "" {
		dir = os.TempDir()
	}
	return &Repacker{r: r, dir: dir, open: map[BlobType]*packWriter{}, added: map[ID]bool{}}
}

// Add stores blob id of type t with the given plaintext in the current
// pack of that type. The caller has checked the plaintext against id.
func (p *Repacker) Add(ctx context.Context, t BlobType, id ID, plain []byte) error {
	if p.added[id] {
		return nil
	}
	p.added[id] = true
	pw := p.open[t]
	if pw != nil && pw.size()+int64(len(plain)) > int64(p.r.cfg.PackSize) {
		if err := p.flush(ctx, t); err != nil {
			return err
		}
		pw = nil
	}
	if pw == nil {
		var err error
		if pw, err = p.r.newPackWriter(t, p.dir); err != nil {
			return err
		}
		p.open[t] = pw
	}
	p.zbuf = p.r.compress(p.zbuf[:0], plain)
	stored, z := plain, false
	if p.zbuf != nil {
		stored, z = p.zbuf, true
	}
	return pw.add(id, stored, len(plain), z)
}

// flush finishes and uploads the open pack of type t.
func (p *Repacker) flush(ctx context.Context, t BlobType) error {
	pw := p.open[t]
	delete(p.open, t)
	defer pw.file.close()
	id, err := pw.finish()
	if err != nil {
		return fmt.Errorf("finish pack: %w", err)
	}
	if err := p.r.be.Save(ctx, ObjectName(t, id), pw.file, pw.file.size); err != nil {
		return fmt.Errorf("upload pack: %w", err)
	}
	p.done = append(p.done, IndexPack{ID: id, Type: t, Size: pw.file.size, Blobs: pw.blobs, SealedTo: pw.sealedTo})
	return nil
}

// Finish uploads the open packs and returns every pack written.
func (p *Repacker) Finish(ctx context.Context) ([]IndexPack, error) {
	for _, t := range []BlobType{DataBlob, TreeBlob} {
		if p.open[t] != nil {
			if err := p.flush(ctx, t); err != nil {
				return nil, err
			}
		}
	}
	return p.done, nil
}

// Close drops the packs not yet uploaded.
func (p *Repacker) Close() {
	for t, pw := range p.open {
		pw.file.close()
		delete(p.open, t)
	}
}

// LoadIndexObjects empties the in-memory index and loads every index
// object into it, like LoadIndex, and returns what each object lists:
// index name → packs. Unreadable objects are returned apart (and not
// loaded).
func (r *Repository) LoadIndexObjects(ctx context.Context) (map[string][]IndexPack, []*IndexError, error) {
	objs, bad, err := r.IndexObjects(ctx)
	if err != nil {
		return nil, nil, err
	}
	r.SetIndex(objs)
	return objs, bad, nil
}

// SetIndex replaces the in-memory index with the packs of objs (index
// name → packs), as if those objects were all the repository has: for a
// prune, once it has replaced the index objects.
func (r *Repository) SetIndex(objs map[string][]IndexPack) {
	r.resetIndex()
	for name, packs := range objs {
		for _, p := range packs {
			r.idx.addPack(p)
		}
		r.markLoaded(name)
	}
}
