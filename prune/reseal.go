package prune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
)

// Resealing: after `restore key remove`, packs written before stay sealed
// to the removed recipient. Options.Reseal rewrites them, like the packs a
// repack rewrites (each blob checked against its ID, new packs sealed to
// the config's recipients, the new index written before the old packs are
// deleted), so the removed identity opens none of them afterwards.
//
// Which packs: the age header does not name its recipients, so prune goes
// by what the index records (chunkstore.IndexPack.SealedTo). A pack whose
// entries record nothing (written before syncd recorded it), record other
// recipients than the config names, or disagree, is resealed.

// ResealGroup counts the packs of one type, recorded as sealed to one set of
// recipients, that a reseal rewrites.
type ResealGroup struct {
	Type     chunkstore.BlobType `json:"type"`
	SealedTo []string            `json:"sealed_to"` // fingerprints as the index records them; nil: no record
	Packs    int                 `json:"packs"`
	Bytes    int64               `json:"bytes"` // stored bytes
}

// resealGroups counts the packs plans reseal by type and recorded
// recipients, in order of type, then recipients.
func resealGroups(plans map[string]*packPlan) []ResealGroup {
	var out []ResealGroup
	for _, p := range plans {
		if !p.reseal {
			continue
		}
		i := slices.IndexFunc(out, func(g ResealGroup) bool {
			return g.Type == p.pack.Type && slices.Equal(g.SealedTo, p.pack.SealedTo)
		})
		if i < 0 {
			out = append(out, ResealGroup{Type: p.pack.Type, SealedTo: p.pack.SealedTo})
			i = len(out) - 1
		}
		out[i].Packs++
		out[i].Bytes += p.pack.Size
	}
	slices.SortFunc(out, func(a, b ResealGroup) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), slices.Compare(a.SealedTo, b.SealedTo))
	})
	return out
}

// checkResealKeys checks, before anything is written, that the identities
// open every pack to reseal (its age header): a content pack sealed only to
// keys not given cannot be read, and the prune would stop after writing
// new packs for nothing. It reads up to 64 KiB of each such pack, workers
// at once.
func checkResealKeys(ctx context.Context, repo *chunkstore.Repository, plans map[string]*packPlan, workers int) error {
	var mu sync.Mutex
	var closed []string
	var total int
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, name := range sortedKeys(plans) {
		p := plans[name]
		if !p.reseal {
			continue
		}
		total++
		g.Go(func() error {
			err := repo.CheckPackKey(gctx, p.pack.Type, p.pack.ID, p.pack.Size)
			if errors.Is(err, crypto.ErrNoKey) {
				mu.Lock()
				closed = append(closed, name)
				mu.Unlock()
				return nil
			}
			if err != nil {
				return fmt.Errorf("reseal: %w", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(closed) == 0 {
		return nil
	}
	slices.Sort(closed)
	return fmt.Errorf("reseal: the data identity does not open %d of the %d packs to reseal (%s first), so they cannot be resealed; "+
		"give an identity file that holds the keys they were sealed to as well (e.g. cat old.key new.key > both.key): %w; nothing was written",
		len(closed), total, closed[0], crypto.ErrNoKey)
}
