// Package clocktest provides a [clock.Clock] for tests: its time moves
// only when the test moves it, and its timers fire then.
package clocktest

import (
	"slices"
	"sync"
	"time"

	"github.com/syncd/syncd/internal/clock"
)

// Fake is a [clock.Clock] moved by hand. It is safe for concurrent use:
// the code under test makes and stops timers while the test moves time.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer // pending
}

type timer struct {
	f  *Fake
	at time.Time
	c  chan time.Time
}

// New returns a Fake whose time is now.
func New(now time.Time) *Fake { return &Fake{now: now} }

// Now returns the fake's time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires once the fake's time reaches d from
// now; at once if d <= 0.
func (f *Fake) NewTimer(d time.Duration) clock.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &timer{f: f, at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
	} else {
		f.timers = append(f.timers, t)
	}
	return t
}

// Advance moves the time by d and fires the timers that fall due, each
// with its own time, earliest first.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moveTo(f.now.Add(d))
}

// Skip moves the time to the earliest pending timer and fires it (with
// any due at the same time); it reports false, and does nothing, if no
// timer is pending. A test that waits for what the code under test does
// once its timers have fired calls Skip until that is done.
func (f *Fake) Skip() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 {
		return false
	}
	f.moveTo(slices.MinFunc(f.timers, byTime).at)
	return true
}

// Pending reports whether a timer due at at is pending: a test waits for
// the code under test to have set the timer it is about to move past.
func (f *Fake) Pending(at time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.timers, func(t *timer) bool { return t.at.Equal(at) })
}

// moveTo sets the time to now, if later, and fires the timers due by
// then; f.mu is held.
func (f *Fake) moveTo(now time.Time) {
	if now.After(f.now) {
		f.now = now
	}
	slices.SortStableFunc(f.timers, byTime)
	i := 0
	for ; i < len(f.timers) && !f.timers[i].at.After(f.now); i++ {
		f.timers[i].c <- f.timers[i].at
	}
	f.timers = slices.Delete(f.timers, 0, i)
}

func byTime(a, b *timer) int { return a.at.Compare(b.at) }

func (t *timer) C() <-chan time.Time { return t.c }

// Stop stops t. As with a *time.Timer since Go 1.23, no value is received
// from a stopped timer, even one it fired before.
func (t *timer) Stop() bool {
	f := t.f
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-t.c:
	default:
	}
	i := slices.Index(f.timers, t)
	if i < 0 {
		return false
	}
	f.timers = slices.Delete(f.timers, i, i+1)
	return true
}
