// Package prune deletes from a repository what no snapshot references:
// packs whose blobs no snapshot uses, packs no index lists (left by runs
// that died), and the index objects a prune supersedes. It needs only the
// index key: trees are readable with it, and tree packs that are partly
// used are rewritten. Content packs that are partly used are kept unless
// the data identity is there and Options.Repack asks to rewrite them.
// With Options.Reseal it also rewrites every pack sealed to other
// recipients than the config names, so that a removed data recipient no
// longer opens any pack (reseal.go).
// Every copy of a used blob keeps its pack unless prune proved the copy
// bad (judgeCopies), so a writer that stores wrong bytes under real blob
// IDs cannot make prune delete the real packs.
//
// The order of the steps keeps every state in between valid (docs/FORMAT.md,
// "Prune"): new packs, then the new index, then the removal of the old index
// objects, then the deletion of packs. A prune that dies at any point leaves
// a repository that verifies; the next prune finishes the work.
package prune

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
)

// Options configure Run.
type Options struct {
	// Repack rewrites partly used content packs; it needs the data
	// identity (Repository.SetDataIdentities).
	Repack bool
	// Reseal rewrites every used pack, content or tree, that the index
	// does not record as sealed to the recipients the config names now
	// (chunkstore.Repository.SealedTo): packs sealed to a removed
	// recipient, or not to an added one, and packs with no record. It
	// needs the data identity, and it must open those content packs.
	Reseal bool
	// MaxUnused is the share (0–1) of unused bytes a partly used pack may
	// keep; a pack above it is rewritten (tree packs always; content
	// packs with Repack).
	MaxUnused float64
	DryRun    bool   // plan, write and delete nothing
	TempDir   string // for packs being written; "": os.TempDir()
	Workers   int    // trees read and objects deleted at once; 0: 8
	Logger    *slog.Logger
	Progress  *Progress // updated as the prune goes, for a progress line
	// Lock, when set, is checked before each step that removes
	// something: a lost lock stops the prune.
	Lock *chunkstore.Lock
	// Hook, when set, is called after each step that changes the
	// repository: "pack written", "index written", "index removed" (once
	// per object) and "pack deleted" (once per pack). Tests use it to
	// stop a prune at a chosen point.
	Hook func(event string)
}

func (o *Options) hook(event string) {
	if o.Hook != nil {
		o.Hook(event)
	}
}

// Progress counts what a running prune has done. Safe for concurrent use.
type Progress struct {
	phase   atomic.Pointer[string]
	Trees   atomic.Int64 // trees read
	Packs   atomic.Int64 // packs rewritten so far
	Deleted atomic.Int64 // objects deleted so far
}

// Phase returns what the prune is doing.
func (p *Progress) Phase() string {
	if s := p.phase.Load(); s != nil {
		return *s
	}
	return "starting"
}

func (p *Progress) set(s string) {
	if p != nil {
		p.phase.Store(&s)
	}
}

// Stats summarize a prune.
type Stats struct {
	Snapshots      int   // snapshots kept (all that exist)
	PacksBefore    int   // packs in the repository before
	PacksDeleted   int   // packs deleted (a dry run: to delete): unused, unreferenced or rewritten
	PacksRewritten int   // packs whose used blobs were copied: partly used, or resealed
	PacksWritten   int   // new packs holding those blobs
	PacksResealed  int   // of PacksRewritten, those sealed to other recipients than the config's (Reseal)
	BytesResealed  int64 // their stored bytes
	PacksPartly    int   // partly used packs kept as they are
	UnusedKept     int64 // unused bytes left in those packs
	Unreferenced   int   // packs no index listed (from runs that died)
	IndexRemoved   int   // index objects removed
	IndexWritten   int   // index objects written
	BytesBefore    int64 // stored bytes of packs and index objects before
	BytesAfter     int64 // and after
	// Resealed groups the resealed packs by type and by the recipients the
	// index records them as sealed to.
	Resealed []ResealGroup
}

// Freed returns the bytes the prune freed.
func (s *Stats) Freed() int64 { return s.BytesBefore - s.BytesAfter }

// ErrDamaged is matched by the error of a prune that stopped because the
// repository cannot be read completely: pruning then could delete data.
var ErrDamaged = errors.New("prune stopped before deleting anything")

type action uint8

const (
	keep action = iota
	keepPartly
	rewrite
	remove
)

type packPlan struct {
	pack   chunkstore.IndexPack
	action action
	used   []chunkstore.IndexBlob // for rewrite
	reseal bool                   // rewritten because it is sealed to other recipients
}

// Run prunes repo. The caller holds an exclusive lock (opts.Lock) unless
// nothing else can use the repository. Run loads the index itself.
func Run(ctx context.Context, repo *chunkstore.Repository, opts Options) (*Stats, error) {
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Repack && !repo.HasDataIdentity() {
		return nil, errors.New("repacking content packs needs the data identity (--identity)")
	}
	if opts.Reseal && !repo.HasDataIdentity() {
		return nil, errors.New("resealing content packs needs the data identity (--identity)")
	}
	st := &Stats{}
	prog := opts.Progress
	prog.set("reading the index")
	objs, bad, err := repo.LoadIndexObjects(ctx)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("index object %s cannot be read (%s): %w", bad[0].Name,
			strings.TrimPrefix(bad[0].Err.Error(), bad[0].Name+": "), ErrDamaged)
	}
	indexSizes, have, err := listObjects(ctx, repo.Backend())
	if err != nil {
		return nil, err
	}
	prog.set("reading the snapshots")
	snaps, badSnaps, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	if len(badSnaps) > 0 {
		return nil, fmt.Errorf("snapshot %s cannot be read (%s): %w", badSnaps[0].Name,
			strings.TrimPrefix(badSnaps[0].Err.Error(), badSnaps[0].Name+": "), ErrDamaged)
	}
	st.Snapshots = len(snaps)
	prog.set("reading the trees of the snapshots")
	used, err := usedBlobs(ctx, repo, snaps, opts.Workers, prog)
	if err != nil {
		return nil, err
	}
	prog.set("checking the copies of blobs stored more than once")
	skip, err := judgeCopies(ctx, repo, used, have, opts)
	if err != nil {
		return nil, err
	}
	plans, err := plan(repo, objs, have, used, skip, opts, st)
	if err != nil {
		return nil, err
	}
	if opts.Reseal {
		prog.set("checking that the identity opens the packs to reseal")
		if err := checkResealKeys(ctx, repo, plans, opts.Workers); err != nil {
			return nil, err
		}
	}
	for _, size := range indexSizes {
		st.BytesBefore += size
	}
	for _, size := range have {
		st.BytesBefore += size
	}
	st.PacksBefore = len(have)
	var unreferenced []string
	for name := range have {
		if _, ok := plans[name]; !ok {
			unreferenced = append(unreferenced, name)
		}
	}
	slices.Sort(unreferenced)
	st.Unreferenced = len(unreferenced)
	if opts.DryRun {
		st.PacksDeleted = len(unreferenced)
		for _, p := range plans {
			if p.action == rewrite || p.action == remove {
				st.PacksDeleted++
			}
		}
		estimateAfter(st, plans)
		for _, size := range indexSizes {
			st.BytesAfter += size // about: the new index lists fewer packs
		}
		return st, nil
	}

	// 1. New packs for the used blobs of the packs to rewrite.
	prog.set("rewriting packs")
	written, err := rewritePacks(ctx, repo, plans, &opts)
	if err != nil {
		return nil, err
	}
	st.PacksWritten = len(written)
	// 2. One index for everything that stays.
	if err := checkLock(opts); err != nil {
		return nil, err
	}
	prog.set("writing the index")
	var keepPacks []chunkstore.IndexPack
	var deletes []string
	for _, name := range sortedKeys(plans) {
		p := plans[name]
		switch p.action {
		case keep, keepPartly:
			keepPacks = append(keepPacks, p.pack)
			st.BytesAfter += p.pack.Size
		default:
			deletes = append(deletes, name)
		}
	}
	for _, p := range written {
		st.BytesAfter += p.Size
	}
	keepPacks = append(keepPacks, written...)
	ids, err := repo.SaveIndex(ctx, keepPacks)
	if err != nil {
		return nil, err
	}
	st.IndexWritten = len(ids)
	opts.hook("index written")
	fresh := map[string]bool{}
	for _, id := range ids {
		fresh[chunkstore.IndexName(id)] = true
	}
	// 3. The index objects the new one supersedes.
	if err := checkLock(opts); err != nil {
		return nil, err
	}
	prog.set("removing the old index")
	var oldIndex []string
	for name := range objs {
		if !fresh[name] {
			oldIndex = append(oldIndex, name)
		}
	}
	if err := removeAll(ctx, repo.Backend(), oldIndex, &opts, "index removed"); err != nil {
		return nil, err
	}
	st.IndexRemoved = len(oldIndex)
	_, after, err := listIndexSizes(ctx, repo.Backend())
	if err != nil {
		return nil, err
	}
	st.BytesAfter += after
	// 4. Packs nothing lists any more.
	if err := checkLock(opts); err != nil {
		return nil, err
	}
	prog.set("deleting packs")
	deletes = append(deletes, unreferenced...)
	if err := removeAll(ctx, repo.Backend(), deletes, &opts, "pack deleted"); err != nil {
		return nil, err
	}
	st.PacksDeleted = len(deletes)
	// The in-memory index is now what the new index objects say.
	newObjs := map[string][]chunkstore.IndexPack{}
	for i, id := range ids {
		newObjs[chunkstore.IndexName(id)] = keepPacks[i*2000 : min((i+1)*2000, len(keepPacks))]
	}
	repo.SetIndex(newObjs)
	prog.set("done")
	return st, nil
}

// plan decides what becomes of each pack the index lists, by name.
func plan(repo *chunkstore.Repository, objs map[string][]chunkstore.IndexPack, have map[string]int64,
	used map[chunkstore.ID]struct{}, skip map[copyKey]bool, opts Options, st *Stats) (map[string]*packPlan, error) {
	idx := repo.Index()
	plans := map[string]*packPlan{}
	current := map[chunkstore.BlobType][]string{
		chunkstore.DataBlob: repo.SealedTo(chunkstore.DataBlob),
		chunkstore.TreeBlob: repo.SealedTo(chunkstore.TreeBlob),
	}
	for _, packs := range objs {
		for _, p := range packs {
			name := chunkstore.ObjectName(p.Type, p.ID)
			if _, ok := plans[name]; ok {
				continue // listed by two index objects (a prune that died)
			}
			// what its entries record, nil where two disagree (so a hacked
			// writer's index object cannot keep an old pack from a reseal by
			// claiming it is sealed to the current recipients); the new index
			// says the same
			p.SealedTo = idx.SealedTo(p.ID)
			var usedBlobs []chunkstore.IndexBlob
			var usedBytes, total int64
			for _, b := range p.Blobs {
				total += int64(b.Length)
				// every copy of a used blob counts unless judgeCopies
				// dropped it (docs/FORMAT.md, "Which copies of a blob count")
				if _, ok := used[b.ID]; !ok || skip[copyKey{p.ID, b.ID}] {
					continue
				}
				usedBlobs = append(usedBlobs, b)
				usedBytes += int64(b.Length)
			}
			pp := &packPlan{pack: p}
			size, ok := have[name]
			unused := float64(total-usedBytes) / float64(max(total, 1))
			canRewrite := p.Type == chunkstore.TreeBlob || opts.Repack
			switch {
			case len(usedBlobs) == 0:
				pp.action = remove
			case !ok:
				return nil, fmt.Errorf("%s is listed in the index and used, but missing (run restore verify): %w", name, ErrDamaged)
			case size != p.Size:
				return nil, fmt.Errorf("%s has size %d, the index says %d (run restore verify): %w", name, size, p.Size, ErrDamaged)
			case opts.Reseal && !slices.Equal(p.SealedTo, current[p.Type]):
				pp.action, pp.used, pp.reseal = rewrite, usedBlobs, true
				st.PacksRewritten++
				st.PacksResealed++
				st.BytesResealed += p.Size
			case len(usedBlobs) == len(p.Blobs):
				pp.action = keep
			case canRewrite && unused > opts.MaxUnused:
				pp.action, pp.used = rewrite, usedBlobs
				st.PacksRewritten++
			default:
				pp.action = keepPartly
				st.PacksPartly++
				st.UnusedKept += total - usedBytes
			}
			plans[name] = pp
		}
	}
	st.Resealed = resealGroups(plans)
	// every used blob must be somewhere
	for id := range used {
		if !idx.Has(id) {
			return nil, fmt.Errorf("blob %s is used by a snapshot but in no index (run restore verify): %w", id.Short(), ErrDamaged)
		}
	}
	return plans, nil
}

// estimateAfter fills BytesAfter for a dry run: what stays, plus the used
// bytes of the packs to rewrite.
func estimateAfter(st *Stats, plans map[string]*packPlan) {
	for _, p := range plans {
		switch p.action {
		case keep, keepPartly:
			st.BytesAfter += p.pack.Size
		case rewrite:
			for _, b := range p.used {
				st.BytesAfter += int64(b.Length)
			}
		}
	}
}

// rewritePacks copies the used blobs of the packs to rewrite into new
// packs, checking each blob against its ID on the way.
func rewritePacks(ctx context.Context, repo *chunkstore.Repository, plans map[string]*packPlan, opts *Options) ([]chunkstore.IndexPack, error) {
	rp := repo.NewRepacker(opts.TempDir)
	defer rp.Close()
	h := repo.NewHasher()
	var buf, plain []byte
	for _, name := range sortedKeys(plans) {
		p := plans[name]
		if p.action != rewrite {
			continue
		}
		pack, b, err := repo.ReadPack(ctx, p.pack.Type, p.pack.ID, p.pack.Size, buf)
		buf = b
		if err != nil {
			return nil, fmt.Errorf("rewrite %s: %w", name, err)
		}
		for _, ib := range p.used {
			loc := chunkstore.Location{Pack: p.pack.ID, PackSize: p.pack.Size, Type: p.pack.Type, Offset: ib.Offset,
				Length: ib.Length, Raw: ib.Raw, Zstd: ib.Compression == "zstd"}
			if plain, err = pack.ReadBlob(plain[:0], ib.ID, loc, h); err != nil {
				return nil, fmt.Errorf("rewrite %s: %w", name, err)
			}
			if err := rp.Add(ctx, p.pack.Type, ib.ID, plain); err != nil {
				return nil, fmt.Errorf("rewrite %s: %w", name, err)
			}
		}
		if opts.Progress != nil {
			opts.Progress.Packs.Add(1)
		}
	}
	packs, err := rp.Finish(ctx)
	if err == nil && len(packs) > 0 {
		opts.hook("pack written")
	}
	return packs, err
}

func checkLock(opts Options) error {
	if opts.Lock == nil {
		return nil
	}
	if err := opts.Lock.Check(); err != nil {
		return fmt.Errorf("prune stopped: %w", err)
	}
	return nil
}

// usedBlobs walks the trees of snaps and returns the IDs of every tree and
// data blob they reference (see [chunkstore.Repository.UsedBlobs]); a tree
// that cannot be read is damage.
func usedBlobs(ctx context.Context, repo *chunkstore.Repository, snaps []*chunkstore.Snapshot, workers int, prog *Progress) (map[chunkstore.ID]struct{}, error) {
	var trees *atomic.Int64
	if prog != nil {
		trees = &prog.Trees
	}
	used, err := repo.UsedBlobs(ctx, snaps, workers, trees)
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("%v: %w", err, ErrDamaged)
	}
	return used, err
}

// listObjects returns the sizes of the index objects and of the packs.
func listObjects(ctx context.Context, be backend.Backend) (index, packs map[string]int64, err error) {
	index, _, err = listIndexSizes(ctx, be)
	if err != nil {
		return nil, nil, err
	}
	packs = map[string]int64{}
	for _, prefix := range []string{"data/", "tree/"} {
		err := be.List(ctx, prefix, func(fi backend.Info) error {
			packs[fi.Name] = fi.Size
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", prefix, err)
		}
	}
	return index, packs, nil
}

func listIndexSizes(ctx context.Context, be backend.Backend) (map[string]int64, int64, error) {
	out := map[string]int64{}
	var total int64
	err := be.List(ctx, "index/", func(fi backend.Info) error {
		out[fi.Name] = fi.Size
		total += fi.Size
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list index: %w", err)
	}
	return out, total, nil
}

// removeAll deletes objects, a few at once, calling the hook with event
// after each. A missing object is no error: a prune that died may have
// removed it already.
func removeAll(ctx context.Context, be backend.Backend, names []string, opts *Options, event string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Workers)
	var mu sync.Mutex
	for _, name := range names {
		g.Go(func() error {
			if err := be.Remove(gctx, name); err != nil && !errors.Is(err, backend.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", name, err)
			}
			if opts.Progress != nil {
				opts.Progress.Deleted.Add(1)
			}
			mu.Lock()
			opts.hook(event)
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
