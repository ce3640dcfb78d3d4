package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/state"
)

// A receive-only folder is a replica: what changes in it locally is
// indexed like any change, so it shows (LocalChanges), but never sent.
// Revert throws the local changes away and takes the peers' versions
// again.

// LocalChanges returns the paths of a receive-only folder that were
// changed here, not by a peer: their vector has a counter of this node.
func (n *Node) LocalChanges(folder string) ([]string, error) {
	f, ok := n.folders[folder]
	if !ok {
		return nil, fmt.Errorf("no folder %q", folder)
	}
	if f.Config.Mode != config.ReceiveOnly {
		return nil, nil
	}
	me := n.id.ID.Uint64()
	var out []string
	err := f.Local.Index().Walk("", func(rel string, e state.Entry) error {
		if rel != "" && e.Vector.Get(me) > 0 {
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}

// Revert removes the local changes of a receive-only folder from disk and
// from the index, and has every puller of the folder ask its peer again
// from the start, so that the peers' versions are applied anew. It
// returns the paths reverted.
func (n *Node) Revert(folder string) ([]string, error) {
	f, ok := n.folders[folder]
	if !ok {
		return nil, fmt.Errorf("no folder %q", folder)
	}
	if f.Config.Mode != config.ReceiveOnly {
		return nil, fmt.Errorf("folder %s is %s: only a receive-only folder can be reverted", folder, f.Config.Mode)
	}
	f.Local.Lock()
	defer f.Local.Unlock()
	paths, err := n.LocalChanges(folder)
	if err != nil {
		return nil, err
	}
	// deepest first, so that a directory is empty by its turn
	slices.SortFunc(paths, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var done []string
	for _, p := range paths {
		e, _, err := f.Local.Index().Get(p)
		if err != nil {
			return done, err
		}
		if !e.Deleted {
			err = f.root().Remove(p)
			if errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
			if err != nil && e.Type == "dir" {
				continue // holds what a peer has: stays
			}
			if err != nil {
				return done, fmt.Errorf("revert %s: %w", p, err)
			}
		}
		if err := f.Local.Index().Update(func(tx *state.Tx) error { return tx.Forget(p) }); err != nil {
			return done, err
		}
		done = append(done, p)
	}
	n.mu.Lock()
	for _, p := range n.pullers {
		if p.f == f {
			p.restart()
		}
	}
	n.mu.Unlock()
	n.log.Info("reverted local changes", "folder", folder, "paths", len(done))
	return done, nil
}
