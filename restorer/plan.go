package restorer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sync"
	"sync/atomic"

	"context"

	"golang.org/x/sys/unix"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/atdir"
	"github.com/syncd/syncd/internal/freelist"
	"github.com/syncd/syncd/internal/ownname"
)

// maxDepth bounds directory nesting, against crafted repositories.
const maxDepth = 1024

type planner struct {
	ctx      context.Context
	stop     context.CancelCauseFunc // ends ctx when opts.Stop says so
	repo     *chunkstore.Repository
	root     *os.Root
	opts     Options
	includes map[string]bool // include path → matched
	above    map[string]bool // the directories above an include

	packs map[chunkstore.ID]*packJob
	links map[[2]uint64]*file // (device, inode) → first file restored
	later []linkJob
	dirs  []dirMeta
	fds   *atdir.Dirs // the target's directories, opened through their parents
	files []*file
	slow  []*file // restored blob by blob: see locate

	// blobs whose copy failed and that have another, for the next round
	// of fetch; the first error of each; packs already warned about
	retry    []*blobJob
	firstErr map[*blobJob]error
	warned   map[chunkstore.ID]bool

	// whole packs being read, one per worker: a free list rather than a
	// sync.Pool, which every GC empties (16 MiB allocated and faulted in
	// again each time)
	packBufs *freelist.List
	tmpN     int

	mu  sync.Mutex
	res *Result
}

type file struct {
	path      string // relative to the target
	tmp       string // its temporary file, beside it
	node      chunkstore.Node
	remaining atomic.Int64
	failed    atomic.Bool
	done      atomic.Bool
}

type linkJob struct {
	src  *file
	path string
}

type dirMeta struct {
	path string
	node chunkstore.Node
}

type packJob struct {
	id     chunkstore.ID
	size   int64
	needed int64
	blobs  map[chunkstore.ID]*blobJob
}

type blobJob struct {
	id      chunkstore.ID
	loc     chunkstore.Location
	targets []target
}

type target struct {
	f   *file
	off int64
}

func (p *planner) fileError(snapPath string, err error) {
	p.opts.Logger.Warn("file not restored", "path", snapPath, "err", err)
	p.mu.Lock()
	p.res.Errors = append(p.res.Errors, FileError{Path: snapPath, Err: err})
	p.mu.Unlock()
	if p.opts.Stop != nil && p.opts.Stop(err) {
		p.stop(FileError{Path: snapPath, Err: err})
	}
}

// badPack records that pack's copy of a blob could not be used, and
// returns err as a *PackError naming it.
func (p *planner) badPack(pack chunkstore.ID, err error) error {
	name := chunkstore.ObjectName(chunkstore.DataBlob, pack)
	p.mu.Lock()
	if !slices.Contains(p.res.BadPacks, name) {
		p.res.BadPacks = append(p.res.BadPacks, name)
	}
	p.mu.Unlock()
	return &PackError{Pack: name, Err: err}
}

// selected tells whether rel is restored in full (in), and whether it is
// on the way to an include (descend).
func (p *planner) selected(rel string) (in, descend bool) {
	if len(p.includes) == 0 {
		return true, false
	}
	// Once a directory is in, the walk does not ask about what is below
	// it: rel is in only as an include itself (or with "", everything).
	if p.above == nil {
		p.above = make(map[string]bool)
		for inc := range p.includes {
			for d := path.Dir(inc); d != "." && d != "/" && !p.above[d]; d = path.Dir(d) {
				p.above[d] = true
			}
		}
	}
	for _, inc := range [2]string{"", rel} {
		if _, ok := p.includes[inc]; ok {
			p.includes[inc] = true
			in = true
		}
	}
	return in, p.above[rel]
}

// walk plans the restore of tree id at rel (relative to the target).
func (p *planner) walk(id chunkstore.ID, rel string, depth int) error {
	return p.walkTree(id, rel, depth, len(p.includes) == 0)
}

func (p *planner) walkTree(id chunkstore.ID, rel string, depth int, inside bool) error {
	if depth > maxDepth {
		return fmt.Errorf("/%s: directories nested deeper than %d", rel, maxDepth)
	}
	if err := p.ctx.Err(); err != nil {
		return err
	}
	tree, err := p.repo.LoadTree(p.ctx, id)
	if err != nil {
		return fmt.Errorf("/%s: %w", rel, err)
	}
	p.res.TreeEntries += int64(len(tree.Nodes))
	for i := range tree.Nodes {
		n := tree.Nodes[i]
		name := n.FileName()
		r := path.Join(rel, name)
		full := inside
		if !inside {
			in, descend := p.selected(r)
			if !in && !(descend && n.Type == chunkstore.NodeDir) {
				continue
			}
			full = in
		}
		switch n.Type {
		case chunkstore.NodeDir:
			if err := p.mkdir(r); err != nil {
				return err
			}
			p.dirs = append(p.dirs, dirMeta{path: r, node: n})
			p.res.Dirs++
			if err := p.walkTree(*n.Subtree, r, depth+1, full); err != nil {
				return err
			}
		case chunkstore.NodeSymlink:
			if err := p.symlink(r, n); err != nil {
				p.fileError("/"+r, err)
			}
		case chunkstore.NodeFile:
			p.planFile(r, n)
		}
	}
	return nil
}

// clear removes what stands at rel when it is not a directory we may
// reuse (only in --overwrite mode can anything stand there).
func (p *planner) clear(rel string, keepDir bool) error {
	fi, err := p.root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if keepDir && fi.IsDir() {
		return nil
	}
	return p.root.RemoveAll(rel)
}

func (p *planner) mkdir(rel string) error {
	err := p.fds.Mkdir(rel, 0o700)
	if errors.Is(err, fs.ErrExist) {
		// only in --overwrite mode: keep a directory, replace anything else
		fi, serr := p.fds.Lstat(rel)
		switch {
		case serr == nil && fi.IsDir():
			return nil
		case serr != nil && !errors.Is(serr, fs.ErrNotExist):
			err = serr
		default:
			if err = p.root.RemoveAll(rel); err == nil {
				err = p.fds.Mkdir(rel, 0o700)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("create directory /%s: %w", rel, err)
	}
	return nil
}

func (p *planner) symlink(rel string, n chunkstore.Node) error {
	if err := p.clear(rel, false); err != nil {
		return err
	}
	if err := p.root.Symlink(n.LinkTarget(), rel); err != nil {
		return err
	}
	p.res.Symlinks++
	return p.setMeta(rel, n, true)
}

func (p *planner) planFile(rel string, n chunkstore.Node) {
	if n.Links > 1 && n.Inode != 0 {
		key := [2]uint64{n.Device, n.Inode}
		if src, ok := p.links[key]; ok {
			p.later = append(p.later, linkJob{src: src, path: rel})
			return
		}
	}
	p.tmpN++
	f := &file{path: rel, tmp: ownname.RestoreTemp(rel, p.tmpN), node: n}
	var off int64
	var targets []*blobJob
	var offs []int64
	slow := false
	for _, id := range n.Content {
		loc, ok, mixed := p.locate(id)
		if !ok {
			p.fileError("/"+rel, fmt.Errorf("data blob %s: in no index, or its pack is missing or truncated (restore verify names it)", id.Short()))
			return
		}
		if mixed {
			slow = true // the blob's copies disagree on its length
			break
		}
		pj := p.packs[loc.Pack]
		if pj == nil {
			pj = &packJob{id: loc.Pack, size: loc.PackSize, blobs: make(map[chunkstore.ID]*blobJob)}
			p.packs[loc.Pack] = pj
		}
		bj := pj.blobs[id]
		if bj == nil {
			bj = &blobJob{id: id, loc: loc}
			pj.blobs[id] = bj
			pj.needed += int64(loc.Length)
		}
		targets = append(targets, bj)
		offs = append(offs, off)
		off += int64(loc.Raw)
	}
	if slow {
		off = int64(n.Size)
	} else if uint64(off) != n.Size {
		p.fileError("/"+rel, fmt.Errorf("content adds up to %d bytes, the tree says %d", off, n.Size))
		return
	}
	p.files = append(p.files, f)
	p.res.Bytes += off
	if n.Links > 1 && n.Inode != 0 {
		p.links[[2]uint64{n.Device, n.Inode}] = f
	}
	if slow {
		p.slow = append(p.slow, f)
		return
	}
	if len(targets) == 0 { // an empty file: no blob write will create it
		fd, err := p.open(f)
		if err != nil {
			p.fail(f, err)
			return
		}
		p.finishFile(f, fd)
		return
	}
	for i, bj := range targets {
		bj.targets = append(bj.targets, target{f: f, off: offs[i]})
	}
	f.remaining.Store(int64(len(targets)))
}

// locate returns the copy of data blob id to plan with: the first one the
// index lists as a data blob. mixed is set when the blob's data copies
// disagree on its length: only reading them tells which is the blob, and
// the offsets of the file's later blobs depend on it (fetchSlow).
func (p *planner) locate(id chunkstore.ID) (loc chunkstore.Location, ok, mixed bool) {
	first, others, ok := p.repo.Index().LookupAll(id)
	if !ok || others == nil {
		return first, ok && first.Type == chunkstore.DataBlob, false
	}
	ok = false
	for _, l := range append([]chunkstore.Location{first}, others...) {
		switch {
		case l.Type != chunkstore.DataBlob:
		case !ok:
			loc, ok = l, true
		case l.Raw != loc.Raw:
			mixed = true
		}
	}
	return loc, ok, mixed
}

// open opens (creating it if needed) the temporary file of f. Blob
// writes to one file may come from several packs at once; the first
// creates it. A temporary file left by an interrupted restore is reused:
// every byte of it is written again and finishFile truncates it.
func (p *planner) open(f *file) (int, error) {
	return p.fds.OpenFd(f.tmp, unix.O_WRONLY|unix.O_CREAT, 0o600)
}
