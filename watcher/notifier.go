package watcher

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/fsnotify/fsnotify"
)

// notifier is what a Watcher needs of fsnotify: non-recursive watches on
// directories and the two channels. Tests substitute a fake.
type notifier interface {
	Add(dir string) error
	Remove(dir string) error
	Events() <-chan fsnotify.Event
	Errors() <-chan error
	Close() error
}

// eventBuffer is the capacity of the fsnotify event channel: it absorbs a
// burst while the Watcher walks a new directory tree. The kernel queue
// (fs.inotify.max_queued_events) is behind it; past both, an overflow
// costs a rescan.
const eventBuffer = 1024

// fsNotifier is [notifier] on fsnotify.
type fsNotifier struct{ w *fsnotify.Watcher }

func newFSNotifier() (notifier, error) {
	w, err := fsnotify.NewBufferedWatcher(eventBuffer)
	if err != nil {
		if errors.Is(err, syscall.EMFILE) {
			return nil, fmt.Errorf("inotify: too many inotify instances for this user (%w); "+
				"raise the limit with: sysctl -w fs.inotify.max_user_instances=1024", err)
		}
		return nil, fmt.Errorf("inotify: %w", err)
	}
	return fsNotifier{w}, nil
}

func (n fsNotifier) Add(dir string) error          { return n.w.Add(dir) }
func (n fsNotifier) Remove(dir string) error       { return n.w.Remove(dir) }
func (n fsNotifier) Events() <-chan fsnotify.Event { return n.w.Events }
func (n fsNotifier) Errors() <-chan error          { return n.w.Errors }
func (n fsNotifier) Close() error                  { return n.w.Close() }

// addWatch is the default [Watcher.addWatch].
func addWatch(n notifier, dir string) error { return n.Add(dir) }

// isWatchLimit reports whether err from inotify_add_watch means the user's
// watch limit (fs.inotify.max_user_watches) is reached.
func isWatchLimit(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// watchLimitHelp is the warning logged once when the watch limit is hit; %v
// is Options.Poll.
const watchLimitHelp = "inotify watch limit reached (fs.inotify.max_user_watches): " +
	"directories beyond it are not watched; they are polled every %v until watches can be added; " +
	"raise the limit with: sysctl -w fs.inotify.max_user_watches=1048576 " +
	"(persist it in /etc/sysctl.d/)"
