package receive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/atdir"
	"github.com/syncd/syncd/state"
	"github.com/syncd/syncd/transfer/wire"
)

// Failure is an entry of a batch that could not be applied now (a local
// change not indexed yet, a full disk, a block the peer no longer has),
// and why: Err. It is for the caller to try again.
type Failure struct {
	Entry wire.Entry // the peer's entry, as given
	Err   error      // why: one of the Err… errors, a disk's (see FailClass), or another
}

type actionKind int

const (
	actMerge  actionKind = iota // same content: record the merged vector only
	actFile                     // write the file
	actDir                      // make the directory, set its mode
	actLink                     // make the symlink
	actDelete                   // remove what is there
)

// action is what applying one entry takes.
type action struct {
	e            wire.Entry
	kind         actionKind
	local        state.Entry // the index entry before, if have
	have         bool
	rec          state.Entry // what the index records once done
	conflict     string      // keep the local version as a conflict copy: the node to name it after
	conflictTime time.Time   // and the time
	tmp          string      // the temporary file or link
	tmpAt        state.Entry // the temporary file's stat once built (see trusted.go)
	resumed      bool        // tmp is a partial file kept from an earlier try: no O_DIRECT (see direct.go)
	file         *os.File
	err          error // set once the action failed
	done         bool
	skip         bool         // nothing to do after all (ours turned out newer)
	touched      bool         // changed by a local writer the moment it was placed: not the receiver's own
	announced    bool         // renamed into place as announced to the watcher (see localfolder.Folder.Arriving)
	dirty        atomic.Int64 // bytes written to file since its writeback was last started (see writeback.go)
}

// maxOpen bounds the temporary files held open at once, by the builders
// groups of files being built (of every batch prepared); a batch
// of at most fewActions is made durable file by file.
const (
	maxOpen    = 256
	fewActions = 8
	builders   = 4
)

// Prepared is a batch whose files are built in their temporary files
// (those of a batch of few, durable too), waiting for Commit to make them
// durable and move them into place, or for Abandon.
type Prepared struct {
	es             []wire.Entry
	acts           []*action
	fails          []Failure
	few            bool
	t0, t1, t2, t3 time.Time // start, planned, built, ready (real time: the log's step timings)

	// at holds the directories the temporary files were made in, open
	// until the batch ends: what is left of them is removed there, even
	// from a directory renamed meanwhile (see cleanup).
	at *atdir.Dirs

	parts []*Prepared // of a batch merged from several (see Merge); at is nil
	built atomic.Bool // its files are built: it reads no local chunk any more

	indepOnce sync.Once // Independent, decided once
	indep     bool
}

// Merge returns the batches pbs, prepared one after the other, as one to
// commit: one syncfs before the renames, one after and one index update
// for all, which for batches of small files cost more than the renames.
func Merge(pbs []*Prepared) *Prepared {
	if len(pbs) == 1 {
		return pbs[0]
	}
	m := &Prepared{parts: pbs, t0: pbs[0].t0, t1: pbs[0].t1, t2: pbs[len(pbs)-1].t2, t3: pbs[len(pbs)-1].t3}
	for _, pb := range pbs {
		m.es = append(m.es, pb.es...)
		m.acts = append(m.acts, pb.acts...)
		m.fails = append(m.fails, pb.fails...)
	}
	return m
}

// DirsHeld returns how many directories the batch, as Prepare or
// PrepareAhead returned it, holds open until it is committed or
// abandoned.
func (pb *Prepared) DirsHeld() int { return pb.at.Held() }

// Entries returns the batch's entries, as given to Prepare.
func (pb *Prepared) Entries() []wire.Entry { return pb.es }

// ErrOutvoted files a peer's version that lost to a concurrent one of
// ours: it is planned again (see transfer's puller.settle) for as long
// as the peer holds it, so that once ours changes to one that loses (ours
// deleted before the peer took ours), the peer's is taken. Until then the
// peer takes ours and its next version supersedes this one.
var ErrOutvoted = errors.New("our concurrent version wins")

// ErrFolderFailed stops a batch of a folder that has a Failed condition
// (see [Folder.Health]): nothing is applied until it clears.
var ErrFolderFailed = errors.New("folder failed: applying nothing until it is fixed")

// Apply applies es, a batch of the peer's entries in its sequence order,
// and returns those that could not be applied now (a local change not
// indexed yet, a full disk, a block the peer no longer has). The error is
// for what stops the whole batch: the index cannot be written, or ctx
// ended.
func (r *Receiver) Apply(ctx context.Context, es []wire.Entry) ([]Failure, error) {
	pb, err := r.Prepare(ctx, es)
	if err != nil {
		return nil, err
	}
	return r.Commit(pb)
}

// Prepare plans es and writes the temporary files. It runs without the
// folder lock, so that the indexer goes on while data travels, and may
// run while the previous batch is committed (see transfer's
// puller.session).
func (r *Receiver) Prepare(ctx context.Context, es []wire.Entry) (*Prepared, error) {
	return r.prepare(ctx, es, 0, func() {})
}

// prepare is Prepare for a batch prepared ahead (see ahead.go), the
// own-th started (0: not one): it first waits for the earlier batches
// that bring chunks it needs, and calls scheduled once every group of its
// files is being built.
func (r *Receiver) prepare(ctx context.Context, es []wire.Entry, own uint64, scheduled func()) (*Prepared, error) {
	if r.f.Health.Failed() {
		return nil, ErrFolderFailed
	}
	if r.src == nil {
		r.src = r.f.sources()
	}
	look := r.f.lookup()
	pb := &Prepared{es: es, t0: time.Now(), at: r.f.at()}
	paths := make([]string, len(es))
	for i := range es {
		paths[i] = es[i].Path
	}
	locals := r.localEntries(paths)
	for i, e := range es {
		a, err := r.plan(e, look, locals[i])
		switch {
		case err != nil:
			pb.fails = append(pb.fails, Failure{Entry: e, Err: err})
		case a != nil && a.kind == actFile && !r.f.claims.take(e.Path, pb):
			pb.fails = append(pb.fails, Failure{Entry: e, Err: ErrClaimed})
		case a != nil:
			pb.acts = append(pb.acts, a)
		}
	}
	look.Close()
	// Files first, into temporary files, while every local source is still
	// in place (the old versions and what the batch deletes: a rename is a
	// delete and a create); then deletes; then everything is moved into
	// place.
	var files []*action
	for _, a := range pb.acts {
		if a.kind == actFile {
			files = append(files, a)
		}
		if a.have && !a.local.Deleted && a.local.Type == "file" {
			r.src.add(a.e.Path, a.local)
		}
	}
	// A few files are made durable one by one (fsync of each and of its
	// directory); a batch of many with one syncfs before the renames and
	// one after, which costs far less than an fsync each.
	// Groups of files are built by builders at a time: making a file is
	// mostly the kernel's work, which runs on both cores, and while one
	// group waits for the peer's blocks another writes. A group of small
	// files is one request of a few hundred KB, which on a 20 ms link
	// takes about its round trip: with 2 groups at a time the WordPress
	// trees of the bench crossed its 100 Mbit/s link at a third of its
	// rate, with 4 at about two thirds (initial mirror 56.4 s -> 53.5 s;
	// on loopback no difference beyond the noise, 9.7-10.0 s against
	// 8.9-10.4 s).
	pb.few = len(pb.acts) <= fewActions
	if own != 0 {
		r.bring.wait(ctx, files, own, r.src.has)
	}
	pb.t1 = time.Now()
	dirs := new(dirCache) // for the builds only: the placing checks afresh, under the lock
	g, gctx := errgroup.WithContext(ctx)
	for len(files) > 0 {
		// the groups of every batch being prepared take turns, in order
		if r.slots.Acquire(gctx, 1) != nil {
			break // a group failed, or ctx ended: Wait says which
		}
		n := min(len(files), maxOpen/builders)
		group := files[:n]
		g.Go(func() error {
			defer r.slots.Release(1)
			rd := r.src.reader()
			defer rd.close()
			return r.build(gctx, group, pb.few, rd, dirs, pb.at)
		})
		files = files[n:]
	}
	scheduled()
	if err := g.Wait(); err == nil && ctx.Err() != nil {
		r.Abandon(pb)
		return nil, ctx.Err()
	} else if err != nil {
		r.Abandon(pb)
		return nil, err
	}
	pb.t2 = time.Now()
	pb.built.Store(true)
	if r.Hooks.AfterBuild != nil {
		r.Hooks.AfterBuild(es)
	}
	// The new files are sources for the next batch, which may be prepared
	// while this one is committed: under their temporary names, or their
	// final ones once renamed.
	for _, a := range pb.acts {
		if a.kind == actFile && a.err == nil && a.tmp != "" {
			r.src.addTemp(a.tmp, a.e.Path, a.e.State(), a.tmpAt)
		}
	}
	pb.t3 = time.Now()
	return pb, nil
}

// Abandon removes the temporary files of a prepared batch that will not
// be committed.
func (r *Receiver) Abandon(pb *Prepared) {
	if pb != nil {
		r.cleanup(pb)
	}
}

// Commit moves a prepared batch into place under the folder lock, after
// checking again, path by path, that neither the index nor the disk
// changed since the plan, and records it in the index.
func (r *Receiver) Commit(pb *Prepared) ([]Failure, error) {
	acts, fails := pb.acts, pb.fails
	if len(acts) == 0 {
		// nothing to place or record (a batch of versions we have, or of
		// outvoted ones planned again)
		r.cleanup(pb)
		if r.f.Health.Failed() {
			return nil, ErrFolderFailed
		}
		return fails, nil
	}
	tc := time.Now()
	// The temporary files of a batch of many are made durable here, by
	// one syncfs before the renames (a few were fsynced one by one as
	// they were built): commit runs while the next batch is prepared, so
	// its blocks travel while this batch's data reaches the disk. A batch
	// that wrote no file (deletes, directories, versions merged) has
	// nothing to make durable before its renames: the syncfs after them
	// (durable) makes its changes durable; the bench's mutation round
	// ended with a batch of 168 deletes whose first syncfs took 111 ms.
	if !pb.few && slices.ContainsFunc(acts, func(a *action) bool { return a.kind == actFile && a.tmp != "" }) {
		if err := r.f.syncFS(); err != nil {
			r.cleanup(pb)
			return nil, err
		}
	}
	ts := time.Now()
	at := r.f.at()
	defer at.Close()
	r.f.Local.Lock()
	defer r.f.Local.Unlock()
	t4 := time.Now()
	if r.f.Health.Failed() {
		r.cleanup(pb)
		return nil, ErrFolderFailed
	}
	r.recheck(acts)
	r.deletes(acts, at)
	for _, a := range acts {
		if a.err == nil && !a.skip && a.kind != actDelete {
			r.place(a, at)
		}
	}
	r.dirTimes(acts, at)
	touched := touchedDirs(acts, at)
	t5 := time.Now()
	err := r.durable(acts, pb.few)
	if err == nil && r.Hooks.BeforeRecord != nil {
		err = r.Hooks.BeforeRecord()
	}
	if err != nil {
		r.unrecorded(acts, true)
		r.cleanup(pb)
		return nil, err
	}
	t6 := time.Now()
	err = r.f.Local.Index().Update(func(tx *state.Tx) error {
		if err := recordDirs(tx, touched); err != nil {
			return err
		}
		for _, a := range acts {
			if a.err != nil || !a.done {
				continue
			}
			if err := tx.Put(a.e.Path, a.rec); err != nil {
				return err
			}
			if a.kind == actFile {
				r.src.add(a.e.Path, a.rec)
			}
		}
		return nil
	})
	r.cleanup(pb)
	if err != nil {
		r.unrecorded(acts, true)
		return nil, fmt.Errorf("record %s: %w", r.f.Config.ID, err)
	}
	r.unrecorded(acts, false)
	// the system's time, not the node's clock: the latency is measured
	// from the file's mtime, which the peer's system set
	now := time.Now()
	for _, a := range acts {
		if a.err == nil && a.done && a.kind != actMerge && !a.touched {
			r.f.Local.RecordOwn(a.e.Path, a.rec)
			r.Count.Applied(&a.e, now)
		}
	}
	for _, a := range acts {
		if a.err != nil {
			fails = append(fails, Failure{Entry: a.e, Err: a.err})
		}
	}
	r.f.Local.Notify()
	r.Log.Debug("batch applied", "entries", len(pb.es), "actions", len(acts), "failed", len(fails),
		"plan", ms(pb.t1.Sub(pb.t0)), "build", ms(pb.t2.Sub(pb.t1)), "queued", ms(tc.Sub(pb.t3)), "sync", ms(ts.Sub(tc)), "lock_wait", ms(t4.Sub(ts)),
		"place", ms(t5.Sub(t4)), "durable", ms(t6.Sub(t5)), "record", ms(time.Since(t6)))
	return fails, nil
}

// ms rounds d to milliseconds, for logs.
func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// localEntry is the index's entry of a path, as Get returns it.
type localEntry struct {
	e    state.Entry
	have bool
	err  error
}

// localEntries reads the index's entries of paths in one transaction, or
// one by one if that fails (then each fails alone).
func (r *Receiver) localEntries(paths []string) []localEntry {
	out := make([]localEntry, len(paths))
	err := r.f.Local.Index().GetEach(paths, func(i int, e state.Entry, ok bool) error {
		out[i] = localEntry{e, ok, nil}
		return nil
	})
	if err != nil {
		for i, p := range paths {
			e, ok, err := r.f.Local.Index().Get(p)
			out[i] = localEntry{e, ok, err}
		}
	}
	return out
}

// plan decides what the peer's entry e takes here: nothing (nil, we have
// it or something newer), or an action. le is what the index holds of it.
func (r *Receiver) plan(e wire.Entry, look *atdir.Dirs, le localEntry) (*action, error) {
	isDir := e.Type == "dir" && !e.Deleted
	if r.f.ignored(e.Path, isDir) {
		return nil, nil
	}
	local, have, err := le.e, le.have, le.err
	if err != nil {
		return nil, err
	}
	remote := e.State()
	ord := state.Lesser
	if have {
		ord = local.Vector.Compare(remote.Vector)
	}
	a := &action{e: e, local: local, have: have, rec: remote}
	var conflictTime time.Time
	if ord == state.Equal && !state.SameContent(local, remote) {
		// Cannot happen between sound nodes; if it does, resolving it as
		// a conflict makes every node end with the same content.
		r.Log.Warn("peer's version has our vector but other content", "path", e.Path)
		ord = state.Concurrent
	}
	switch ord {
	case state.Equal, state.Greater:
		return nil, nil
	case state.Lesser:
		if have && keepUnversioned(local, remote) {
			conflictTime = time.Unix(0, local.ModTime)
			a.conflict = r.NodeName(r.Self)
		}
	case state.Concurrent:
		a.rec.Vector = local.Vector.Merge(remote.Vector)
		if r.f.Config.Mode == config.ReceiveOnly {
			// the replica takes the peer's version as it is: no counter of
			// its own stays, so the path is no longer a local change
			a.rec.Vector = remote.Vector
		}
		if !state.SameContent(local, remote) {
			if r.f.Config.Mode != config.ReceiveOnly && !remoteWins(local, remote) {
				// ours wins; the peer keeps its version as a conflict copy
				return nil, ErrOutvoted
			}
			// Nothing is lost when only metadata differs (the same tree
			// copied onto two nodes without its mtimes, say).
			if !local.Deleted && local.Type != "dir" && !sameBytes(local, remote) {
				conflictTime = time.Unix(0, local.ModTime)
				a.conflict = r.NodeName(lastChanger(local.Vector))
			}
		}
	}
	if err := r.diskOK(e, local, have, look); err != nil {
		return nil, err
	}
	a.conflictTime = conflictTime
	switch {
	case have && state.SameContent(local, remote):
		a.kind = actMerge
		a.rec = local
		a.rec.Vector = a.rec.Vector.Merge(remote.Vector)
		if r.f.Config.Mode == config.ReceiveOnly {
			a.rec.Vector = remote.Vector
		}
	case e.Deleted:
		a.kind = actDelete
		if !have || local.Deleted {
			a.kind = actMerge
			a.rec = remote
			a.rec.Vector = a.rec.Vector.Merge(local.Vector)
		}
	case e.Type == "file":
		a.kind = actFile
	case e.Type == "dir":
		a.kind = actDir
	default:
		a.kind = actLink
	}
	return a, nil
}

// recheck fails the actions whose path changed since the plan: in the
// index (the indexer recorded a local change) or on disk (a local change
// not yet indexed). Those wait and are planned again.
func (r *Receiver) recheck(acts []*action) {
	paths := make([]string, len(acts))
	for i, a := range acts {
		paths[i] = a.e.Path
	}
	nows := r.localEntries(paths)
	for i, a := range acts {
		if a.err != nil {
			continue
		}
		now, have, err := nows[i].e, nows[i].have, nows[i].err
		switch {
		case err != nil:
			a.err = err
		case (have != a.have || have && now.Version != a.local.Version) && a.kind == actDir &&
			(!have || now.Type == "dir" && !now.Deleted):
			// a directory the indexer found meanwhile, most often one this
			// receiver made for the files it writes: resolved like any
			// version of ours, by the same rules on every node
			a.local, a.have = now, have
			if have && r.f.Config.Mode != config.ReceiveOnly {
				remote := a.e.State()
				ord := now.Vector.Compare(remote.Vector)
				if ord == state.Greater || ord == state.Equal && state.SameContent(now, remote) {
					a.skip = true // ours is newer: nothing to do here
					continue
				}
				if ord != state.Lesser && !state.SameContent(now, remote) && !remoteWins(now, remote) {
					a.err = ErrOutvoted // ours wins
					continue
				}
				a.rec.Vector = remote.Vector.Merge(now.Vector)
			}
		case have && a.have && now.Version != a.local.Version && statOnly(a.local, now):
			// only the directory's stat was recorded meanwhile: an
			// earlier batch added or removed entries in it (recordDirs)
			a.local = now
		case have != a.have || have && now.Version != a.local.Version:
			a.err = ErrLocalChange
		}
		// the disk is checked right before each move (place, deletes)
	}
}

// statOnly reports whether now differs from was, both a directory's
// index entries, in what its stat says alone (its mtime and ctime, as
// recordDirs records them): the same version vector and mode, so no
// change anybody made to it.
func statOnly(was, now state.Entry) bool {
	return was.Type == "dir" && now.Type == "dir" && !was.Deleted && !now.Deleted &&
		was.Mode == now.Mode && was.Vector.Compare(now.Vector) == state.Equal
}

// diskOK checks that the disk at e.Path is what the index says (see
// matchesDisk), with one allowance: a directory where the peer's version
// is a directory is no conflicting change, whoever made it (the receiver
// itself makes the parents of the files it writes).
func (r *Receiver) diskOK(e wire.Entry, local state.Entry, have bool, fsys lstater) error {
	err := matchesDisk(fsys, e.Path, local, have)
	if err == ErrLocalChange && e.Type == "dir" && !e.Deleted && (!have || local.Deleted || local.Type == "dir") {
		if fi, lerr := fsys.Lstat(e.Path); lerr == nil && fi.IsDir() {
			return nil
		}
	}
	return err
}

// cleanup closes and removes what a batch left behind, and closes the
// directories it was made in. A temporary file is removed through the
// directory it was made in, wherever that directory is now: one renamed
// while the batch was written keeps none.
func (r *Receiver) cleanup(pb *Prepared) {
	if pb.parts != nil {
		for _, part := range pb.parts {
			r.cleanup(part)
		}
		return
	}
	for _, a := range pb.acts {
		if a.kind == actFile {
			r.f.claims.drop(a.e.Path, pb)
		}
		if a.file != nil {
			a.file.Close()
			a.file = nil
		}
		if a.tmp != "" {
			pb.at.Remove(a.tmp)
			a.tmp = ""
		}
	}
	pb.at.Close()
}

// sameBytes reports whether two versions hold the same bytes: the same
// type, link target and chunks, whatever their mode and mtime.
func sameBytes(a, b state.Entry) bool {
	return a.Type == b.Type && !a.Deleted && !b.Deleted && a.Target == b.Target && a.Size == b.Size &&
		slices.Equal(a.Content, b.Content)
}

// durable makes the renames and removals of a batch durable: one syncfs,
// or for a few actions an fsync of each directory they changed.
func (r *Receiver) durable(acts []*action, few bool) error {
	if !few {
		return r.f.syncFS()
	}
	dirs := map[string]bool{}
	for _, a := range acts {
		if a.done && a.kind != actMerge {
			dirs[path.Dir(a.e.Path)] = true
		}
	}
	for dir := range dirs {
		d, err := r.f.Root().Open(dir)
		if err != nil {
			continue // gone since: nothing to make durable there
		}
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("fsync %s: %w", dir, err)
		}
	}
	return nil
}
