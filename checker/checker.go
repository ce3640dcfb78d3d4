// Package checker verifies a repository: that every index, snapshot and
// tree can be read, that every blob a snapshot references is in the index
// and its pack is present with the right size, and (with the data
// identity) that every blob of every pack decrypts and hashes to its ID.
// Problems name the object and the files they affect.
package checker

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
)

// Options configures a check.
type Options struct {
	ReadData bool // download and verify every pack (needs the data identity)
	Workers  int  // packs read at once; 0: 4
	Logger   *slog.Logger
	// PacksRead, if set, counts the packs read so far.
	PacksRead *atomic.Int64
}

// Problem is one thing wrong with the repository.
type Problem struct {
	Object string   // the object at fault, e.g. "data/3fa1…" or "snapshots/…"
	Err    string   // what is wrong with it
	Files  []string // affected files as "<snapshot short ID>:/path"
}

func (p Problem) String() string {
	s := p.Object + ": " + p.Err
	if n := len(p.Files); n > 0 {
		shown := p.Files[:min(n, 5)]
		s += fmt.Sprintf("; affects %d file(s): %s", n, strings.Join(shown, ", "))
		if n > 5 {
			s += ", …"
		}
	}
	return s
}

// Report is the outcome of a check.
type Report struct {
	Snapshots  int
	Packs      int
	PacksRead  int
	Blobs      int
	Unused     int // packs no index lists (left by interrupted runs)
	Problems   []Problem
	affected   map[string]map[string]bool // object → files
	badObjects map[string]string          // object → what is wrong
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Check verifies repo. Problems go into the report; the error is for a
// check that could not run (the backend unreachable, say).
func Check(ctx context.Context, repo *chunkstore.Repository, opts Options) (*Report, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.PacksRead == nil {
		opts.PacksRead = new(atomic.Int64)
	}
	rep := &Report{affected: map[string]map[string]bool{}, badObjects: map[string]string{}}
	badIdx, err := repo.ReloadIndex(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range badIdx {
		rep.badObjects[e.Name] = strings.TrimPrefix(e.Err.Error(), e.Name+": ")
	}
	rep.Blobs = repo.Index().Len()

	// Which packs does the index name, and which exist?
	want := map[string]int64{}
	repo.Index().Each(func(_ chunkstore.ID, l chunkstore.Location) {
		want[chunkstore.ObjectName(l.Type, l.Pack)] = l.PackSize
	})
	have := map[string]int64{}
	for _, prefix := range []string{"data/", "tree/"} {
		err := repo.Backend().List(ctx, prefix, func(fi backend.Info) error {
			have[fi.Name] = fi.Size
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	rep.Packs = len(want)
	for name, size := range want {
		got, ok := have[name]
		switch {
		case !ok:
			rep.badObjects[name] = "missing"
		case got != size:
			rep.badObjects[name] = fmt.Sprintf("size %d, the index says %d (truncated or replaced)", got, size)
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			rep.Unused++
		}
	}
	if opts.ReadData {
		if err := readPacks(ctx, repo, want, rep, opts); err != nil {
			return nil, err
		}
	}

	snaps, badSnaps, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range badSnaps {
		rep.badObjects[e.Name] = strings.TrimPrefix(e.Err.Error(), e.Name+": ")
	}
	rep.Snapshots = len(snaps)
	w := &walker{ctx: ctx, repo: repo, rep: rep}
	for _, sn := range snaps {
		if err := w.walk(sn, sn.Tree, "/"); err != nil {
			return nil, err
		}
	}
	rep.collect()
	return rep, nil
}

// collect turns bad objects and their affected files into problems.
func (r *Report) collect() {
	names := make([]string, 0, len(r.badObjects))
	for n := range r.badObjects {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var files []string
		for f := range r.affected[n] {
			files = append(files, f)
		}
		sort.Strings(files)
		r.Problems = append(r.Problems, Problem{Object: n, Err: r.badObjects[n], Files: files})
	}
}

func (r *Report) affect(object, file string) {
	m := r.affected[object]
	if m == nil {
		m = map[string]bool{}
		r.affected[object] = m
	}
	m[file] = true
}

type walker struct {
	ctx  context.Context
	repo *chunkstore.Repository
	rep  *Report
}

// walk checks the tree id at dir of snapshot sn.
func (w *walker) walk(sn *chunkstore.Snapshot, id chunkstore.ID, dir string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	label := sn.ID().Short() + ":" + dir
	loc, ok := w.repo.Index().Lookup(id)
	if !ok {
		w.rep.badObjects["tree blob "+id.Short()] = "not in any index (index object missing or unreadable?)"
		w.rep.affect("tree blob "+id.Short(), label)
		return nil
	}
	pack := chunkstore.ObjectName(chunkstore.TreeBlob, loc.Pack)
	if _, bad := w.rep.badObjects[pack]; bad {
		w.rep.affect(pack, label)
		return nil
	}
	tree, err := w.repo.LoadTree(w.ctx, id)
	if err != nil {
		if w.ctx.Err() != nil {
			return w.ctx.Err()
		}
		w.rep.badObjects[pack] = err.Error()
		w.rep.affect(pack, label)
		return nil
	}
	for _, n := range tree.Nodes {
		p := path.Join(dir, n.FileName())
		switch n.Type {
		case chunkstore.NodeDir:
			if err := w.walk(sn, *n.Subtree, p); err != nil {
				return err
			}
		case chunkstore.NodeFile:
			for _, b := range n.Content {
				l, ok := w.repo.Index().Lookup(b)
				if !ok {
					obj := "data blob " + b.Short()
					w.rep.badObjects[obj] = "not in any index (index object missing or unreadable?)"
					w.rep.affect(obj, sn.ID().Short()+":"+p)
					continue
				}
				obj := chunkstore.ObjectName(chunkstore.DataBlob, l.Pack)
				if _, bad := w.rep.badObjects[obj]; bad {
					w.rep.affect(obj, sn.ID().Short()+":"+p)
				}
			}
		}
	}
	return nil
}

// readPacks downloads and verifies every pack the index names.
func readPacks(ctx context.Context, repo *chunkstore.Repository, want map[string]int64, rep *Report, opts Options) error {
	if err := repo.CheckDataIdentity(ctx); err != nil {
		return err
	}
	byPack := map[string][]chunkstore.ID{}
	repo.Index().Each(func(id chunkstore.ID, l chunkstore.Location) {
		n := chunkstore.ObjectName(l.Type, l.Pack)
		byPack[n] = append(byPack[n], id)
	})
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Workers)
	for name, size := range want {
		if _, bad := rep.badObjects[name]; bad {
			continue
		}
		g.Go(func() error {
			err := readPack(gctx, repo, name, size, byPack[name])
			opts.PacksRead.Add(1)
			if gctx.Err() != nil {
				return gctx.Err()
			}
			mu.Lock()
			defer mu.Unlock()
			rep.PacksRead++
			if err != nil {
				rep.badObjects[name] = strings.TrimPrefix(err.Error(), name+": ")
			}
			return nil
		})
	}
	return g.Wait()
}

func readPack(ctx context.Context, repo *chunkstore.Repository, name string, size int64, blobs []chunkstore.ID) error {
	t, id, err := parsePackName(name)
	if err != nil {
		return err
	}
	pack, err := repo.OpenPack(ctx, t, id, size, true)
	if err != nil {
		return err
	}
	hdr, err := pack.Header()
	if err != nil {
		return err
	}
	inHeader := map[chunkstore.ID]chunkstore.IndexBlob{}
	for _, b := range hdr {
		inHeader[b.ID] = b
	}
	h := repo.NewHasher()
	var buf []byte
	for _, b := range blobs {
		loc, _ := repo.Index().Lookup(b)
		hb, ok := inHeader[b]
		if !ok || hb.Offset != loc.Offset || hb.Length != loc.Length {
			return fmt.Errorf("blob %s: index and pack header disagree", b.Short())
		}
		if buf, err = pack.ReadBlob(buf[:0], b, loc, h); err != nil {
			return err
		}
	}
	return nil
}

func parsePackName(name string) (chunkstore.BlobType, chunkstore.ID, error) {
	dir, file := path.Split(name)
	var t chunkstore.BlobType
	if err := t.UnmarshalText([]byte(strings.TrimSuffix(dir, "/"))); err != nil {
		return 0, chunkstore.ID{}, err
	}
	id, err := chunkstore.ParseID(file)
	return t, id, err
}
