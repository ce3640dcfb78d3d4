package receive

import (
	"context"
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
	r.bring.add(es, a.done) // before a later batch can look
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
		a.pb, a.err = r.prepare(ctx, es, a.done, a.scheduled)
		r.bring.remove(es, a.done)
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
	mu sync.Mutex
	m  map[chunkstore.ID]chan struct{}
}

// add notes that the batch es, whose preparation closes done when it
// ends, may bring the chunks of its files (those already noted keep
// their earlier batch).
func (b *bringing) add(es []wire.Entry, done chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[chunkstore.ID]chan struct{}{}
	}
	for _, e := range es {
		if e.Deleted || e.Type != "file" {
			continue
		}
		for _, id := range e.Content {
			if _, ok := b.m[id]; !ok {
				b.m[id] = done
			}
		}
	}
}

// remove forgets what add noted for the batch es.
func (b *bringing) remove(es []wire.Entry, done chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range es {
		for _, id := range e.Content {
			if b.m[id] == done {
				delete(b.m, id)
			}
		}
	}
}

// wait waits until every earlier batch that may bring a chunk of files
// that have() does not find has ended, or ctx ends. own is the waiting
// batch's.
func (b *bringing) wait(ctx context.Context, files []*action, own chan struct{}, have func(chunkstore.ID) bool) {
	waits := map[chan struct{}]bool{}
	b.mu.Lock()
	for _, a := range files {
		for _, id := range a.e.Content {
			if ch, ok := b.m[id]; ok && ch != own && !waits[ch] && !have(id) {
				waits[ch] = true
			}
		}
	}
	b.mu.Unlock()
	for ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}
