package drill

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"github.com/syncd/syncd/chunkstore"
)

// File is one entry of a snapshot, as a drill lists it.
type File struct {
	Path   string // relative to the snapshot's root: "var/www/index.php"
	Type   string // chunkstore.NodeFile, NodeDir or NodeSymlink
	Size   int64
	Target string // a symlink's target
	// Pack is the one data pack holding all of a file's blobs (as the
	// index's first copies say), zero when they are in several or none.
	Pack chunkstore.ID
}

// List returns every entry of snapshot sn, parents before children. It
// loads the trees on a few goroutines: the listing comes before a sample
// drill's restore, and is a large part of it. It decodes them with
// chunkstore.DecodeEntries, which reads only what a listing needs (no
// metadata), with the checks of a full decode.
func List(ctx context.Context, repo *chunkstore.Repository, sn *chunkstore.Snapshot) ([]File, error) {
	slots := make(chan struct{}, 2*runtime.GOMAXPROCS(0)) // goroutines beyond the caller's
	var walk func(id chunkstore.ID, rel string, depth int) (*listing, error)
	walk = func(id chunkstore.ID, rel string, depth int) (*listing, error) {
		if depth > 1024 {
			return nil, fmt.Errorf("/%s: directories nested too deep", rel)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ents, err := repo.LoadEntries(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("/%s: %w", rel, err)
		}
		l := &listing{files: make([]File, len(ents)), n: len(ents)}
		var errs []error
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range ents {
			e := &ents[i]
			p := e.Name
			if rel != "" {
				p = rel + "/" + e.Name // names are valid: no "/", ".", ".."
			}
			l.files[i] = File{Path: p, Type: e.Type, Size: int64(e.Size), Target: e.Target, Pack: onePack(repo, e.Content)}
			if e.Type != chunkstore.NodeDir {
				continue
			}
			if l.subs == nil {
				l.subs = make([]*listing, len(ents))
			}
			sub := func() {
				sl, err := walk(e.Subtree, p, depth+1)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				l.subs[i] = sl
			}
			select {
			case slots <- struct{}{}:
				wg.Add(1)
				go func() {
					defer wg.Done()
					sub()
					<-slots
				}()
			default:
				sub()
			}
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		for _, sl := range l.subs {
			if sl != nil {
				l.n += sl.n
			}
		}
		return l, nil
	}
	l, err := walk(sn.Tree, "", 0)
	if err != nil {
		return nil, err
	}
	return l.appendTo(make([]File, 0, l.n)), nil
}

// listing is the listing of one directory: its entries, and those below
// each of its directories, flattened once at the end (not at every level).
type listing struct {
	files []File
	subs  []*listing // subs[i]: below files[i]; nil without directories
	n     int        // the entries here and below
}

// appendTo appends the entries of l to out: each, then what is below it.
func (l *listing) appendTo(out []File) []File {
	for i := range l.files {
		out = append(out, l.files[i])
		if l.subs != nil && l.subs[i] != nil {
			out = l.subs[i].appendTo(out)
		}
	}
	return out
}

// onePack returns the pack holding every blob of content, or zero.
func onePack(repo *chunkstore.Repository, content []chunkstore.ID) chunkstore.ID {
	var pack chunkstore.ID
	for i, id := range content {
		loc, ok := repo.Index().Lookup(id)
		if !ok || (i > 0 && loc.Pack != pack) {
			return chunkstore.ID{}
		}
		pack = loc.Pack
	}
	return pack
}

// budgetShare is the share of the snapshot's bytes that the larger half of
// a sample may hold: enough to time the restore's throughput, little
// enough that a sample stays a small part of a full restore.
const budgetShare = 0.02

// minBudget is the least the larger half may hold, for small snapshots.
const minBudget = 8 << 20

// Pick chooses a sample of n regular files of files, in two parts that
// the estimate needs to tell the cost of a file from the cost of a byte.
// a holds up to half of them: the files of packs drawn at random, whole
// (those whose blobs all lie in one pack: most small files), so that they
// are restored as a full restore restores them, a pack read at once for
// many files; it measures the cost of a file. b holds the other half:
// files of several packs (large files, read a pack at once as in a full
// restore; other files when there are none), drawn with chances
// proportional to size, up to a few percent of the snapshot's bytes (at
// least minBudget); it measures the cost of a byte.
// With n at least the number of files, a holds every file and b is empty.
func Pick(files []File, n int, rng *rand.Rand) (a, b []string) {
	var regular []int
	var total int64
	byPack := map[chunkstore.ID][]int{}
	var packs []chunkstore.ID
	for i, f := range files {
		if f.Type != chunkstore.NodeFile {
			continue
		}
		regular = append(regular, i)
		total += f.Size
		if f.Pack != (chunkstore.ID{}) {
			if byPack[f.Pack] == nil {
				packs = append(packs, f.Pack)
			}
			byPack[f.Pack] = append(byPack[f.Pack], i)
		}
	}
	if n >= len(regular) {
		for _, i := range regular {
			a = append(a, "/"+files[i].Path)
		}
		return a, nil
	}
	na := n - n/2
	taken := map[int]bool{}
	rng.Shuffle(len(packs), func(i, j int) { packs[i], packs[j] = packs[j], packs[i] })
	// whole packs only, that are read as a full restore reads them: a pack
	// with more files than there is room for is skipped (a few of its files
	// would be read blob by blob), unless no pack fits
	for _, p := range packs {
		if len(byPack[p]) > na-len(a) {
			continue
		}
		for _, i := range byPack[p] {
			a = append(a, "/"+files[i].Path)
			taken[i] = true
		}
	}
	if len(a) == 0 && len(packs) > 0 {
		for _, i := range byPack[packs[0]][:min(na, len(byPack[packs[0]]))] {
			a = append(a, "/"+files[i].Path)
			taken[i] = true
		}
	}
	// Weighted sampling without replacement (Efraimidis–Spirakis): the
	// files with the largest log(u)/size, u uniform in (0,1); among the
	// files of several packs (the large ones), or the others if none.
	var rest []int
	keys := make(map[int]float64)
	for _, multi := range []bool{true, false} {
		for _, i := range regular {
			if !taken[i] && files[i].Size > 0 && (files[i].Pack == chunkstore.ID{}) == multi {
				rest = append(rest, i)
				keys[i] = math.Log(1-rng.Float64()) / float64(files[i].Size)
			}
		}
		if len(rest) > 0 {
			break
		}
	}
	slices.SortFunc(rest, func(x, y int) int { return -cmpFloat(keys[x], keys[y]) })
	budget := max(int64(float64(total)*budgetShare), minBudget)
	for _, i := range rest {
		if len(b) == n/2 {
			break
		}
		if files[i].Size > budget {
			continue
		}
		budget -= files[i].Size
		b = append(b, "/"+files[i].Path)
	}
	return a, b
}

func cmpFloat(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// Point is one timed restore: its files, bytes and seconds, and of these
// the planning's (every tree on the way read, every directory made,
// before the first pack is read) with the tree entries it read.
type Point struct {
	Files    float64 `json:"files"`
	Bytes    float64 `json:"bytes"`
	Secs     float64 `json:"seconds"`
	CPU      float64 `json:"cpu_seconds"` // user and system time
	PlanSecs float64 `json:"plan_seconds,omitempty"`
	PlanCPU  float64 `json:"plan_cpu_seconds,omitempty"`
	Entries  float64 `json:"tree_entries,omitempty"`
}

// fetch returns p without its planning: the reading and writing of files.
func (p Point) fetch() Point {
	return Point{Files: p.Files, Bytes: p.Bytes, Secs: p.Secs - p.PlanSecs, CPU: p.CPU - p.PlanCPU}
}

// EstimateWall returns the wall time of a full restore of files files and
// bytes bytes, whose snapshot has entries tree entries, from Pick's two
// timed parts, as the sum of its two phases.
//
// The planning reads every tree, one after the other: it is estimated
// from the CPU time per tree entry of the parts' planning (which read the
// trees on the way to their files), times entries. Scaled with the files
// and bytes instead, the planning of a part that restores a few large
// files from deep directories charged each byte with the trees on its
// way, and the estimate overshot.
//
// The reading of packs and writing of files fits the CPU time, not the
// wall time (Estimate on the CPU seconds): CPU time adds up the same way
// whether the work runs on one core or several, and other processes on a
// busy machine do not inflate it; the parts of a sample run a pack or two
// at once where a full restore runs several, so their wall times would
// charge a full restore with their own lack of parallelism. That CPU
// estimate is divided by the parallelism seen in the part that reads
// several packs at once (b: CPU over wall time, between 1 and procs).
// Without CPU times it estimates the wall time directly.
func EstimateWall(a, b Point, files, bytes, entries int64, procs int) float64 {
	plan := 0.0
	if n := a.Entries + b.Entries; n > 0 {
		rate := (a.PlanSecs + b.PlanSecs) / n
		if a.CPU > 0 {
			rate = (a.PlanCPU + b.PlanCPU) / n
		}
		plan = rate * float64(entries)
		a, b = a.fetch(), b.fetch()
	}
	if a.CPU <= 0 || (b.Files > 0 && b.CPU <= 0) {
		return plan + Estimate(a, b, files, bytes)
	}
	cpu := Estimate(Point{Files: a.Files, Bytes: a.Bytes, Secs: a.CPU}, Point{Files: b.Files, Bytes: b.Bytes, Secs: b.CPU}, files, bytes)
	par := 1.0
	switch {
	case b.Secs > 0:
		par = b.CPU / b.Secs
	case a.Secs > 0:
		par = a.CPU / a.Secs
	}
	return plan + cpu/min(max(par, 1), float64(max(procs, 1)))
}

// Estimate returns the seconds a restore of files files holding bytes bytes
// takes, from two timed restores a and b (b may be zero): it fits
// secs = x·files + y·bytes through both, the cost of a file and of a byte.
// Scaling by bytes alone would miss the cost of each file (a sample of
// small files restores few bytes per second), by files alone the cost of
// large files. When the two points cannot separate the costs (as many
// bytes per file in both, or a fit with a negative cost), it scales the
// two together by the mean of the file and byte ratios.
//
// A fitted cost of a file that accounts for less than half of the time of
// the part with more files per byte is taken as noise, and the estimate
// scales by bytes alone: a restore whose time goes to bytes runs many
// files at once, and the short timings of a sample cannot tell a small cost
// of a file from jitter (x multiplied by every file of the snapshot turns
// 10 ms of jitter into seconds).
func Estimate(a, b Point, files, bytes int64) float64 {
	N, B := float64(files), float64(bytes)
	if a.Files == 0 && a.Bytes == 0 {
		a, b = b, Point{}
	}
	det := a.Files*b.Bytes - a.Bytes*b.Files
	// well separated: the bytes per file of the two differ by a factor of 2 or more
	if b.Files > 0 && math.Abs(det) >= 0.5*math.Max(a.Files*b.Bytes, a.Bytes*b.Files) {
		x := (a.Secs*b.Bytes - a.Bytes*b.Secs) / det
		y := (a.Files*b.Secs - a.Secs*b.Files) / det
		many := a // the part with more files per byte
		if b.Files*a.Bytes > a.Files*b.Bytes {
			many = b
		}
		switch {
		case x >= 0 && y >= 0 && x*many.Files < many.Secs/2 && a.Bytes+b.Bytes > 0:
			return (a.Secs + b.Secs) / (a.Bytes + b.Bytes) * B
		case x >= 0 && y >= 0:
			return x*N + y*B
		case x < 0 && a.Bytes+b.Bytes > 0:
			return (a.Secs + b.Secs) / (a.Bytes + b.Bytes) * B
		case y < 0:
			return (a.Secs + b.Secs) / (a.Files + b.Files) * N
		}
	}
	c := Point{Files: a.Files + b.Files, Bytes: a.Bytes + b.Bytes, Secs: a.Secs + b.Secs}
	switch {
	case c.Files == 0:
		return 0
	case c.Bytes == 0 || B == 0:
		return c.Secs * N / c.Files
	}
	return c.Secs * (N/c.Files + B/c.Bytes) / 2
}
