package freelist

import "golang.org/x/sys/unix"

// Mapped holds buffers of one size mapped outside the Go heap (anonymous
// mmap), for buffers that must be page-aligned (O_DIRECT writes) and
// that would otherwise sit in the heap between uses: a long-lived buffer
// there counts against the daemon's soft memory limit and leaves the
// collector less room, so it runs more often (issue 14: the receiver's
// pooled buffers held its heap near the limit). A buffer must not be
// used after Put: one the list has no room for is unmapped at once, and
// touching it then faults. Its methods are safe for concurrent use.
type Mapped struct {
	ch   chan []byte
	size int
}

// NewMapped returns a list that keeps up to n buffers of size bytes
// (a multiple of the page size).
func NewMapped(n, size int) *Mapped {
	return &Mapped{ch: make(chan []byte, n), size: size}
}

// Get returns a page-aligned buffer of the list's size, given back before
// or newly mapped.
func (m *Mapped) Get() ([]byte, error) {
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
	default:
		unix.Munmap(b)
	}
}
