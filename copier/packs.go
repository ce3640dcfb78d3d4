package copier

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
)

// packsToCopy returns the packs of the source that hold a copy of a blob
// of needed that the target lacks: a blob the target's index lists, in a
// pack the target holds, is not sent again. Every copy of a missing blob
// goes (most blobs have one), so that the target has whatever the source
// has to fall back on when one copy turns out bad.
func (c *copier) packsToCopy(needed blobSet, res *Result) map[chunkstore.ID]chunkstore.Location {
	packs := map[chunkstore.ID]chunkstore.Location{}
	have := c.dst.Index()
	idx := c.src.Index()
	var copies []chunkstore.Location
	res.BlobsNeeded = len(needed)
	for id := range needed {
		if have.Has(id) {
			res.BlobsPresent++
			continue
		}
		copies = idx.Copies(copies[:0], id)
		for _, l := range copies {
			packs[l.Pack] = l
		}
	}
	return packs
}

// copyPacks sends the packs to the target, Workers at a time, each
// checked against its name (the SHA-256 of its bytes) before it is
// uploaded. A pack the target already holds at the indexed size (an
// interrupted copy sent it) is not sent again.
func (c *copier) copyPacks(ctx context.Context, packs map[chunkstore.ID]chunkstore.Location, res *Result) error {
	present := map[string]int64{}
	for _, prefix := range []string{"data/", "tree/"} {
		err := c.dst.Backend().List(ctx, prefix, func(fi backend.Info) error {
			present[fi.Name] = fi.Size
			return nil
		})
		if err != nil {
			return fmt.Errorf("target: list %s: %w", prefix, err)
		}
	}
	var send []chunkstore.Location
	for _, l := range sortedPacks(packs) {
		if size, ok := present[chunkstore.ObjectName(l.Type, l.Pack)]; ok && size == l.PackSize {
			res.Resumed++
			continue
		}
		send = append(send, l)
	}
	c.opts.Progress.PacksToCopy.Store(int64(len(send)))
	var mu sync.Mutex
	pool := sync.Pool{New: func() any { return new([]byte) }}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Workers)
	for _, l := range send {
		g.Go(func() error {
			bp := pool.Get().(*[]byte)
			defer pool.Put(bp)
			if err := c.copyPack(gctx, l, bp); err != nil {
				return err
			}
			c.opts.Progress.Packs.Add(1)
			c.opts.Progress.Bytes.Add(l.PackSize)
			mu.Lock()
			res.Packs++
			res.Bytes += l.PackSize
			mu.Unlock()
			c.hook("pack copied")
			return nil
		})
	}
	return g.Wait()
}

// copyPack reads the pack at l from the source into *buf (grown as
// needed), checks it, and saves it in the target.
func (c *copier) copyPack(ctx context.Context, l chunkstore.Location, buf *[]byte) error {
	name := chunkstore.ObjectName(l.Type, l.Pack)
	if cap(*buf) < int(l.PackSize) {
		*buf = make([]byte, l.PackSize)
	}
	data := (*buf)[:l.PackSize]
	rd, err := c.src.Backend().Open(ctx, name, 0, 0)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	_, err = io.ReadFull(rd, data)
	if err == nil {
		// the object must end here: a longer one is not the pack indexed
		var one [1]byte
		if n, _ := rd.Read(one[:]); n > 0 {
			err = errors.New("longer than indexed")
		}
	}
	rd.Close()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("source: read %s (%d bytes indexed): %w", name, l.PackSize, err)
	}
	if chunkstore.Hash(data) != l.Pack {
		return fmt.Errorf("source: %s: content does not match its name (restore verify --read-data names what it affects): %w", name, chunkstore.ErrCorrupt)
	}
	if err := backend.SaveBytes(ctx, c.dst.Backend(), name, data); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	return nil
}

// indexEntries returns the index entries of packs, as the source's index
// lists them, for the target's new index object. The record of the
// recipients each pack is sealed to comes along: a copy target has the
// source's recipients (copy refuses it otherwise).
func (c *copier) indexEntries(packs map[chunkstore.ID]chunkstore.Location) []chunkstore.IndexPack {
	byPack := map[chunkstore.ID]*chunkstore.IndexPack{}
	idx := c.src.Index()
	for id, l := range packs {
		byPack[id] = &chunkstore.IndexPack{ID: id, Type: l.Type, Size: l.PackSize, SealedTo: idx.SealedTo(id)}
	}
	c.src.Index().EachCopy(func(id chunkstore.ID, l chunkstore.Location) {
		p, ok := byPack[l.Pack]
		if !ok {
			return
		}
		b := chunkstore.IndexBlob{ID: id, Offset: l.Offset, Length: l.Length, Raw: l.Raw}
		if l.Zstd {
			b.Compression = "zstd"
		}
		p.Blobs = append(p.Blobs, b)
	})
	out := make([]chunkstore.IndexPack, 0, len(byPack))
	for _, l := range sortedPacks(packs) {
		p := byPack[l.Pack]
		slices.SortFunc(p.Blobs, func(a, b chunkstore.IndexBlob) int { return cmp.Compare(a.Offset, b.Offset) })
		out = append(out, *p)
	}
	return out
}
