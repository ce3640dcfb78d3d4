package freelist

import (
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/syncd/syncd/internal/clock/clocktest"
)

// waitFor polls cond, yielding to the list's release goroutine, until it
// holds or ten seconds have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// mustGet is m.Get, failing the test on an error.
func mustGet(t *testing.T, m *Mapped) []byte {
	t.Helper()
	b, err := m.Get()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMapped(t *testing.T) {
	const size = 64 << 10
	m := NewMapped(1, size)
	a, b := mustGet(t, m), mustGet(t, m)
	for _, buf := range [][]byte{a, b} {
		if len(buf) != size || uintptr(unsafe.Pointer(&buf[0]))%4096 != 0 {
			t.Fatalf("a buffer of %d bytes at %p, want %d page-aligned", len(buf), &buf[0], size)
		}
	}
	a[0], b[size-1] = 1, 2 // both writable
	m.Put(a[:10])
	m.Put(b) // the list is full: unmapped
	c := mustGet(t, m)
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

func TestMappedReleasedWhenIdle(t *testing.T) {
	start := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	clk := clocktest.New(start)
	m := NewMapped(2, 64<<10)
	m.Now = clk.Now
	m.After = func(d time.Duration) <-chan time.Time { return clk.NewTimer(d).C() }
	get := func() []byte { return mustGet(t, m) }
	a, b := get(), get()
	m.Put(a)
	m.Put(b)
	waitFor(t, "the release timer a minute after the last Get", func() bool { return clk.Pending(start.Add(time.Minute)) })

	// a Get half-way puts the release off until a minute after it
	clk.Advance(30 * time.Second)
	m.Put(get())
	clk.Advance(30 * time.Second)
	waitFor(t, "the release timer put off", func() bool { return clk.Pending(start.Add(90 * time.Second)) })
	if m.Len() != 2 {
		t.Fatalf("%d buffers kept a minute after the first Get but 30 s after the last, want 2", m.Len())
	}

	clk.Advance(30 * time.Second)
	waitFor(t, "the buffers unmapped", func() bool { return m.Len() == 0 })

	// a buffer given back after the release is kept, and released in turn
	c := get()
	c[len(c)-1] = 1 // a new mapping, writable
	m.Put(c)
	if m.Len() != 1 {
		t.Fatalf("%d buffers kept after a Put following the release, want 1", m.Len())
	}
	waitFor(t, "a new release timer", func() bool { return clk.Pending(start.Add(150 * time.Second)) })
	clk.Advance(time.Minute)
	waitFor(t, "the last buffer unmapped", func() bool { return m.Len() == 0 })
}

func TestLease(t *testing.T) {
	m := NewMapped(1, 64<<10)
	l := m.Lease()
	small, large := l.Buf(100), l.Buf(100<<10)
	if len(small) != 100 || len(large) != 100<<10 {
		t.Fatalf("Buf gave %d and %d bytes, want 100 and %d", len(small), len(large), 100<<10)
	}
	if full := l.Buf(64 << 10); &full[0] != &small[0] || uintptr(unsafe.Pointer(&full[0]))%4096 != 0 {
		t.Errorf("what fits the list's size came from elsewhere than the one page-aligned mapped buffer")
	}
	if &large[0] == &small[0] {
		t.Errorf("more than the list's size came from its buffer")
	}
	l.Release()
	if m.Len() != 1 {
		t.Errorf("the list keeps %d buffers after Release, want 1", m.Len())
	}
	if again := m.Lease().Buf(1); &again[0] != &small[0] {
		t.Errorf("the next lease did not get the buffer back")
	}
}
