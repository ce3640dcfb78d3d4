package freelist

import (
	"runtime"
	"testing"
	"time"

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

func TestMappedReleasedWhenIdle(t *testing.T) {
	start := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	clk := clocktest.New(start)
	m := NewMapped(2, 64<<10)
	m.Now = clk.Now
	m.After = func(d time.Duration) <-chan time.Time { return clk.NewTimer(d).C() }
	get := func() []byte {
		b, err := m.Get()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
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
