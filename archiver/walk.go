package archiver

import (
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/syncd/syncd/chunkstore"
)

// dirState is a directory whose tree blob is not written yet. pending
// counts its unfinished entries plus one hold of the walker while it lists
// the directory; the goroutine that drops it to zero writes the tree and
// completes the parent's entry.
type dirState struct {
	a       *arch
	nodes   []chunkstore.Node
	pending atomic.Int64
	parent  *dirState // nil for the root
	idx     int       // index of this directory's node in parent.nodes
}

func (a *arch) newDir(parent *dirState, idx int) *dirState {
	d := &dirState{a: a, parent: parent, idx: idx}
	d.pending.Store(1)
	return d
}

// done finishes one pending entry of d.
func (d *dirState) done() {
	if d.pending.Add(-1) == 0 {
		d.finish()
	}
}

// finish writes the directory's tree blob and completes its parent entry.
func (d *dirState) finish() {
	a := d.a
	if a.ctx.Err() != nil {
		return
	}
	// Drop entries that could not be read.
	nodes := slices.DeleteFunc(d.nodes, func(n chunkstore.Node) bool { return n.Type == "" })
	data, err := chunkstore.EncodeTree(&chunkstore.Tree{Nodes: nodes})
	if err != nil {
		a.fail(err)
		return
	}
	id := a.repo.BlobID(a.repo.NewHasher(), data)
	if _, err := a.saver.Save(chunkstore.TreeBlob, id, data); err != nil {
		a.fail(err)
		return
	}
	d.nodes = nil
	if d.parent == nil {
		a.root = id
		close(a.done)
		return
	}
	d.parent.nodes[d.idx].Subtree = &id
	d.parent.done()
}

// vdir is a directory on the way to the snapshot's paths: /var and
// /var/www for the path /var/www/html. real is set for a path itself.
type vdir struct {
	children map[string]*vdir
	real     bool
}

// walkRoot builds the root tree: the directories leading to the paths,
// then the paths themselves.
func (a *arch) walkRoot(paths []string, parent *chunkstore.Tree) {
	root := &vdir{children: map[string]*vdir{}}
	for _, p := range paths {
		v := root
		if p == "/" {
			v.real = true
			continue
		}
		for _, el := range splitPath(p) {
			c := v.children[el]
			if c == nil {
				c = &vdir{children: map[string]*vdir{}}
				v.children[el] = c
			}
			v = c
		}
		v.real = true
	}
	d := a.newDir(nil, 0)
	if root.real {
		a.walkDir("/", d, parent)
		return
	}
	a.walkVirtual(root, "/", d, parent)
}

func splitPath(p string) []string {
	var out []string
	for p != "/" && p != "." {
		out = append(out, filepath.Base(p))
		p = filepath.Dir(p)
	}
	slices.Reverse(out)
	return out
}

// walkVirtual lists the children of v, a directory on the way to the paths.
func (a *arch) walkVirtual(v *vdir, path string, d *dirState, old *chunkstore.Tree) {
	defer d.done()
	names := make([]string, 0, len(v.children))
	for name := range v.children {
		names = append(names, name)
	}
	slices.Sort(names)
	olds := a.listNodes(d, path, names, old)
	for i := range d.nodes {
		name := d.nodes[i].FileName()
		p := filepath.Join(path, name)
		if c := v.children[name]; !c.real && d.nodes[i].Type == chunkstore.NodeDir {
			child := a.newDir(d, i)
			d.pending.Add(1)
			a.walkVirtual(c, p, child, a.oldTree(olds[i]))
			continue
		}
		a.entry(d, i, p, olds[i])
	}
}

// walkDir lists the real directory at path into d.
func (a *arch) walkDir(path string, d *dirState, old *chunkstore.Tree) {
	defer d.done()
	if a.ctx.Err() != nil {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		a.fileError(path, unwrapPathError(err))
		return
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		a.fileError(path, unwrapPathError(err))
		return
	}
	slices.Sort(names)
	olds := a.listNodes(d, path, names, old)
	for i := range d.nodes {
		if a.ctx.Err() != nil {
			return
		}
		a.entry(d, i, filepath.Join(path, d.nodes[i].FileName()), olds[i])
	}
}

// listNodes fills d.nodes from the entries names (sorted) of the directory
// at path, and returns the parent snapshot's node of each (nil for new).
func (a *arch) listNodes(d *dirState, path string, names []string, old *chunkstore.Tree) []*chunkstore.Node {
	d.nodes = make([]chunkstore.Node, 0, len(names))
	olds := make([]*chunkstore.Node, 0, len(names))
	for _, name := range names {
		n, ok := a.lstatNode(filepath.Join(path, name), name)
		if !ok {
			continue
		}
		d.nodes = append(d.nodes, n)
		olds = append(olds, findNode(old, name))
	}
	return olds
}

func findNode(t *chunkstore.Tree, name string) *chunkstore.Node {
	if t == nil {
		return nil
	}
	n, _ := t.Find(name)
	return n
}

// oldTree loads the parent snapshot's tree of a directory node, if any.
func (a *arch) oldTree(old *chunkstore.Node) *chunkstore.Tree {
	if old == nil || old.Type != chunkstore.NodeDir || old.Subtree == nil {
		return nil
	}
	t, err := a.repo.LoadTree(a.ctx, *old.Subtree)
	if err != nil {
		a.log.Warn("parent tree unreadable; reading its files again", "tree", old.Subtree.Short(), "err", err)
		return nil
	}
	return t
}

// lstatNode returns the node for path, or false for an entry to skip.
func (a *arch) lstatNode(path, name string) (chunkstore.Node, bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		if !os.IsNotExist(err) { // vanished since the listing: not an error
			a.fileError(path, unwrapPathError(err))
		}
		return chunkstore.Node{}, false
	}
	n := nodeFromInfo(name, fi)
	switch n.Type {
	case "":
		a.log.Info("skipping special file", "path", path, "mode", fi.Mode().String())
		return n, false
	case chunkstore.NodeSymlink:
		target, err := os.Readlink(path)
		if err != nil {
			a.fileError(path, unwrapPathError(err))
			return n, false
		}
		n.SetTarget(target)
	}
	return n, true
}

// entry handles node i of d: a file is queued for reading unless the
// parent snapshot has it unchanged, a directory is walked.
func (a *arch) entry(d *dirState, i int, path string, old *chunkstore.Node) {
	a.opts.Progress.Files.Add(1)
	n := &d.nodes[i]
	switch n.Type {
	case chunkstore.NodeFile:
		a.files.Add(1)
		a.bytes.Add(int64(n.Size))
		if unchanged(old, n) && a.allKnown(old.Content) {
			n.Content = old.Content
			return
		}
		d.pending.Add(1)
		select {
		case a.jobs <- fileJob{d: d, i: i, path: path, old: old}:
		case <-a.ctx.Done():
			d.pending.Add(-1)
		}
	case chunkstore.NodeDir:
		a.dirs.Add(1)
		child := a.newDir(d, i)
		d.pending.Add(1)
		a.walkDir(path, child, a.oldTree(old))
	}
}

func (a *arch) allKnown(ids []chunkstore.ID) bool {
	for _, id := range ids {
		if !a.saver.Known(id) {
			return false
		}
	}
	return true
}
