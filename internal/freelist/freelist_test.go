package freelist

import (
	"testing"
	"unsafe"
)

// A buffer given back comes out of the next Get, emptied; one with no
// capacity, one over the maximum and one past the list's length are
// dropped.
func TestList(t *testing.T) {
	l := New(2, 1<<10)
	if b := l.Get(); b != nil {
		t.Fatalf("an empty list gave a buffer of capacity %d", cap(b))
	}
	l.Put(nil)
	l.Put(make([]byte, 0, 2<<10))
	if b := l.Get(); b != nil {
		t.Fatalf("kept a buffer of capacity %d (none, or over 1 KiB)", cap(b))
	}
	a, b, c := make([]byte, 10, 100), make([]byte, 0, 200), make([]byte, 0, 300)
	l.Put(a)
	l.Put(b)
	l.Put(c) // the list is full
	got := []int{cap(l.Get()), cap(l.Get()), cap(l.Get())}
	if got[0] != 100 || got[1] != 200 || got[2] != 0 {
		t.Errorf("got back buffers of capacities %v, want [100 200 0]", got)
	}
	l.Put(a)
	if g := l.Get(); len(g) != 0 || cap(g) != 100 {
		t.Errorf("a buffer given back with length 10 came out with length %d", len(g))
	}
	if cap(New(1, 0).putGet(make([]byte, 0, 1<<30))) != 1<<30 {
		t.Error("a list without a maximum dropped a large buffer")
	}
}

func (l *List) putGet(b []byte) []byte {
	l.Put(b)
	return l.Get()
}

func TestMapped(t *testing.T) {
	const size = 64 << 10
	m := NewMapped(1, size)
	a, err := m.Get()
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Get()
	if err != nil {
		t.Fatal(err)
	}
	for _, buf := range [][]byte{a, b} {
		if len(buf) != size || uintptr(unsafe.Pointer(&buf[0]))%4096 != 0 {
			t.Fatalf("a buffer of %d bytes at %p, want %d page-aligned", len(buf), &buf[0], size)
		}
	}
	a[0], b[size-1] = 1, 2 // both writable
	m.Put(a[:10])
	m.Put(b) // the list is full: unmapped
	c, err := m.Get()
	if err != nil {
		t.Fatal(err)
	}
	if &c[0] != &a[0] || len(c) != size || c[0] != 1 {
		t.Errorf("Get after Put gave a buffer at %p of %d bytes, want a's (%p) at full length", &c[0], len(c), &a[0])
	}
	defer func() {
		if recover() == nil {
			t.Error("a buffer of another size was taken back")
		}
	}()
	m.Put(make([]byte, 10))
}
