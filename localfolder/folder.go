// Package localfolder is the one owner of a node's own copy of a folder:
// its local index (a [state.Folder]), the lock under which the indexer and
// the receiver apply a batch to the disk and the index, the record of what
// the receiver wrote (so that the watcher's reports of those writes are not
// indexed a second time) and of the names it is about to rename files into
// (so that the watcher can drop those arrivals at once), and the
// notification rung once a batch is recorded, which the peers' long polls
// wait on. The daemon makes one [Folder] per configured folder and hands
// the same one to the indexer, the watcher and the transfer service.
//
// The names syncd keeps for itself inside a folder (the ".syncd-" prefix:
// its marker, the receiver's temporary files) follow internal/ownname, a
// package of its own because packages that do not depend on the index
// apply the rule too: the watcher ignores such names, the restorer makes
// its temporary files with it.
package localfolder

import (
	"sync"

	"github.com/syncd/syncd/internal/bell"
	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/state"
)

// Folder is a node's own copy of one folder. Its methods are safe for
// concurrent use.
type Folder struct {
	root     string
	index    *state.Folder
	mu       sync.Mutex // the batch lock (Lock, Unlock)
	bell     bell.Bell
	own      ownWrites
	arrivals arrivals
}

// New returns the local folder at the directory root (an absolute path)
// whose index is index. clk times the record of the receiver's writes
// (see [Folder.NotOwn]); nil is the system's clock.
func New(root string, index *state.Folder, clk clock.Clock) *Folder {
	if clk == nil {
		clk = clock.System
	}
	f := &Folder{root: root, index: index}
	f.own.clk = clk
	f.arrivals.ready = make(chan struct{}, 1)
	return f
}

// Root returns the path of the folder's directory.
func (f *Folder) Root() string { return f.root }

// Index returns the folder's local index. Anyone may read it at any time;
// whoever writes it holds the folder's lock (see [Folder.Lock]) and then
// calls [Folder.Notify].
func (f *Folder) Index() *state.Folder { return f.index }

// Lock takes the folder's lock. It is held by the indexer while it applies
// a batch and by the receiver while it applies one (to the disk and the
// index), so that the indexer never sees a file the receiver has put in
// place but not yet recorded, and by whoever else changes the folder or
// its index (the end of an adoption, a revert) or must see it still (the
// daemon's folder guard).
func (f *Folder) Lock() { f.mu.Lock() }

// Unlock releases the folder's lock.
func (f *Folder) Unlock() { f.mu.Unlock() }

// Notify wakes everyone waiting on [Folder.Changed]. Whoever applies a
// batch to the folder calls it once the batch is recorded, whether or not
// the index changed: the daemon after an indexer batch, the receiver after
// a commit, a puller at the end of an adoption. A peer waiting for a
// change (a long poll) then hears at once of what is new, or that the
// index is up to date, which is how it learns that it has caught up.
// Notify may be called with or without the lock held.
func (f *Folder) Notify() { f.bell.Ring() }

// Changed returns a channel that is closed by the next [Folder.Notify].
// Take the channel before reading the index, so that no change falls
// between the two.
func (f *Folder) Changed() <-chan struct{} { return f.bell.Wait() }
