package freelist

import "testing"

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
