package transfer

import (
	"context"
	"slices"
	"sync"
	"syscall"

	"github.com/syncd/syncd/transfer/receive"
	"github.com/syncd/syncd/transfer/wire"
)

// maxStages bounds the batches a puller prepares ahead of the one it
// commits. A batch of site copies built from local chunks takes a few
// milliseconds per file and no link; with batches prepared one at a time
// the link idled while they were built (6-10 s of the bench's initial
// mirror over a 100 Mbit/s link); with a window that reaches past them,
// the blocks of the batches after them travel meanwhile.
//
// Each batch holds the directories of its temporary files open until it
// is committed, so the window is bounded by those too: the node's pullers
// share a quarter of the process's file limit (dirBudget).
const maxStages = 64

// guessDirs is what a batch being prepared is taken to hold open until
// it is prepared (the bench's batches of 1,000 WordPress files: 40-120).
const guessDirs = 128

// maxMerged bounds the batches committed as one (see receive.Merge): a
// commit of many frees the window's room late, all at once. Each commit
// costs two syncfs and an index transaction (0.1-0.3 s each at the end of
// the bench's initial mirror, when the batches after the one with the
// dump are all prepared): with 16 instead of 4 the initial mirror took
// 1.29-1.73x rsync's time against 1.43-2.05x (3 pairs each, interleaved).
const maxMerged = 16

// dirBudget is how many directories the windows of a node's pullers may
// hold open in all.
var dirBudget = sync.OnceValue(func() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 256
	}
	return int(min(max(lim.Cur/4, 256), 8192))
})

// stage is a batch of the peer's entries being prepared (or prepared),
// waiting for its turn to be committed (see window).
type stage struct {
	es          []wire.Entry
	since, last uint64 // the cursor before and after it
	more        bool   // the index batch said more would follow
	seq         uint64 // the peer's sequence number when it was listed
	paths       map[string]bool
	deletes     bool
	ahead       *receive.Ahead
	committed   bool // before the batches ahead of it (see window.early)
}

// window holds the batches being prepared, oldest first; they are
// committed in that order.
type window struct {
	r      *receive.Receiver
	budget int // the directories it may hold open
	parent context.Context
	ctx    context.Context // the stages': cut by drop
	cancel context.CancelFunc
	stages []*stage
	ready  chan struct{} // a stage's preparation ended (coalesced)
}

// newWindow returns an empty window whose batches are prepared under ctx;
// budget is its share of dirBudget.
func newWindow(ctx context.Context, r *receive.Receiver, budget int) *window {
	w := &window{r: r, parent: ctx, budget: budget, ready: make(chan struct{}, 1)}
	w.ctx, w.cancel = context.WithCancel(ctx)
	return w
}

// fits reports whether es can be prepared now: the window has room, and
// es is independent of every batch in it: those delete nothing (what es
// plans around must still be there) and share no path with it. A batch
// of deletes alone plans around nothing but its own paths, which it looks
// at again as it is committed, after the batches before it: it may follow
// one that deletes, and be committed with it (a removed tree spans
// several batches; the bench's mutation round ended with two of them,
// committed one after the other).
func (w *window) fits(es []wire.Entry) bool {
	if len(w.stages) >= maxStages || w.dirs() >= w.budget {
		return false
	}
	onlyDeletes := !slices.ContainsFunc(es, func(e wire.Entry) bool { return !e.Deleted })
	for _, s := range w.stages {
		if s.deletes && !onlyDeletes {
			return false
		}
		for _, e := range es {
			if s.paths[e.Path] {
				return false
			}
		}
	}
	return true
}

// start prepares b, which follows the cursor since, in the background.
func (w *window) start(b wire.IndexBatch, since uint64) {
	s := &stage{es: b.Entries, since: since, last: b.Entries[len(b.Entries)-1].Seq, more: b.More, seq: b.Seq,
		paths: make(map[string]bool, len(b.Entries))}
	for _, e := range b.Entries {
		s.paths[e.Path] = true
		s.deletes = s.deletes || e.Deleted
	}
	var after *receive.Ahead
	if len(w.stages) > 0 {
		after = w.stages[len(w.stages)-1].ahead
	}
	s.ahead = w.r.PrepareAhead(w.ctx, s.es, after)
	w.stages = append(w.stages, s)
	go func() {
		<-s.ahead.Done()
		w.poke()
	}()
}

// poke has the puller look at the window's stages again (see ready).
func (w *window) poke() {
	select {
	case w.ready <- struct{}{}:
	default: // one is pending: the puller looks at every stage
	}
}

// dirs returns how many directories the batches in the window hold open,
// those being prepared taken at guessDirs.
func (w *window) dirs() int {
	n := 0
	for _, s := range w.stages {
		if s.committed {
			continue // its directories are closed
		}
		if pb, _ := prepared(s); pb != nil {
			n += pb.DirsHeld()
		} else {
			n += guessDirs
		}
	}
	return n
}

// prepared returns the result of s's preparation, or nil and false while
// it goes on.
func prepared(s *stage) (*receive.Prepared, bool) {
	select {
	case <-s.ahead.Done():
		pb, err := s.ahead.Result()
		return pb, err == nil
	default:
		return nil, false
	}
}

// last returns the cursor after the newest batch in the window.
func (w *window) last() uint64 { return w.stages[len(w.stages)-1].last }

// pop removes the oldest batch.
func (w *window) pop() *stage {
	s := w.stages[0]
	w.stages[0] = nil
	w.stages = w.stages[1:]
	return s
}

// popPrepared removes the oldest batch, which is prepared, and those
// after it that are prepared too (up to one that failed, and maxMerged
// in all) or committed already. It returns those to commit, and the
// last one it removed.
func (w *window) popPrepared() (commit []*stage, last *stage) {
	last = w.pop()
	commit = []*stage{last}
	for len(w.stages) > 0 {
		if w.stages[0].committed {
			last = w.pop()
			continue
		}
		if _, ok := prepared(w.stages[0]); !ok || len(commit) == maxMerged {
			break
		}
		last = w.pop()
		commit = append(commit, last)
	}
	return commit, last
}

// early returns the batches after the oldest, which is still being
// prepared, that are prepared and may be committed before it
// (receive.Prepared.Independent), up to maxMerged. Building a large file
// can take seconds; without this, the batches after its own waited for
// it, and their commits, one after the other, came after the last byte
// (4.7 s of commits after the bench's initial mirror had received all).
func (w *window) early() []*stage {
	var ss []*stage
	for _, s := range w.stages[1:] {
		if len(ss) == maxMerged {
			break
		}
		if pb, ok := prepared(s); ok && !s.committed && pb.Independent() {
			ss = append(ss, s)
		}
	}
	return ss
}

// pending returns the files and bytes of the batches in the window.
func (w *window) pending() (files, bytes int64) {
	for _, s := range w.stages {
		if s.committed {
			continue
		}
		files += int64(len(s.es))
		for _, e := range s.es {
			bytes += e.Size
		}
	}
	return files, bytes
}

// drop cuts the preparation of every batch in the window short, waits
// for it and removes what it wrote.
func (w *window) drop() {
	w.cancel()
	for _, s := range w.stages {
		<-s.ahead.Done()
		pb, _ := s.ahead.Result()
		if pb != nil && !s.committed {
			w.r.Abandon(pb)
		}
	}
	w.stages = nil
	w.ctx, w.cancel = context.WithCancel(w.parent)
}
