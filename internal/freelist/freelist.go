// Package freelist keeps byte buffers for reuse: a small bounded list,
// which unlike a sync.Pool survives garbage collections. A process under
// a memory limit collects often, and a sync.Pool emptied by each
// collection hands out nothing: every read of a pack or a block response
// then allocates and faults in its buffer again.
package freelist

// List holds up to its length of buffers. Its methods are safe for
// concurrent use.
type List struct {
	ch     chan []byte
	maxCap int
}

// New returns a list that holds up to n buffers, each of at most maxCap
// bytes of capacity (0: any); a larger one given back is dropped, so that
// a rare large buffer is not kept for good.
func New(n, maxCap int) *List {
	return &List{ch: make(chan []byte, n), maxCap: maxCap}
}

// Get returns a buffer of length 0 given back before, or nil.
func (l *List) Get() []byte {
	select {
	case b := <-l.ch:
		return b
	default:
		return nil
	}
}

// Put gives b back for a later Get, unless it has no capacity, more than
// the list's maximum, or the list is full. The caller must not use b
// after.
func (l *List) Put(b []byte) {
	if cap(b) == 0 || l.maxCap > 0 && cap(b) > l.maxCap {
		return
	}
	select {
	case l.ch <- b[:0]:
	default:
	}
}
