package watcher

import (
	"time"

	"github.com/syncd/syncd/internal/clock"
)

// Clock is the time source of a [Watcher]: debounce, settle, the periodic
// rescan and the retries of a removed root all run on it, so tests can use
// a fake clock and be exact.
type Clock = clock.Clock

// Timer is the part of *time.Timer a [Watcher] uses.
type Timer = clock.Timer

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
