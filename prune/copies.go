package prune

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
)

// copyKey names one copy of a blob: the pack that holds it and its ID.
type copyKey struct{ pack, blob chunkstore.ID }

// judgeCopies decides, for every used blob the index lists in more than
// one pack, which of its copies do not count as used: the rule of
// docs/FORMAT.md ("Which copies of a blob count"). A copy is usable when
// its pack is present with the size the index says and it is not proven
// bad. Prune proves a copy bad by reading it (CheckCopies): tree copies
// always (the index key opens tree packs), content copies only with the
// data identity. When a blob has a usable copy, every usable copy counts
// and the others (missing, of another size, proven bad) do not; when it has
// none, every copy that is there counts, so that prune deletes nothing of
// a damaged blob (the checks in plan then stop it, or keep the copies).
// A copy that cannot be proven bad is never dropped: without the data
// identity a hostile writer's content pack stays, and so does every real
// pack.
func judgeCopies(ctx context.Context, repo *chunkstore.Repository, used map[chunkstore.ID]struct{},
	have map[string]int64, opts Options) (map[copyKey]bool, error) {
	idx := repo.Index()
	type multi struct {
		id     chunkstore.ID
		copies []chunkstore.Location
	}
	var blobs []multi
	check := map[string][]chunkstore.IndexBlob{} // pack → copies to read
	packOf := map[string]chunkstore.Location{}
	canRead := func(t chunkstore.BlobType) bool { return t == chunkstore.TreeBlob || repo.HasDataIdentity() }
	for id := range used {
		first, others, ok := idx.LookupAll(id)
		if !ok || others == nil {
			continue
		}
		m := multi{id: id, copies: append([]chunkstore.Location{first}, others...)}
		blobs = append(blobs, m)
		for _, l := range m.copies {
			name := chunkstore.ObjectName(l.Type, l.Pack)
			if size, ok := have[name]; ok && size == l.PackSize && canRead(l.Type) {
				b := chunkstore.IndexBlob{ID: id, Offset: l.Offset, Length: l.Length, Raw: l.Raw}
				if l.Zstd {
					b.Compression = "zstd"
				}
				check[name] = append(check[name], b)
				packOf[name] = l
			}
		}
	}
	if len(blobs) == 0 {
		return nil, nil
	}
	bad, err := checkCopies(ctx, repo, check, packOf, opts)
	if err != nil {
		return nil, err
	}
	skip := map[copyKey]bool{}
	for _, m := range blobs {
		usable := 0
		for _, l := range m.copies {
			name := chunkstore.ObjectName(l.Type, l.Pack)
			if size, ok := have[name]; ok && size == l.PackSize && !bad[copyKey{l.Pack, m.id}] {
				usable++
			}
		}
		for _, l := range m.copies {
			name := chunkstore.ObjectName(l.Type, l.Pack)
			size, present := have[name]
			switch {
			case usable > 0 && (!present || size != l.PackSize || bad[copyKey{l.Pack, m.id}]):
				skip[copyKey{l.Pack, m.id}] = true
			case usable == 0 && !present:
				skip[copyKey{l.Pack, m.id}] = true
			case usable == 0 && bad[copyKey{l.Pack, m.id}]:
				opts.Logger.Warn("no copy of a used blob reads back as the blob; keeping them all",
					"blob", m.id.Short(), "pack", name)
			}
		}
		if usable == 0 && !anyPresent(m.copies, have) {
			return nil, fmt.Errorf("blob %s is used, but every pack holding it is missing (run restore verify): %w", m.id.Short(), ErrDamaged)
		}
	}
	return skip, nil
}

func anyPresent(copies []chunkstore.Location, have map[string]int64) bool {
	for _, l := range copies {
		if _, ok := have[chunkstore.ObjectName(l.Type, l.Pack)]; ok {
			return true
		}
	}
	return false
}

// checkCopies reads the packs of check (pack → copies to check) and
// returns the copies proven bad. A pack the keys do not open proves
// nothing; any other failure to read stops the prune.
func checkCopies(ctx context.Context, repo *chunkstore.Repository, check map[string][]chunkstore.IndexBlob,
	packOf map[string]chunkstore.Location, opts Options) (map[copyKey]bool, error) {
	var mu sync.Mutex
	bad := map[copyKey]bool{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(min(opts.Workers, 4)) // a whole pack in memory each
	for name, blobs := range check {
		l := packOf[name]
		g.Go(func() error {
			ids, err := repo.CheckCopies(gctx, l.Type, l.Pack, l.PackSize, blobs)
			if errors.Is(err, crypto.ErrNoKey) {
				return nil
			}
			if err != nil {
				return err
			}
			if len(ids) > 0 {
				opts.Logger.Warn("pack holds copies of blobs that are not those blobs; they do not count as used",
					"pack", name, "blobs", len(ids))
			}
			mu.Lock()
			for _, id := range ids {
				bad[copyKey{l.Pack, id}] = true
			}
			mu.Unlock()
			return nil
		})
	}
	return bad, g.Wait()
}
