package freelist

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Mapped holds buffers of one size mapped outside the Go heap (anonymous
// mmap), for buffers that must be page-aligned (O_DIRECT writes) and
// that would otherwise sit in the heap between uses: a long-lived buffer
// there counts against the daemon's soft memory limit and leaves the
// collector less room, so it runs more often (issue 14: the receiver's
// pooled buffers held its heap near the limit). The pages a buffer was
// given stay with it while it is kept, so the buffers kept are unmapped
// once no Get has come for a while (a node that caught up with a peer
// does not hold a transfer's memory for good). A buffer must not be used
// after Put: it may be unmapped at once (the list is full) or later, and
// touching it then faults. Its methods are safe for concurrent use.
type Mapped struct {
	ch   chan []byte
	size int

	// Idle is how long the buffers kept stay mapped after the last Get
	// (DefaultIdle); Now and After are the time source (the time
	// package's; a test's fake clock). Set them before first use. (A
	// list is below internal/clock in the layering: chunkstore uses the
	// package.)
	Idle  time.Duration
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time

	lastGet  atomic.Int64 // UnixNano
	watching atomic.Bool  // a release goroutine runs
}

// DefaultIdle is a Mapped list's Idle unless set.
const DefaultIdle = time.Minute

// NewMapped returns a list that keeps up to n buffers of size bytes
// (a multiple of the page size).
func NewMapped(n, size int) *Mapped {
	return &Mapped{ch: make(chan []byte, n), size: size, Idle: DefaultIdle, Now: time.Now, After: time.After}
}

// Get returns a page-aligned buffer of the list's size, given back before
// or newly mapped.
func (m *Mapped) Get() ([]byte, error) {
	m.lastGet.Store(m.Now().UnixNano())
	select {
	case b := <-m.ch:
		return b, nil
	default:
		return unix.Mmap(-1, 0, m.size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	}
}

// Put gives b, from Get, back: kept for the next Get, or unmapped when
// the list is full.
func (m *Mapped) Put(b []byte) {
	if cap(b) != m.size {
		panic("freelist: a buffer that is not the list's given back")
	}
	b = b[:m.size]
	select {
	case m.ch <- b:
		if m.watching.CompareAndSwap(false, true) {
			go m.release()
		}
	default:
		unix.Munmap(b)
	}
}

// Lease is one user's buffer from a Mapped list: Buf hands out the mapped
// buffer for what fits in it, and a buffer of the heap, kept for the
// lease, for more (or for everything when nothing could be mapped). It is
// not safe for concurrent use.
type Lease struct {
	m            *Mapped
	mapped, heap []byte
}

// Lease takes a buffer from the list for one user, until Release.
func (m *Mapped) Lease() *Lease {
	b, _ := m.Get() // nil: the heap's alone
	return &Lease{m: m, mapped: b}
}

// Buf returns n bytes of the lease's buffer, valid until the next Buf or
// Release.
func (l *Lease) Buf(n int) []byte {
	if n <= len(l.mapped) {
		return l.mapped[:n]
	}
	if cap(l.heap) < n {
		l.heap = make([]byte, n)
	}
	return l.heap[:n]
}

// Release gives the mapped buffer back; nothing Buf returned may be used
// after.
func (l *Lease) Release() {
	if l.mapped != nil {
		l.m.Put(l.mapped)
	}
	l.mapped, l.heap = nil, nil
}

// Len is how many buffers the list keeps.
func (m *Mapped) Len() int { return len(m.ch) }

// release unmaps the buffers kept once Idle has passed without a Get,
// then ends; Put starts it again.
func (m *Mapped) release() {
	for {
		wait := time.Duration(m.lastGet.Load()+int64(m.Idle)) - time.Duration(m.Now().UnixNano())
		if wait > 0 {
			<-m.After(wait)
			continue
		}
		for drained := false; !drained; {
			select {
			case b := <-m.ch:
				unix.Munmap(b)
			default:
				drained = true
			}
		}
		m.watching.Store(false)
		// a Put since the drain saw the flag still set and started none
		if len(m.ch) == 0 || !m.watching.CompareAndSwap(false, true) {
			return
		}
	}
}
