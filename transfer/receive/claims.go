package receive

import (
	"errors"
	"sync"

	"github.com/syncd/syncd/chunkstore"
)

// Several peers of a folder may offer the same version of a path, and a
// node pulls from all of them at once: a new node joining a fleet pulls
// from every peer, and an edit reaches it from each. So that a file is
// fetched once, and different files from different peers, the receiver
// claims the path of each file it is about to build; another receiver
// that plans the same path meanwhile puts its entry aside (ErrClaimed),
// and its puller plans it again a moment later, when it usually finds the
// version applied. The claim is dropped when the batch that holds it is
// committed or abandoned.

// ErrClaimed files a peer's version of a path whose file another receiver
// of the folder is building: not a failure, and planned again soon.
var ErrClaimed = errors.New("another peer's version of the path is being fetched")

// claims are the paths being built by the folder's receivers, each with the
// batch that builds it. The zero value is ready to use; safe for
// concurrent use.
type claims struct {
	mu sync.Mutex
	m  map[string]*Prepared
}

// take claims rel for pb; false when another batch holds it.
func (c *claims) take(rel string, pb *Prepared) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*Prepared{}
	}
	if by, ok := c.m[rel]; ok && by != pb {
		return false
	}
	c.m[rel] = pb
	return true
}

// drop gives back pb's claim on rel, if it holds it.
func (c *claims) drop(rel string, pb *Prepared) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[rel] == pb {
		delete(c.m, rel)
	}
}

// held returns how many paths are claimed, for tests.
func (c *claims) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// wanted returns the chunks of the files claimed by batches still being
// built: a local file holding one of them may be what such a batch reads
// it from (a rename seen by two receivers: one builds the new path from
// the old file while the other deletes it), and is not deleted until they
// are built (see Receiver.deletes).
func (c *claims) wanted() map[chunkstore.ID]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids map[chunkstore.ID]bool
	seen := map[*Prepared]bool{} // a batch claims many paths: its files are looked at once
	for _, pb := range c.m {
		if seen[pb] || pb.built.Load() {
			continue
		}
		seen[pb] = true
		if ids == nil {
			ids = map[chunkstore.ID]bool{}
		}
		for _, a := range pb.acts {
			if a.kind == actFile && c.m[a.e.Path] == pb {
				for _, id := range a.e.Content {
					ids[id] = true
				}
			}
		}
	}
	return ids
}
