// Package transfer mirrors folders between peers (DESIGN.md §5,
// docs/PROTOCOL.md): every node serves its local index and the blocks of
// its files over HTTP/2 with mutual TLS, and pulls from each peer of each
// folder the entries it lacks, which a receiver of package
// [github.com/syncd/syncd/transfer/receive] applies atomically to its own
// copy.
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
	"sync/atomic"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/localfolder"
	"github.com/syncd/syncd/transfer/receive"
)

// Folder is a local folder as the transfer service needs it.
type Folder struct {
	Config   config.Folder
	Chunking chunkstore.Chunking
	Ignore   func(rel string, isDir bool) bool // nil: nothing ignored

	// Local is the node's own copy of the folder, shared with its indexer:
	// the index the service serves and records into, the lock under which
	// the receiver applies a batch, the record of what it wrote, and the
	// notification the server's long polls wait on. Required.
	Local *localfolder.Folder

	// Health holds the folder's lasting conditions, shared with the
	// daemon's status: the receiver reports a full disk here (degraded),
	// and a Failed condition (set by whoever finds it: a missing marker,
	// a vanished folder) stops both serving and applying. Nil: open makes
	// an empty set.
	Health *health.Conditions

	// adopting is set while the folder adopts its peers' versions (see
	// adopt.go); adoptMu keeps two pullers from ending it at once.
	adopting atomic.Bool
	adoptMu  sync.Mutex

	// recv is the folder as its pullers' receivers see it, and what they
	// share (made by open).
	recv *receive.Folder

	rootp atomic.Pointer[os.Root] // nil: the folder could not be opened
	clk   clock.Clock             // the node's (set by New)
}

func (f *Folder) open() error {
	if f.Local == nil {
		return fmt.Errorf("folder %s: no local folder", f.Config.ID)
	}
	if f.Health == nil {
		f.Health = health.NewConditions(nil)
	}
	if f.clk == nil {
		f.clk = clock.System
	}
	if f.recv == nil {
		f.recv = &receive.Folder{Config: f.Config, Chunking: f.Chunking, Ignore: f.Ignore, Local: f.Local,
			Health: f.Health, Root: f.root, Clock: f.clk}
	}
	if f.rootp.Load() != nil {
		return nil
	}
	// A folder missing now is the daemon's to report (failed) and retry:
	// until Reopen succeeds every operation in it fails.
	_ = f.Reopen()
	return nil
}

func (f *Folder) close() {
	if r := f.rootp.Swap(nil); r != nil {
		r.Close()
	}
}

// root returns the folder's open directory. Every file operation of the
// transfer service goes through it, so that none follows a symlink out of
// the folder, and so that a folder whose disk was unmounted under it is
// never written through its old path: Reopen swaps it.
func (f *Folder) root() *os.Root {
	if r := f.rootp.Load(); r != nil {
		return r
	}
	return deadRoot()
}

// Reopen opens the folder's path again and uses it from now on: the
// daemon calls it when the directory at the path is no longer the one
// open (a disk mounted or unmounted there) and the folder's marker says
// it is the folder. On an error the folder has no directory at all, and
// every operation in it fails until a Reopen succeeds. Operations under
// way in the old directory fail and are retried.
func (f *Folder) Reopen() error {
	r, err := os.OpenRoot(f.Config.Path)
	if err != nil {
		err = fmt.Errorf("folder %s: %w", f.Config.ID, errors.Unwrap(err))
		r = nil
	}
	if old := f.rootp.Swap(r); old != nil {
		old.Close()
	}
	return err
}

// Release closes the folder's open directory: until a Reopen succeeds,
// every operation in the folder fails. The daemon calls it when the
// folder's guard fails, so that nothing is written to (or read from) a
// disk unmounted under the folder, and so that the disk can be unmounted.
func (f *Folder) Release() {
	if old := f.rootp.Swap(nil); old != nil {
		old.Close()
	}
}

// SameRoot reports whether the directory open for the folder is the one at
// its path now (same device and inode).
func (f *Folder) SameRoot() bool {
	r := f.rootp.Load()
	if r == nil {
		return false
	}
	open, err := r.Stat(".")
	if err != nil {
		return false
	}
	now, err := os.Stat(f.Config.Path)
	return err == nil && os.SameFile(open, now)
}

// deadRoot is a directory that no longer exists: creating anything in it
// fails (ENOENT), and it holds nothing to read. A folder that cannot be
// opened uses it, so that no code path needs a nil check to be safe.
var deadRoot = sync.OnceValue(func() *os.Root {
	dir, err := os.MkdirTemp("", "syncd-no-folder-")
	if err != nil {
		panic("transfer: temporary directory: " + err.Error())
	}
	r, err := os.OpenRoot(dir)
	os.Remove(dir)
	if err != nil {
		panic("transfer: open temporary directory: " + err.Error())
	}
	return r
})

func (f *Folder) sends() bool    { return f.Config.Mode != config.ReceiveOnly }
func (f *Folder) receives() bool { return f.Config.Mode != config.SendOnly }
