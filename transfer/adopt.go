package transfer

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/syncd/syncd/internal/ownname"
	"github.com/syncd/syncd/state"
)

// A folder with a new index that receives from peers adopts their
// versions (see [state.Folder.BeginAdoption]): what its first scan finds
// is recorded without a version, so a peer's version of a path replaces
// it (the same content costs no transfer, other content makes no conflict
// copy, a peer's delete removes it) and nothing of it is announced as a
// change of this node; what changes after that scan is this node's
// change, as usual. That is a node restored from a snapshot, or one
// whose state database was lost, joining peers with history.
//
// While it adopts, its pullers take their peers' versions only once the
// first full scan has indexed what is on disk (before, every restored
// file would look like a local change not yet indexed, and would not be a
// source of chunks); they take them all at once, each fetching the files
// the others have not claimed (see receive/claims.go), so a new node
// pulls from every peer. The adoption ends when one puller has caught up
// with its peer with nothing left to retry: what is still unversioned
// then is what no peer knows, and becomes this node's own change.

// adoptPoll is how often a puller looks whether the first scan finished.
const adoptPoll = 100 * time.Millisecond

// beginAdoption makes f adopt its peers' versions if its index is new.
func (n *Node) beginAdoption(f *Folder) error {
	adopting, err := f.Local.Index().BeginAdoption()
	if err != nil {
		return fmt.Errorf("folder %s: %w", f.Config.ID, err)
	}
	f.adopting.Store(adopting)
	if adopting {
		n.log.Info("folder has a new index: what is on disk is taken as older than the peers' versions until this node has caught up with one",
			"folder", f.Config.ID)
	}
	return nil
}

// firstScan waits, while f adopts, for its first scan to have indexed
// what is on disk (see above).
func (p *puller) firstScan(ctx context.Context) error {
	f := p.f
	logged := false
	for f.adopting.Load() && f.Local.Index().Adoption() == state.Scanning && !emptyFolder(f.Config.Path) {
		if !logged {
			p.log.Info("waiting for the folder's first scan before taking the peer's versions")
			logged = true
		}
		t := p.n.clk.NewTimer(adoptPoll)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return nil
}

// emptyFolder reports whether dir holds nothing but syncd's own names
// (the folder marker): a new node's empty folder has nothing to scan.
func emptyFolder(dir string) bool {
	d, err := os.Open(dir)
	if err != nil {
		return true // the folder guard reports it; nothing to wait for
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(64)
		for _, name := range names {
			if !ownname.Is(name) {
				return false
			}
		}
		if err != nil {
			return true
		}
	}
}

// endAdoption ends f's adoption once p has caught up with its peer and
// has nothing to retry: every path the peer has is settled here.
func (p *puller) endAdoption() error {
	f := p.f
	if !f.adopting.Load() || p.failing() > 0 {
		return nil
	}
	f.adoptMu.Lock()
	defer f.adoptMu.Unlock()
	if !f.adopting.Load() {
		return nil // another puller ended it
	}
	n, err := f.Local.Index().EndAdoption(f.Local)
	if err != nil {
		return fmt.Errorf("end adoption: %w", err)
	}
	f.adopting.Store(false)
	p.log.Info("caught up with the peer: its versions are adopted; the paths no peer has are this node's own", "own_paths", n)
	f.Local.Notify()
	return nil
}
