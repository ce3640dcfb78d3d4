package alert

import "time"

// Clock is the time source of an [Alerter]: the repeats and the backoff
// between tries wait on its timers, so tests can pass a fake one and move
// time by hand. It must be safe for concurrent use.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer whose channel receives once d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a [Clock]'s timer, like *time.Timer.
type Timer interface {
	// C returns the channel the timer's time is sent on.
	C() <-chan time.Time
	// Stop stops the timer; it reports whether the timer was still
	// pending.
	Stop() bool
}

// systemClock is the Clock of the running system.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }
