package state

import (
	"cmp"
	"slices"
	"time"
)

// Counter is one node's component of a [Vector].
type Counter struct {
	Node  uint64 // the node's short ID (tlsid.NodeID.Uint64)
	Value uint64 // grows with each change the node makes to the path
}

// Vector is a version vector: for every node that changed a path, how many
// times (or rather up to which counter) it did. It is sorted by Node, with
// no zero values and no node twice. The zero value is the empty vector.
//
// Vectors order the versions of one path across nodes: if a ≥ b in every
// component, a knows of every change b knows of, and replaces it; if
// neither dominates, the two were changed concurrently and conflict.
type Vector []Counter

// Ordering is the result of [Vector.Compare].
type Ordering int

// The possible orderings of two vectors.
const (
	Equal      Ordering = iota // the same version
	Greater                    // the receiver is newer: it has seen all of the other
	Lesser                     // the receiver is older
	Concurrent                 // each has changes the other has not seen: a conflict
)

// Get returns node's counter, 0 if the vector has none.
func (v Vector) Get(node uint64) uint64 {
	i, ok := slices.BinarySearchFunc(v, node, func(c Counter, n uint64) int { return cmp.Compare(c.Node, n) })
	if !ok {
		return 0
	}
	return v[i].Value
}

// Bump returns a copy of v in which node's counter is larger than in v and
// than now in microseconds since the Unix epoch: a node whose index was
// lost still produces counters above its old ones (as Syncthing does), and
// the largest counter of a vector names the node that changed it last.
func (v Vector) Bump(node uint64, now time.Time) Vector {
	val := v.Get(node) + 1
	if s := now.UnixMicro(); s > 0 && uint64(s) > val {
		val = uint64(s)
	}
	return v.set(node, val)
}

func (v Vector) set(node, val uint64) Vector {
	w := slices.Clone(v)
	i, ok := slices.BinarySearchFunc(w, node, func(c Counter, n uint64) int { return cmp.Compare(c.Node, n) })
	if ok {
		w[i].Value = val
		return w
	}
	return slices.Insert(w, i, Counter{Node: node, Value: val})
}

// Merge returns the component-wise maximum of v and w: a version that
// knows of every change either knows of.
func (v Vector) Merge(w Vector) Vector {
	out := make(Vector, 0, max(len(v), len(w)))
	i, j := 0, 0
	for i < len(v) || j < len(w) {
		switch {
		case j == len(w) || i < len(v) && v[i].Node < w[j].Node:
			out = append(out, v[i])
			i++
		case i == len(v) || w[j].Node < v[i].Node:
			out = append(out, w[j])
			j++
		default:
			out = append(out, Counter{Node: v[i].Node, Value: max(v[i].Value, w[j].Value)})
			i++
			j++
		}
	}
	return out
}

// Compare orders v against w.
func (v Vector) Compare(w Vector) Ordering {
	greater, lesser := false, false
	i, j := 0, 0
	for i < len(v) || j < len(w) {
		var a, b uint64
		switch {
		case j == len(w) || i < len(v) && v[i].Node < w[j].Node:
			a = v[i].Value
			i++
		case i == len(v) || w[j].Node < v[i].Node:
			b = w[j].Value
			j++
		default:
			a, b = v[i].Value, w[j].Value
			i++
			j++
		}
		if a > b {
			greater = true
		} else if a < b {
			lesser = true
		}
	}
	switch {
	case greater && lesser:
		return Concurrent
	case greater:
		return Greater
	case lesser:
		return Lesser
	}
	return Equal
}

// Valid reports whether v is sorted by node, with no node twice and no
// zero counter: what a vector from the wire must be before it is used.
func (v Vector) Valid() bool {
	for i, c := range v {
		if c.Value == 0 || i > 0 && v[i-1].Node >= c.Node {
			return false
		}
	}
	return true
}

// SameContent reports whether a and b describe the same content of a
// path: type, mode, target, deletion, and for files size, mtime and
// chunks. Inode, ctime, owner and a directory's or link's mtime are local
// facts that change without anyone editing the path, so they are not
// compared: a change to them alone is no new version.
func SameContent(a, b Entry) bool {
	if a.Deleted || b.Deleted {
		return a.Deleted == b.Deleted
	}
	if a.Type != b.Type || a.Mode != b.Mode || a.Target != b.Target {
		return false
	}
	if a.Type != "file" {
		return true
	}
	return a.Size == b.Size && a.ModTime == b.ModTime && slices.Equal(a.Content, b.Content)
}
