package receive

import (
	"bytes"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/syncd/syncd/state"
)

// Concurrent versions of a path (neither vector dominates) are resolved
// the same way on every node, so that all agree on the winner without
// talking about it:
//
//  1. a version that exists beats a delete (an edit is never lost to a
//     delete made without knowing of it);
//  2. a directory beats a file or a link (the file is kept as a conflict
//     copy; moving a directory aside would move what is in it);
//  3. the later modification time wins (files only);
//  4. at equal times, the larger vector, compared counter by counter.
//
// The loser, if it has content, is kept beside the winner as
// NAME.sync-conflict-<UTC time>-<node>.EXT, named after its own
// modification time and the node that last changed it, so that every node
// that holds the loser makes the same copy under the same name.

// remoteWins reports whether the peer's version r beats the local l.
func remoteWins(l, r state.Entry) bool {
	if l.Deleted != r.Deleted {
		return l.Deleted
	}
	if (l.Type == "dir") != (r.Type == "dir") {
		return r.Type == "dir"
	}
	// Only a file's mtime travels as it is; a directory's or a link's is
	// the local time it was made on each node, so it cannot decide.
	if l.Type == "file" && r.Type == "file" && l.ModTime != r.ModTime {
		return r.ModTime > l.ModTime
	}
	if !slices.Equal(l.Vector, r.Vector) {
		return vectorLess(l.Vector, r.Vector)
	}
	// Equal vectors with different content: cannot happen between sound
	// nodes, but if it does, the content decides, the same way everywhere.
	return contentLess(l, r)
}

// keepUnversioned reports whether the local version of a path, replaced
// by the peer's version remote, is to be kept as a conflict copy although
// the peer's version is newer: local has no version (it was found while
// the folder adopted its peers' versions: see
// [state.Folder.BeginAdoption]), is a file whose bytes differ from
// remote's, and was modified after remote. A restored file is older than
// the version that replaced it on the peers; a newer one may be an edit
// the peers never had (a node whose index was lost before its change
// travelled).
func keepUnversioned(local, remote state.Entry) bool {
	return len(local.Vector) == 0 && !local.Deleted && local.Type == "file" && !remote.Deleted &&
		!sameBytes(local, remote) && local.ModTime > remote.ModTime
}

// contentLess orders two versions by what they hold.
func contentLess(l, r state.Entry) bool {
	if l.Mode != r.Mode {
		return l.Mode < r.Mode
	}
	if l.Target != r.Target {
		return l.Target < r.Target
	}
	if l.Size != r.Size {
		return l.Size < r.Size
	}
	if l.ModTime != r.ModTime {
		return l.ModTime < r.ModTime
	}
	for i := 0; i < len(l.Content) && i < len(r.Content); i++ {
		if c := bytes.Compare(l.Content[i][:], r.Content[i][:]); c != 0 {
			return c < 0
		}
	}
	return len(l.Content) < len(r.Content)
}

// vectorLess orders vectors as sequences of (node, value) pairs.
func vectorLess(a, b state.Vector) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i].Node != b[i].Node {
				return a[i].Node < b[i].Node
			}
			return a[i].Value < b[i].Value
		}
	}
	return len(a) < len(b)
}

// lastChanger returns the node of the largest counter of v: counters are
// the time of the change in microseconds, so that is the node that
// changed it last.
func lastChanger(v state.Vector) uint64 {
	var best state.Counter
	for _, c := range v {
		if c.Value >= best.Value {
			best = c
		}
	}
	return best.Node
}

// ConflictName returns the name under which the losing version of rel,
// last modified at mtime by the node whose ID starts with node, is kept:
// "dir/a.txt" → "dir/a.sync-conflict-20261129-154502-ABCDEFG.txt".
//
// Should that name be taken by a different file (two losing versions of
// one path from one node within a second), the copy gets the first free
// of "-2", "-3"… after the node: see [ConflictNameN].
func ConflictName(rel string, mtime time.Time, node string) string {
	return ConflictNameN(rel, mtime, node, 1)
}

// ConflictNameN is ConflictName for the n-th copy of that name (n ≥ 2
// appends "-n" to the node).
func ConflictNameN(rel string, mtime time.Time, node string, n int) string {
	dir, name := path.Split(rel)
	ext := path.Ext(name)
	base := strings.TrimSuffix(name, ext)
	if base == "" { // ".htaccess": all extension
		base, ext = name, ""
	}
	if n > 1 {
		node += "-" + strconv.Itoa(n)
	}
	return dir + base + ".sync-conflict-" + mtime.UTC().Format("20060102-150405") + "-" + node + ext
}
