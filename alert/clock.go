package alert

import "github.com/syncd/syncd/internal/clock"

// Clock is the time source of an [Alerter]: the repeats and the backoff
// between tries wait on its timers, so tests can pass a fake one and move
// time by hand.
type Clock = clock.Clock

// Timer is a [Clock]'s timer, like *time.Timer.
type Timer = clock.Timer
