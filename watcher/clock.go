package watcher

import "time"

// Clock is the time source of a [Watcher]: debounce, settle, the periodic
// rescan and the retries of a removed root all run on it, so tests can use
// a fake clock and be exact.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once,
	// d from now (at once if d <= 0).
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer a [Watcher] uses.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// realClock is [Clock] on the time package.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// timerC is t's channel, or nil (never ready in a select) if t is nil.
func timerC(t Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

// stop stops t if it is set and clears it.
func stop(t *Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}
