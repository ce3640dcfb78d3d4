package transfer

import (
	"context"
	"log/slog"
	"time"

	"github.com/syncd/syncd/internal/clock"
)

// lasting logs a condition that lasts (a peer that cannot be reached):
// at warn level when it starts and at most once more every remindEvery
// while it lasts (each time it is met in between at debug level), and
// at info level when it ends, with how long it lasted. Its zero value
// needs log and clk set; one goroutine owns it.
type lasting struct {
	log *slog.Logger
	clk clock.Clock

	since  time.Time // when it started; zero: not met
	logged time.Time // when it was last logged at warn level
}

// met notes that the condition is met now: msg is logged with args.
func (l *lasting) met(msg string, args ...any) {
	now := l.clk.Now()
	level := slog.LevelDebug
	switch {
	case l.since.IsZero():
		l.since, l.logged = now, now
		level = slog.LevelWarn
	case now.Sub(l.logged) >= remindEvery:
		l.logged = now
		level = slog.LevelWarn
		args = append(args, "since", l.since.Format(time.RFC3339), "for", now.Sub(l.since).Round(time.Second))
	}
	l.log.Log(context.Background(), level, msg, args...)
}

// active reports whether the condition is met.
func (l *lasting) active() bool { return !l.since.IsZero() }

// over notes that the condition is no longer met; if it was, msg is
// logged with args and how long it lasted ("after").
func (l *lasting) over(msg string, args ...any) {
	if l.since.IsZero() {
		return
	}
	d := l.clk.Now().Sub(l.since)
	l.since, l.logged = time.Time{}, time.Time{}
	l.log.Info(msg, append(args, "after", d.Round(time.Second))...)
}
