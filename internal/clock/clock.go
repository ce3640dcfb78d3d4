// Package clock is the time source of the parts of syncd whose behaviour
// depends on time (debounce, rescans, backoffs, repeats): they take a
// [Clock], and tests pass a fake one and move time by hand.
package clock

import "time"

// Clock tells the time and makes timers. Implementations must be safe for
// concurrent use.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once,
	// d from now (at once if d <= 0).
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the users of a [Clock] need.
type Timer interface {
	// C returns the channel the timer's time is sent on.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was
	// still pending.
	Stop() bool
}

// System is the [Clock] of the time package.
var System Clock = system{}

type system struct{}

func (system) Now() time.Time { return time.Now() }

func (system) NewTimer(d time.Duration) Timer { return timer{time.NewTimer(d)} }

type timer struct{ t *time.Timer }

func (t timer) C() <-chan time.Time { return t.t.C }
func (t timer) Stop() bool          { return t.t.Stop() }
