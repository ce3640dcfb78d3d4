package archiver

import (
	"context"
	"slices"
	"strings"

	"github.com/syncd/syncd/chunkstore"
)

// sameAsParent reports whether a snapshot of folders roots (path → the tree
// of the folder's contents) with paths would hold what parent holds: the
// same paths, the same tree below each folder (every name, metadata and
// content), and parent complete. The folders' ancestors are not compared:
// their mtimes change with anything made beside a folder, which is not a
// change of what is backed up. A parent tree that cannot be read counts
// as a change: a snapshot is written.
func sameAsParent(ctx context.Context, repo *chunkstore.Repository, parent *chunkstore.Snapshot, paths []string, roots map[string]chunkstore.ID) bool {
	if parent.Partial || !slices.Equal(parent.Paths, paths) {
		return false
	}
	for _, p := range paths {
		id, ok := subtreeAt(ctx, repo, parent.Tree, p)
		if !ok || id != roots[p] {
			return false
		}
	}
	return true
}

// subtreeAt returns the tree of directory p (absolute, clean) below the
// root tree root, and false when p is not a directory there or a tree on
// the way cannot be read.
func subtreeAt(ctx context.Context, repo *chunkstore.Repository, root chunkstore.ID, p string) (chunkstore.ID, bool) {
	id := root
	for _, name := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if name == "" {
			continue
		}
		tree, err := repo.LoadTree(ctx, id)
		if err != nil {
			return chunkstore.ID{}, false
		}
		n, ok := tree.Find(name)
		if !ok || n.Type != chunkstore.NodeDir || n.Subtree == nil {
			return chunkstore.ID{}, false
		}
		id = *n.Subtree
	}
	return id, true
}
