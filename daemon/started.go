package daemon

import (
	"context"
	"time"
)

// startedPoll is how often WaitStarted looks at the folders.
const startedPoll = 100 * time.Millisecond

// Started reports whether every folder has finished its first full scan
// or has failed (missing, stopped by its guard, an index error): the
// moment syncd tells systemd it is ready. Unlike Ready, it stays true
// while changes are pending, and a failed folder does not hold it back:
// the folder is retried, and the node serves the others.
func (d *Daemon) Started() bool {
	for _, f := range d.folders {
		if !f.scanned.Load() && !f.health.Failed() {
			return false
		}
	}
	return true
}

// WaitStarted returns nil once Started is true (checking every 100 ms), or
// ctx's error when ctx ends first. It is safe to call concurrently with
// Run, before or after Run starts.
func (d *Daemon) WaitStarted(ctx context.Context) error {
	t := time.NewTicker(startedPoll)
	defer t.Stop()
	for !d.Started() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
