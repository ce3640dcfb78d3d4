package copier

import (
	"context"
	"fmt"

	"github.com/syncd/syncd/chunkstore"
)

// blobSet is a set of blob IDs.
type blobSet map[chunkstore.ID]struct{}

// neededBlobs returns every blob (trees and contents) the snapshots of
// todo reference, and the snapshots of todo whose blobs the source can
// provide: each of their trees reads back, and each of their blobs is in
// the source's index. The others go to res.Failed. Walking them all at
// once is the usual case; only when that fails is each snapshot walked
// on its own, to find which ones cannot be copied.
func (c *copier) neededBlobs(ctx context.Context, todo []*chunkstore.Snapshot, res *Result) (blobSet, []*chunkstore.Snapshot, error) {
	needed, err := c.walk(ctx, todo)
	if err == nil || ctx.Err() != nil {
		return needed, todo, ctx.Err()
	}
	needed = blobSet{}
	var good []*chunkstore.Snapshot
	for _, sn := range todo {
		one, err := c.walk(ctx, []*chunkstore.Snapshot{sn})
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if err != nil {
			c.opts.Logger.Warn("snapshot not copied: the source cannot provide all of it", "snapshot", sn.ID().Short(), "err", err)
			res.Failed = append(res.Failed, Failure{Snapshot: sn.ID().String(), Error: err.Error()})
			continue
		}
		for id := range one {
			needed[id] = struct{}{}
		}
		good = append(good, sn)
	}
	return needed, good, nil
}

// walk reads the trees of snaps (each tree once, in parallel) and returns
// the IDs of every tree and content blob they reference. It fails on a
// tree that cannot be read and on a blob the source's index does not
// list.
func (c *copier) walk(ctx context.Context, snaps []*chunkstore.Snapshot) (blobSet, error) {
	used, err := c.src.UsedBlobs(ctx, snaps, c.opts.Workers, &c.opts.Progress.Trees)
	if err != nil {
		return nil, err
	}
	idx := c.src.Index()
	for id := range used {
		if !idx.Has(id) {
			return nil, fmt.Errorf("blob %s is in no index object of the source", id.Short())
		}
	}
	return used, nil
}
