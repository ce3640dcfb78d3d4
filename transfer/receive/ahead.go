package receive

import (
	"context"
	"slices"
	"sync"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/transfer/wire"
)

// Ahead is a batch being prepared ahead of its commit, while the batches
// before it are prepared or committed (see [Receiver.PrepareAhead]).
type Ahead struct {
	es        []wire.Entry
	done      chan struct{} // closed when prepare returned
	scheduled func()        // closes building
	building  chan struct{} // closed once every file of it is being built (or prepare returned)
	pb        *Prepared
	err       error
}

// PrepareAhead starts preparing es in the background, after the batch
// after (nil: none) and before any batch given it later. It is planned
// once every file of after is being built, so that it claims its paths
// (see claims.go) when it is about to build them and another peer's
// receiver takes those that follow, and the batches' groups of files take
// turns in order. A chunk that an earlier batch being prepared may bring,
// and that no local file holds yet, is waited for, not asked for again.
// The batches are committed in the order they were started.
func (r *Receiver) PrepareAhead(ctx context.Context, es []wire.Entry, after *Ahead) *Ahead {
	a := &Ahead{es: es, done: make(chan struct{}), building: make(chan struct{})}
	a.scheduled = sync.OnceFunc(func() { close(a.building) })
	seq := r.bring.add(es, a.done) // before a later batch can look
	prev := closed
	if after != nil {
		prev = after.building
	}
	go func() {
		defer close(a.done)
		defer a.scheduled()
		select {
		case <-prev:
		case <-ctx.Done():
			a.err = ctx.Err()
			return
		}
		a.pb, a.err = r.prepare(ctx, es, seq, a.scheduled)
		r.bring.remove(es, seq)
	}()
	return a
}

// Done is closed once the batch is prepared, or failed to be.
func (a *Ahead) Done() <-chan struct{} { return a.done }

// Result returns the prepared batch or why it could not be prepared;
// only once Done is closed.
func (a *Ahead) Result() (*Prepared, error) { return a.pb, a.err }

// closed is a channel that is closed.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// bringing notes which batch being prepared may bring each chunk: a
// later batch that needs one of them and finds it in no local file yet
// waits for the earlier batch instead of asking the peer for it again
// (the second copy of a tree, whose chunks the first brings).
type bringing struct {
	mu   sync.Mutex
	m    map[chunkstore.ID]bringer
	last uint64 // the number of the last batch added
}

// bringer is the batch that may bring a chunk: its number, in the order
// the batches were added, and its done.
type bringer struct {
	seq  uint64
	done chan struct{}
}

// add notes that the batch es, whose preparation closes done when it
// ends, may bring the chunks of its files (those already noted keep
// their earlier batch), and returns the batch's number.
func (b *bringing) add(es []wire.Entry, done chan struct{}) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[chunkstore.ID]bringer{}
	}
	b.last++
	for _, e := range es {
		if e.Deleted || e.Type != "file" {
			continue
		}
		for _, id := range e.Content {
			if _, ok := b.m[id]; !ok {
				b.m[id] = bringer{b.last, done}
			}
		}
	}
	return b.last
}

// remove forgets what add noted for the batch numbered seq, es.
func (b *bringing) remove(es []wire.Entry, seq uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range es {
		for _, id := range e.Content {
			if b.m[id].seq == seq {
				delete(b.m, id)
			}
		}
	}
}

// wait waits until every batch that earlier returns has ended, or ctx
// ends.
func (b *bringing) wait(ctx context.Context, files []*action, own uint64, have func(chunkstore.ID) bool) {
	for _, ch := range b.earlier(files, own, have) {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// earlier returns the ends of the batches earlier than the one numbered
// own that may bring a chunk of files that have() does not find. A later
// batch is never among them: it waits for this one to be scheduled (see
// PrepareAhead), and may note a chunk that an earlier batch, ended
// meanwhile, did not bring (another peer's receiver claimed its file).
func (b *bringing) earlier(files []*action, own uint64, have func(chunkstore.ID) bool) []chan struct{} {
	var waits []chan struct{}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range files {
		for _, id := range a.e.Content {
			if br, ok := b.m[id]; ok && br.seq < own && !slices.Contains(waits, br.done) && !have(id) {
				waits = append(waits, br.done)
			}
		}
	}
	return waits
}

// Independent reports whether pb may be committed before the batches
// prepared ahead of it, while they are still being built: each of its
// actions makes a path that is in neither the index nor, but for the
// parents the receiver made, on disk. It then removes or replaces nothing
// an earlier batch may still read chunks from or plan around, and it
// makes no directory the receiver could not write into afterwards.
// Placed out of order, such a batch is only placed earlier: a restart
// asks for it again, and its entries are then versions this node has.
// It is decided once: the window asks after every commit, for every
// batch it holds.
func (pb *Prepared) Independent() bool {
	pb.indepOnce.Do(func() { pb.indep = pb.independent() })
	return pb.indep
}

func (pb *Prepared) independent() bool {
	if pb.parts != nil {
		for _, part := range pb.parts {
			if !part.Independent() {
				return false
			}
		}
		return true
	}
	for _, a := range pb.acts {
		switch {
		case a.kind == actDelete, a.have && !a.local.Deleted, a.conflict != "":
			return false
		case a.kind == actDir && a.e.Mode&0o200 == 0:
			return false // its files may still have to be made in it
		}
	}
	return true
}
