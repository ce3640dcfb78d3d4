package chunkstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Node types.
const (
	NodeFile    = "file"
	NodeDir     = "dir"
	NodeSymlink = "symlink"
)

// Node is one entry of a directory.
type Node struct {
	Name    string `json:"name"`
	RawName []byte `json:"raw_name,omitempty"` // the exact bytes when Name is not valid UTF-8
	Type    string `json:"type"`
	Mode    uint32 `json:"mode"` // permission, setuid, setgid and sticky bits (as in chmod)

	ModTime time.Time `json:"mtime"`
	ChTime  time.Time `json:"ctime,omitzero"`
	UID     uint32    `json:"uid"`
	GID     uint32    `json:"gid"`
	Inode   uint64    `json:"inode,omitempty"`
	Device  uint64    `json:"device,omitempty"`
	Links   uint64    `json:"links,omitempty"`

	Size    uint64 `json:"size,omitempty"`
	Content []ID   `json:"content,omitempty"` // data blobs, for files
	Subtree *ID    `json:"subtree,omitempty"` // tree blob, for directories

	Target    string `json:"target,omitempty"`     // for symlinks
	RawTarget []byte `json:"raw_target,omitempty"` // the exact bytes when Target is not valid UTF-8
}

// SetName sets the node's name from the file system's bytes.
func (n *Node) SetName(name string) {
	n.Name, n.RawName = splitRaw(name)
}

// FileName returns the exact name bytes.
func (n *Node) FileName() string {
	if n.RawName != nil {
		return string(n.RawName)
	}
	return n.Name
}

// SetTarget sets a symlink's target from the file system's bytes.
func (n *Node) SetTarget(t string) { n.Target, n.RawTarget = splitRaw(t) }

// LinkTarget returns the exact symlink target bytes.
func (n *Node) LinkTarget() string {
	if n.RawTarget != nil {
		return string(n.RawTarget)
	}
	return n.Target
}

func splitRaw(s string) (string, []byte) {
	if utf8.ValidString(s) {
		return s, nil
	}
	return strings.ToValidUTF8(s, "\uFFFD"), []byte(s)
}

// Tree is a directory listing, sorted by name.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Find returns the node named name.
func (t *Tree) Find(name string) (*Node, bool) {
	i, ok := slices.BinarySearchFunc(t.Nodes, name, func(n Node, name string) int {
		return strings.Compare(n.FileName(), name)
	})
	if !ok {
		return nil, false
	}
	return &t.Nodes[i], true
}

// EncodeTree returns the JSON encoding of t, after sorting its nodes.
func EncodeTree(t *Tree) ([]byte, error) {
	slices.SortFunc(t.Nodes, func(a, b Node) int { return strings.Compare(a.FileName(), b.FileName()) })
	return json.Marshal(t)
}

// ValidName reports whether name can be a directory entry: not empty, not
// "." or "..", and without "/" or NUL.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// DecodeTree decodes and validates a tree blob. It refuses entries that
// could escape a restore target: invalid names, duplicates, unknown types,
// directories without a subtree.
func DecodeTree(data []byte) (*Tree, error) {
	var t Tree
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("decode tree: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("decode tree: trailing data")
	}
	for i := range t.Nodes {
		prev := ""
		if i > 0 {
			prev = t.Nodes[i-1].FileName()
		}
		if err := checkNode(&t.Nodes[i], i, prev); err != nil {
			return nil, err
		}
	}
	return &t, nil
}

// checkNode validates the i-th entry of a tree, whose predecessor is
// named prev: DecodeTree's checks, shared with DecodeEntries.
func checkNode(n *Node, i int, prev string) error {
	if n.RawName != nil && utf8.Valid(n.RawName) && string(n.RawName) != n.Name {
		// a valid raw name must equal Name: two spellings would let a
		// tree hide an entry from ls
		return fmt.Errorf("tree entry %q: raw name disagrees with name", n.Name)
	}
	name := n.FileName()
	if !ValidName(name) {
		return fmt.Errorf("tree entry %q: invalid name", n.Name)
	}
	if i > 0 && name <= prev {
		return fmt.Errorf("tree entry %q: duplicate or out of order", n.Name)
	}
	switch n.Type {
	case NodeFile:
		if n.Subtree != nil {
			return fmt.Errorf("tree entry %q: file with a subtree", n.Name)
		}
	case NodeDir:
		if n.Subtree == nil || len(n.Content) > 0 {
			return fmt.Errorf("tree entry %q: directory without a subtree", n.Name)
		}
	case NodeSymlink:
		if n.LinkTarget() == "" || strings.Contains(n.LinkTarget(), "\x00") {
			return fmt.Errorf("tree entry %q: invalid symlink target", n.Name)
		}
	default:
		return fmt.Errorf("tree entry %q: unknown type %q", n.Name, short(n.Type))
	}
	if n.Mode&^0o7777 != 0 {
		return fmt.Errorf("tree entry %q: invalid mode %o", n.Name, n.Mode)
	}
	return nil
}

// LoadTree reads and validates tree blob id.
func (r *Repository) LoadTree(ctx context.Context, id ID) (*Tree, error) {
	return r.trees.load(ctx, id)
}

// TreeRefs returns what tree blob id references: the subtrees of its
// directories and the content blobs of its files, in order. It decodes
// only these fields (no validation of names or metadata), which makes a
// walk that only follows references — prune's — several times faster
// than LoadTree.
func (r *Repository) TreeRefs(ctx context.Context, id ID) (subtrees, content []ID, err error) {
	data, p, err := r.trees.read(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	var t struct {
		Nodes []struct {
			Type    string `json:"type"`
			Content []ID   `json:"content"`
			Subtree *ID    `json:"subtree"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, nil, fmt.Errorf("tree %s in %s: %v: %w", id.Short(), p.Name(), err, ErrCorrupt)
	}
	for _, n := range t.Nodes {
		switch {
		case n.Type == NodeDir && n.Subtree != nil:
			subtrees = append(subtrees, *n.Subtree)
		case n.Type == NodeFile:
			content = append(content, n.Content...)
		}
	}
	return subtrees, content, nil
}

// treeCache keeps opened tree packs, so that walking a snapshot reads each
// tree pack once.
type treeCache struct {
	r     *Repository
	limit int64

	mu    sync.Mutex
	packs map[ID]*Pack
	used  int64
}

func newTreeCache(r *Repository, limit int64) *treeCache {
	return &treeCache{r: r, limit: limit, packs: make(map[ID]*Pack)}
}

// read returns the plaintext of tree blob id and the pack it was read
// from: from its first copy that reads back as the blob (hashes to id),
// so that a copy a hostile writer stored under the ID of a real tree is
// passed over. The error is the first copy's.
func (c *treeCache) read(ctx context.Context, id ID) ([]byte, *Pack, error) {
	first, others, ok := c.r.idx.LookupAll(id)
	if !ok {
		return nil, nil, fmt.Errorf("tree %s: not in the index", id.Short())
	}
	var firstErr error
	for i := -1; i < len(others); i++ {
		loc := first
		if i >= 0 {
			loc = others[i]
		}
		data, p, err := c.readCopy(ctx, id, loc)
		if err == nil {
			return data, p, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, nil, firstErr
}

// readCopy reads the copy of tree blob id at loc.
func (c *treeCache) readCopy(ctx context.Context, id ID, loc Location) ([]byte, *Pack, error) {
	if loc.Type != TreeBlob {
		return nil, nil, fmt.Errorf("tree %s: the index lists it as a %s blob: %w", id.Short(), loc.Type, ErrCorrupt)
	}
	p, err := c.pack(ctx, loc)
	if err != nil {
		return nil, nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	data, err := p.ReadBlob(nil, id, loc, c.r.NewHasher())
	if err != nil {
		return nil, nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return data, p, nil
}

func (c *treeCache) load(ctx context.Context, id ID) (*Tree, error) {
	data, p, err := c.read(ctx, id)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTree(data)
	if err != nil {
		return nil, fmt.Errorf("tree %s in %s: %v: %w", id.Short(), p.Name(), err, ErrCorrupt)
	}
	return t, nil
}

func (c *treeCache) pack(ctx context.Context, loc Location) (*Pack, error) {
	c.mu.Lock()
	p, ok := c.packs[loc.Pack]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	// Every tree blob read from it is checked against its ID: no hash of
	// the whole pack (see ReadPack).
	p, _, err := c.r.ReadPack(ctx, TreeBlob, loc.Pack, loc.PackSize, nil)
	if err != nil {
		return nil, err
	}
	// Decrypt it once: age's ReaderAt decrypts a 64 KiB chunk for every
	// read, and a walk reads many small tree blobs from each chunk.
	plain := make([]byte, p.size)
	if err := readAt(p.pt, plain, 0); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", p.name, err, ErrCorrupt)
	}
	p.pt = bytesReaderAt(plain)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used+loc.PackSize > c.limit {
		clear(c.packs)
		c.used = 0
	}
	c.packs[loc.Pack] = p
	c.used += loc.PackSize
	return p, nil
}
