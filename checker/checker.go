// Package checker verifies a repository: that every index, snapshot and
// tree can be read, that every blob a snapshot references is in the index
// and its pack is present with the right size, and (with the data
// identity) that every blob of every pack decrypts and hashes to its ID.
// Problems name the object and the files they affect.
package checker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path"
	"slices"
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
	// Select, if set, limits the walk to the snapshots it returns true
	// for: only their trees and blobs are checked and counted. The index
	// and the packs are checked in full either way.
	Select func(*chunkstore.Snapshot) bool
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
	} else if strings.HasPrefix(p.Object, "data/") || strings.HasPrefix(p.Object, "tree/") {
		s += "; no snapshot needs it (each blob it held has another copy, or is unused): syncd prune drops it from the index"
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
	// pack → its blobs that do not read back as themselves; unlike a
	// pack in badObjects for itself, the pack's other blobs are good
	badBlobs map[string]map[chunkstore.ID]bool
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
	rep := &Report{affected: map[string]map[string]bool{}, badObjects: map[string]string{},
		badBlobs: map[string]map[chunkstore.ID]bool{}}
	// The snapshots first, then the index (see SnapshotsAndIndex): a
	// snapshot saved while the check began is not reported as in no index.
	snaps, badSnaps, badIdx, err := repo.SnapshotsAndIndex(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range badSnaps {
		rep.badObjects[e.Name] = strings.TrimPrefix(e.Err.Error(), e.Name+": ")
	}
	for _, e := range badIdx {
		rep.badObjects[e.Name] = strings.TrimPrefix(e.Err.Error(), e.Name+": ")
	}
	rep.Blobs = repo.Index().Len()

	// Which packs does the index name (for any copy of a blob), and which
	// exist?
	want := map[string]int64{}
	repo.Index().EachCopy(func(_ chunkstore.ID, l chunkstore.Location) {
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

	w := &walker{ctx: ctx, repo: repo, rep: rep}
	for _, sn := range snaps {
		if opts.Select != nil && !opts.Select(sn) {
			continue
		}
		rep.Snapshots++
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
	ctx    context.Context
	repo   *chunkstore.Repository
	rep    *Report
	copies []chunkstore.Location
}

// walk checks the tree id at dir of snapshot sn.
func (w *walker) walk(sn *chunkstore.Snapshot, id chunkstore.ID, dir string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	label := sn.ID().Short() + ":" + dir
	pack, ok := w.usable(chunkstore.TreeBlob, id, label)
	if !ok {
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
				w.usable(chunkstore.DataBlob, b, sn.ID().Short()+":"+p)
			}
		}
	}
	return nil
}

// usable tells whether blob id of type t has a copy that is not known to
// be bad (in a pack found bad, or a blob of it that does not read back as
// itself), and returns the pack of the first such copy: restore and
// verify fall back to it. A blob without one affects file, through every
// pack that holds a copy of it.
func (w *walker) usable(t chunkstore.BlobType, id chunkstore.ID, file string) (string, bool) {
	w.copies = w.repo.Index().Copies(w.copies[:0], id)
	if len(w.copies) == 0 {
		obj := t.String() + " blob " + id.Short()
		w.rep.badObjects[obj] = "not in any index (index object missing or unreadable?)"
		w.rep.affect(obj, file)
		return "", false
	}
	for _, l := range w.copies {
		pack := chunkstore.ObjectName(l.Type, l.Pack)
		if _, bad := w.rep.badObjects[pack]; l.Type == t && (!bad || w.rep.badBlobs[pack] != nil) && !w.rep.badBlobs[pack][id] {
			return pack, true
		}
	}
	named := false
	for _, l := range w.copies {
		pack := chunkstore.ObjectName(l.Type, l.Pack)
		if _, bad := w.rep.badObjects[pack]; bad && l.Type == t {
			w.rep.affect(pack, file)
			named = true
		}
	}
	if !named {
		obj := t.String() + " blob " + id.Short()
		w.rep.badObjects[obj] = "the index lists it only as a blob of another type"
		w.rep.affect(obj, file)
	}
	return "", false
}

// readPacks downloads and verifies every pack the index names.
func readPacks(ctx context.Context, repo *chunkstore.Repository, want map[string]int64, rep *Report, opts Options) error {
	if err := repo.CheckDataIdentity(ctx); err != nil {
		return err
	}
	byPack := map[string][]blobCopy{}
	repo.Index().EachCopy(func(id chunkstore.ID, l chunkstore.Location) {
		n := chunkstore.ObjectName(l.Type, l.Pack)
		byPack[n] = append(byPack[n], blobCopy{id, l})
	})
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Workers)
	var toRead []string // chosen before the workers write rep.badObjects
	for name := range want {
		if _, bad := rep.badObjects[name]; !bad {
			toRead = append(toRead, name)
		}
	}
	for _, name := range toRead {
		size := want[name]
		g.Go(func() error {
			bad, err := readPack(gctx, repo, name, size, byPack[name])
			opts.PacksRead.Add(1)
			if gctx.Err() != nil {
				return gctx.Err()
			}
			mu.Lock()
			defer mu.Unlock()
			rep.PacksRead++
			switch {
			case err != nil:
				rep.badObjects[name] = strings.TrimPrefix(err.Error(), name+": ")
			case len(bad) > 0:
				rep.badObjects[name] = badBlobsMessage(name, bad)
				rep.badBlobs[name] = map[chunkstore.ID]bool{}
				for _, b := range bad {
					rep.badBlobs[name][b.id] = true
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// blobCopy is one copy of a blob: its ID and where it is.
type blobCopy struct {
	id  chunkstore.ID
	loc chunkstore.Location
}

// badBlob is a blob of a pack that is not what the index says.
type badBlob struct {
	id  chunkstore.ID
	err error
}

// readPack reads pack name and checks each of its blobs the index lists.
// The error is for a pack that cannot be read at all; bad lists the blobs
// that are not what the index says (a copy a hostile writer made, say),
// sorted by ID.
func readPack(ctx context.Context, repo *chunkstore.Repository, name string, size int64, blobs []blobCopy) (bad []badBlob, err error) {
	t, id, err := parsePackName(name)
	if err != nil {
		return nil, err
	}
	pack, err := repo.OpenPack(ctx, t, id, size, true)
	if err != nil {
		return nil, err
	}
	hdr, err := pack.Header()
	if err != nil {
		return nil, err
	}
	// a pack may hold a blob twice (two files of one writer cut the same
	// chunk at once): each copy the index lists must be one of them
	type span struct{ off, n int64 }
	inHeader := map[chunkstore.ID][]span{}
	for _, b := range hdr {
		inHeader[b.ID] = append(inHeader[b.ID], span{int64(b.Offset), int64(b.Length)})
	}
	h := repo.NewHasher()
	var buf []byte
	for _, b := range blobs {
		if !slices.Contains(inHeader[b.id], span{int64(b.loc.Offset), int64(b.loc.Length)}) {
			bad = append(bad, badBlob{b.id, fmt.Errorf("blob %s: index and pack header disagree", b.id.Short())})
			continue
		}
		if buf, err = pack.ReadBlob(buf[:0], b.id, b.loc, h); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			bad = append(bad, badBlob{b.id, err})
		}
	}
	sort.Slice(bad, func(i, j int) bool { return bytes.Compare(bad[i].id[:], bad[j].id[:]) < 0 })
	return bad, nil
}

// badBlobsMessage says which blobs of pack name are bad: the first error,
// and the IDs of a few more.
func badBlobsMessage(name string, bad []badBlob) string {
	msg := strings.TrimSuffix(strings.TrimPrefix(bad[0].err.Error(), name+": "), ": "+chunkstore.ErrCorrupt.Error())
	if len(bad) == 1 {
		return msg
	}
	ids := make([]string, 0, 5)
	for _, b := range bad[1:min(len(bad), 6)] {
		ids = append(ids, b.id.Short())
	}
	more := ""
	if len(bad) > 6 {
		more = ", …"
	}
	return fmt.Sprintf("%d blobs are not what the index says (another copy is used where there is one): %s; also blob %s%s",
		len(bad), msg, strings.Join(ids, ", blob "), more)
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
