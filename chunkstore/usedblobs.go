package chunkstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// UsedBlobs walks the trees of snaps, each tree once and workers trees at
// a time, and returns the IDs of every tree and content blob they
// reference. A tree that cannot be read ends the walk with an error that
// names the snapshot it was reached from (ctx's error when ctx ended).
// trees, if not nil, counts the trees read. Prune uses it for what to
// keep, copy for what to send.
func (r *Repository) UsedBlobs(ctx context.Context, snaps []*Snapshot, workers int, trees *atomic.Int64) (map[ID]struct{}, error) {
	var mu sync.Mutex
	used := map[ID]struct{}{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	var visit func(id ID, where string) error
	visit = func(id ID, where string) error {
		mu.Lock()
		if _, ok := used[id]; ok {
			mu.Unlock()
			return nil
		}
		used[id] = struct{}{}
		mu.Unlock()
		fn := func() error {
			subs, content, err := r.TreeRefs(gctx, id)
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				return fmt.Errorf("%s: %w", where, err)
			}
			if trees != nil {
				trees.Add(1)
			}
			mu.Lock()
			for _, b := range content {
				used[b] = struct{}{}
			}
			mu.Unlock()
			for _, s := range subs {
				if err := visit(s, where); err != nil {
					return err
				}
			}
			return nil
		}
		if !g.TryGo(fn) {
			return fn()
		}
		return nil
	}
	for _, sn := range snaps {
		if err := visit(sn.Tree, "snapshot "+sn.ID().Short()); err != nil {
			g.Wait()
			return nil, err
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return used, nil
}
