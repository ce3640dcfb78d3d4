// Package transfer mirrors folders between peers (DESIGN.md §5,
// docs/PROTOCOL.md): every node serves its local index and the blocks of
// its files over HTTP/2 with mutual TLS, and pulls from each peer of each
// folder the entries it lacks, applying them atomically to its own copy.
//
// A node pulls; it never pushes. A peer's entries are asked for by
// sequence number ("everything after n"), long-polled so that a change
// travels as soon as it is indexed, and the last sequence applied is kept
// in the state database, so a restart or a reconnect resumes where it
// stopped without a rescan of either side.
package transfer

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/state"
)

// Folder is a local folder as the transfer service needs it.
type Folder struct {
	Config   config.Folder
	State    *state.Folder
	Chunking chunkstore.Chunking
	Ignore   func(rel string, isDir bool) bool // nil: nothing ignored

	// Lock is held by the indexer while it applies a batch and by the
	// receiver while it applies one, so that the indexer never sees a file
	// the receiver has put in place but not yet recorded in the index.
	Lock *sync.Mutex

	// Health holds the folder's lasting conditions, shared with the
	// daemon's status: the receiver reports a full disk here (degraded),
	// and a Failed condition (set by whoever finds it: a missing marker,
	// a vanished folder) stops both serving and applying. Nil: open makes
	// an empty set.
	Health *health.Conditions

	root *os.Root
	bell *bell
	own  ownWrites
}

func (f *Folder) open() error {
	if f.Lock == nil {
		f.Lock = new(sync.Mutex)
	}
	if f.Health == nil {
		f.Health = health.NewConditions(nil)
	}
	if f.bell == nil {
		f.bell = newBell()
	}
	if f.root != nil {
		return nil
	}
	r, err := os.OpenRoot(f.Config.Path)
	if err != nil {
		return fmt.Errorf("folder %s: %w", f.Config.ID, errors.Unwrap(err))
	}
	f.root = r
	return nil
}

func (f *Folder) close() {
	if f.root != nil {
		f.root.Close()
	}
}

func (f *Folder) sends() bool    { return f.Config.Mode != config.ReceiveOnly }
func (f *Folder) receives() bool { return f.Config.Mode != config.SendOnly }

func (f *Folder) ignored(rel string, isDir bool) bool {
	return f.Ignore != nil && f.Ignore(rel, isDir)
}

// bell wakes those waiting for a folder to change: Wait returns a channel
// that is closed by the next Ring.
type bell struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBell() *bell { return &bell{ch: make(chan struct{})} }

func (b *bell) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *bell) Ring() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}
