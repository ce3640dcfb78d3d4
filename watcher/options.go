package watcher

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/internal/ownname"
)

// Defaults applied by [New] to zero fields of [Options].
const (
	DefaultDebounce = 100 * time.Millisecond
	DefaultMaxHold  = 10 * time.Second
	DefaultRescan   = time.Hour
	DefaultPoll     = 10 * time.Second
)

// Batch is a set of hints for one folder: Paths (slash-separated, relative
// to the folder root, sorted, never ".") may have changed and should be
// looked at against the index; Rescan means "walk the whole folder", and
// Reason says why ("start", "periodic", "inotify queue overflow",
// "inotify watch limit reached", "root removed", "root restored"; several
// joined with "; "). A Rescan batch may carry Paths too; the rescan covers
// them.
type Batch struct {
	Paths  []string
	Rescan bool
	Reason string
}

// Options configures a [Watcher]. Zero values mean the documented defaults.
type Options struct {
	// Root is the absolute path of the folder. A symlink is resolved once,
	// by New.
	Root string
	// Debounce is how long a path must be quiet (no event) before it is
	// reported. Default 100ms.
	Debounce time.Duration
	// Settle is how long a regular file's size and mtime must stay the same
	// before it is reported: a file still being written is held back. Its
	// stat is taken when the path is due and again Settle later while it
	// keeps changing. Default (and any value up to Debounce): Debounce, so
	// the quiet period of events alone decides.
	Settle time.Duration
	// MaxHold bounds the wait of Debounce and Settle: a path pending this
	// long is reported even if it is still changing. Default 10s.
	MaxHold time.Duration
	// Rescan is the interval of the periodic full rescan, a safety net for
	// lost events and unwatched directories. Default 1h; negative disables.
	Rescan time.Duration
	// Poll is how often the directories left without a watch by the inotify
	// watch limit are polled (a listing and an lstat of each entry: those
	// directories only), and their watches retried, until every directory
	// is watched again. A change in such a directory is reported within
	// Poll plus Debounce. Default 10s.
	Poll time.Duration
	// Ignore reports whether a path (relative, slash-separated) is ignored;
	// an ignored directory is neither watched nor walked. Nil: nothing is
	// ignored. The config package provides a gitignore matcher.
	Ignore func(rel string, isDir bool) bool
	// IsTemp reports whether a base name is one of our own temporary files,
	// never reported (nor watched, for a directory). Default: names starting
	// with syncd's own prefix (see [ownname.Prefix]).
	IsTemp func(name string) bool
	// Arrivals, if not nil, tells the receiver's own arrivals: a file it
	// renamed into place is announced, with its inode, before the rename,
	// and the event of that rename (a Create) is dropped as soon as it is
	// read, not reported. Nil: every arrival is reported.
	Arrivals Arrivals
	// Clock is the time source; nil means real time.
	Clock Clock
	// Logger receives warnings (overflow, watch limit, root removed) and
	// progress; nil discards them.
	Logger *slog.Logger
	// Health receives the watcher's lasting conditions: "watch-limit",
	// degraded, while the inotify watch limit leaves directories without a
	// watch (its reason names the sysctl to raise). Nil: none are reported.
	Health *health.Conditions
}

// Arrivals is what a [Watcher] asks of the announcements of the files
// another writer (the receiver) renames into place (see
// localfolder.Folder, which implements it). Paths are relative to the root
// and slash-separated; the root directory is ".".
type Arrivals interface {
	// Arrived reports whether the file at rel, just reported created or
	// moved in, with the inode ino now, is the one announced there; the
	// announcement ends either way.
	Arrived(rel string, ino uint64) bool
	// Forget ends the announcements of the files directly in dir, whose
	// watch was just added: the events of renames before that never come.
	Forget(dir string)
	// ForgetAll ends every announcement: events may have been lost.
	ForgetAll()
}

// withDefaults validates o and fills its zero fields.
func (o Options) withDefaults() (Options, error) {
	if !filepath.IsAbs(o.Root) {
		return o, fmt.Errorf("watcher: root %q is not an absolute path", o.Root)
	}
	root, err := filepath.EvalSymlinks(filepath.Clean(o.Root))
	if err != nil {
		return o, fmt.Errorf("watcher: root: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return o, fmt.Errorf("watcher: root: %w", err)
	}
	if !fi.IsDir() {
		return o, fmt.Errorf("watcher: root %s is not a directory", o.Root)
	}
	o.Root = root
	if o.Debounce < 0 || o.Settle < 0 || o.MaxHold < 0 || o.Poll < 0 {
		return o, errors.New("watcher: negative Debounce, Settle, MaxHold or Poll")
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
	if o.Debounce == 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Settle < o.Debounce {
		o.Settle = o.Debounce
	}
	if o.MaxHold == 0 {
		o.MaxHold = DefaultMaxHold
	}
	if o.Rescan == 0 {
		o.Rescan = DefaultRescan
	}
	if o.IsTemp == nil {
		o.IsTemp = ownname.Is
	}
	if o.Clock == nil {
		o.Clock = clock.System
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Stats are counters of a [Watcher] for metrics.
type Stats struct {
	Watches      int    // directories with an inotify watch
	Unwatched    int    // directories without a watch (the watch limit), polled
	WatchLimited bool   // the inotify watch limit was hit; some directories are unwatched
	Pending      int    // paths waiting for Debounce or Settle
	Events       uint64 // file-system events received
	Overflows    uint64 // inotify queue overflows
	Rescans      uint64 // Rescan batches sent
	Batches      uint64 // batches sent
	Paths        uint64 // paths reported
}
