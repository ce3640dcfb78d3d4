package archiver

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/state"
)

// IndexedFolder is a folder whose local index (package state) is kept up
// to date by the daemon.
type IndexedFolder struct {
	Path  string        // absolute path of the folder
	State *state.Folder // its index
	Since uint64        // the index sequence of the last snapshot (0: none)
}

// IndexedResult is what SnapshotIndexed did.
type IndexedResult struct {
	Result
	Seqs []uint64 // per folder, the index sequence the snapshot reflects
}

// SnapshotIndexed writes a snapshot of folders from their local indexes,
// without walking them: only files changed since each folder's Since are
// read, and only for chunks the repository lacks; directories without
// changes reuse the tree blob written last time. A file that changed again
// since it was indexed is split afresh, so the snapshot never holds chunks
// that do not match the file.
func SnapshotIndexed(ctx context.Context, repo *chunkstore.Repository, folders []IndexedFolder, opts Options) (*IndexedResult, error) {
	if opts.Time.IsZero() {
		opts.Time = time.Now()
	}
	if opts.Progress == nil {
		opts.Progress = new(Progress)
	}
	s := &indexed{ctx: ctx, repo: repo, opts: opts, saver: repo.NewSaver(ctx, opts.Saver), sp: repo.NewSplitter()}
	res := &IndexedResult{}
	roots := make(map[string]chunkstore.ID)
	for _, f := range folders {
		seq := f.State.Seq() // before anything is read: later changes stay dirty
		id, err := s.folder(f, seq)
		if err != nil {
			s.saver.Abort()
			return nil, err
		}
		roots[f.Path] = id
		res.Seqs = append(res.Seqs, seq)
	}
	root, err := s.virtualRoot(roots)
	if err != nil {
		s.saver.Abort()
		return nil, err
	}
	if _, err := s.saver.Finish(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	var paths []string
	for _, f := range folders {
		paths = append(paths, f.Path)
	}
	slices.Sort(paths)
	if p := opts.Parent; opts.SkipUnchanged && p != nil && len(s.errors) == 0 && sameAsParent(ctx, repo, p, paths, roots) {
		// nothing to write. Blobs stored again above (their packs had
		// gone missing) are in the index the saver wrote; the parent
		// uses them.
		res.Result = Result{Snapshot: p, ID: p.ID(), Unchanged: true}
		return res, nil
	}
	r, err := saveSnapshot(ctx, repo, opts, s.saver, paths, root, s.errors,
		chunkstore.Stats{Files: s.files, Dirs: s.dirs, Bytes: s.bytes})
	if err != nil {
		return nil, err
	}
	res.Result = *r
	return res, nil
}

type indexed struct {
	ctx    context.Context
	repo   *chunkstore.Repository
	opts   Options
	saver  *chunkstore.Saver
	sp     *chunkstore.Splitter
	errors []FileError
	trees  map[string]chunkstore.ID // trees built for the current folder
	buf    []byte                   // chunk buffer of upload
	h      *crypto.Hasher

	files, dirs, bytes int64
}

// folder stores what changed in f and returns its root tree; seq is the
// index sequence read before it started.
func (s *indexed) folder(f IndexedFolder, seq uint64) (chunkstore.ID, error) {
	// 1. the chunks of changed files that the repository lacks
	resplit := map[string]*chunkstore.Node{} // files read afresh: their node (nil: unreadable)
	err := f.State.Changed(f.Since, func(rel string, e state.Entry) error {
		if e.Deleted || e.Type != "file" || s.allKnown(e.Content) {
			return nil
		}
		n, err := s.upload(filepath.Join(f.Path, filepath.FromSlash(rel)), e)
		if err != nil {
			s.errors = append(s.errors, FileError{Path: filepath.Join(f.Path, rel), Err: err})
			resplit[rel] = nil
			return nil
		}
		if n != nil {
			resplit[rel] = n
		}
		return nil
	})
	if err != nil {
		return chunkstore.ID{}, err
	}
	// 2. the totals, from one pass over the index (cheap: no disk access)
	err = f.State.Walk("", func(rel string, e state.Entry) error {
		switch {
		case e.Deleted:
		case e.Type == "file":
			s.files++
			s.bytes += e.Size
		case e.Type == "dir":
			s.dirs++
		}
		return nil
	})
	if err != nil {
		return chunkstore.ID{}, err
	}
	// 3. the trees, from the index
	s.trees = map[string]chunkstore.ID{}
	id, err := s.tree(f, "", resplit, seq)
	if err != nil {
		return chunkstore.ID{}, err
	}
	return id, f.State.SetTreeCaches(s.trees, seq)
}

func (s *indexed) allKnown(ids []chunkstore.ID) bool {
	for _, id := range ids {
		if !s.saver.Known(id) {
			return false
		}
	}
	return true
}

// upload reads from the file at p the chunks of e that the repository
// lacks (only those: a 1 MiB edit in a 512 MiB file reads about 1 MiB),
// checks each against its ID, and saves it. If a chunk no longer matches,
// the file changed since it was indexed: it is split afresh and its new
// node returned (nil otherwise).
func (s *indexed) upload(p string, e state.Entry) (*chunkstore.Node, error) {
	f, err := openNoFollow(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s.opts.Progress.FilesRead.Add(1)
	if s.h == nil {
		s.h = s.repo.NewHasher()
	}
	h := s.h
	var off int64
	buf := s.buf // one buffer for every file: no garbage per file
	defer func() { s.buf = buf }()
	for i, id := range e.Content {
		n := int(e.Lengths[i])
		if s.saver.Known(id) {
			off += int64(n)
			continue
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := f.ReadAt(buf, off); err != nil || s.repo.BlobID(h, buf) != id {
			return s.resplit(f)
		}
		if _, err := s.saver.Save(chunkstore.DataBlob, id, buf); err != nil {
			return nil, err
		}
		s.opts.Progress.BytesRead.Add(int64(n))
		off += int64(n)
	}
	return nil, nil
}

// resplit chunks a file that changed since it was indexed, and returns
// its node as read.
func (s *indexed) resplit(f *os.File) (*chunkstore.Node, error) {
	before, err := f.Stat()
	if err != nil {
		return nil, err
	}
	sp, err := s.sp.Split(f, before.Size(), nil, nil, func(id chunkstore.ID, data []byte) error {
		_, err := s.saver.Save(chunkstore.DataBlob, id, data)
		return err
	})
	if err != nil {
		return nil, err
	}
	after, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !sameVersion(before, after) || sp.Size != after.Size() {
		return nil, fmt.Errorf("changed while being read; not in this snapshot")
	}
	n := nodeFromInfo(after.Name(), after)
	n.Content = sp.Content
	return &n, nil
}

// tree returns the tree blob of directory rel of folder f, from the cache
// when nothing below it changed.
func (s *indexed) tree(f IndexedFolder, rel string, resplit map[string]*chunkstore.Node, asOf uint64) (chunkstore.ID, error) {
	if id, ok := f.State.TreeCache(rel); ok && s.saver.Known(id) && !hasPrefixKey(resplit, rel) {
		return id, nil
	}
	var nodes []chunkstore.Node
	parent := rel
	if parent == "" {
		parent = "."
	}
	err := f.State.WalkTree(rel, func(p string, e state.Entry) error {
		if p == rel {
			return nil
		}
		if path.Dir(p) != parent {
			return nil // below an entry that is not a directory: stale, not ours to show
		}
		if e.Deleted {
			if e.Type == "dir" {
				return fs.SkipDir
			}
			return nil
		}
		n := nodeFromEntry(path.Base(p), e)
		switch e.Type {
		case "file":
			if r, ok := resplit[p]; ok {
				if r == nil {
					return nil // unreadable: reported, left out
				}
				r.SetName(path.Base(p))
				n = *r
			}
		case "dir":
			id, err := s.tree(f, p, resplit, asOf)
			if err != nil {
				return err
			}
			n.Subtree = &id
			nodes = append(nodes, n)
			return fs.SkipDir
		}
		nodes = append(nodes, n)
		return nil
	})
	if err != nil {
		return chunkstore.ID{}, err
	}
	data, err := chunkstore.EncodeTree(&chunkstore.Tree{Nodes: nodes})
	if err != nil {
		return chunkstore.ID{}, err
	}
	id := s.repo.BlobID(s.repo.NewHasher(), data)
	if _, err := s.saver.Save(chunkstore.TreeBlob, id, data); err != nil {
		return chunkstore.ID{}, err
	}
	s.trees[rel] = id // recorded in one transaction once the folder is done
	return id, nil
}

func hasPrefixKey(m map[string]*chunkstore.Node, dir string) bool {
	for p := range m {
		if dir == "" || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

func nodeFromEntry(name string, e state.Entry) chunkstore.Node {
	n := chunkstore.Node{Mode: e.Mode, ModTime: time.Unix(0, e.ModTime), ChTime: time.Unix(0, e.ChTime),
		UID: e.UID, GID: e.GID, Inode: e.Inode, Device: e.Device, Links: e.Links}
	n.SetName(name)
	switch e.Type {
	case "file":
		n.Type, n.Size, n.Content = chunkstore.NodeFile, uint64(e.Size), e.Content
	case "dir":
		n.Type = chunkstore.NodeDir
	case "symlink":
		n.Type = chunkstore.NodeSymlink
		n.SetTarget(e.Target)
	}
	return n
}

// virtualRoot builds the trees from / down to each folder, whose own
// trees are given, with the metadata of the directories on the way.
func (s *indexed) virtualRoot(roots map[string]chunkstore.ID) (chunkstore.ID, error) {
	return s.virtualDir("/", roots)
}

func (s *indexed) virtualDir(dir string, roots map[string]chunkstore.ID) (chunkstore.ID, error) {
	children := map[string]bool{}
	for p := range roots {
		if p == dir {
			continue
		}
		rest, ok := strings.CutPrefix(p, strings.TrimSuffix(dir, "/")+"/")
		if !ok {
			continue
		}
		children[strings.SplitN(rest, "/", 2)[0]] = true
	}
	var nodes []chunkstore.Node
	for name := range children {
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			return chunkstore.ID{}, fmt.Errorf("folder %s: %w", p, err)
		}
		n := nodeFromInfo(name, fi)
		n.Type = chunkstore.NodeDir
		id, ok := roots[p]
		if !ok {
			var err error
			if id, err = s.virtualDir(p, roots); err != nil {
				return chunkstore.ID{}, err
			}
		}
		n.Subtree = &id
		nodes = append(nodes, n)
	}
	data, err := chunkstore.EncodeTree(&chunkstore.Tree{Nodes: nodes})
	if err != nil {
		return chunkstore.ID{}, err
	}
	id := s.repo.BlobID(s.repo.NewHasher(), data)
	if _, err := s.saver.Save(chunkstore.TreeBlob, id, data); err != nil {
		return chunkstore.ID{}, err
	}
	return id, nil
}
