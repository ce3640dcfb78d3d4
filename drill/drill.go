// Package drill runs restore drills: it restores the latest snapshot of
// each host into a scratch directory, measures how long that takes (the
// recovery time) and how old the snapshot is (the recovery point), and
// reports every file that could not be restored intact, with the pack at
// fault. Each blob is checked against its ID before it is written (the
// restorer does it), so a file counted as restored holds exactly the bytes
// of the snapshot.
//
// A sample drill restores a few files chosen at random and estimates the
// full restore's time from them (Estimate). The drift of a live tree since
// the snapshot can be listed too (Options.Compare).
package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/restorer"
)

// Options configures a drill.
type Options struct {
	Hosts   []string // drill only these hosts' snapshots; empty: every host
	Paths   []string // only snapshots holding all of these paths
	Include []string // snapshot paths restored in full (with a sample: on top of it)
	Sample  int      // restore this many files chosen at random; 0: every file
	Compare string   // a live root: list the drift of ROOT/<snapshot path> since the snapshot
	MaxAge  time.Duration
	Scratch string // an empty directory to restore into (see MakeScratch)

	Now     func() time.Time // nil: time.Now
	Rand    *rand.Rand       // for the sample; nil: seeded at random
	Logger  *slog.Logger
	OnStart func(sn *chunkstore.Snapshot) // called before each snapshot's restore
}

// Report is what a drill found. Its JSON form is the `restore drill --json`
// output (docs/DRILL.md).
type Report struct {
	Time      time.Time  `json:"time"`    // when the drill began
	Seconds   float64    `json:"seconds"` // the drill's wall time
	Sample    int        `json:"sample,omitempty"`
	MaxAge    float64    `json:"max_age_seconds,omitempty"`
	Snapshots []Snapshot `json:"snapshots"`
	Warnings  []string   `json:"warnings,omitempty"` // unreadable snapshots, say
}

// Snapshot is what a drill measured of one snapshot.
type Snapshot struct {
	ID         chunkstore.ID `json:"id"`
	Host       string        `json:"host"`
	Paths      []string      `json:"paths"`
	Time       time.Time     `json:"time"`
	AgeSeconds float64       `json:"age_seconds"` // at the drill: the recovery point
	TooOld     bool          `json:"too_old,omitempty"`

	Files     int64   `json:"files"`   // regular files restored and verified
	Bytes     int64   `json:"bytes"`   // their bytes
	Seconds   float64 `json:"seconds"` // the restore's wall time: the recovery time
	PerSecond float64 `json:"bytes_per_second"`
	EstSecs   float64 `json:"estimated_seconds,omitempty"` // a sample's estimate of the full restore
	// a sample's two timed parts (files of whole packs, files by size)
	// and the listing of the snapshot, which the estimate is made of
	SampleParts []Point `json:"sample_parts,omitempty"`
	ListSeconds float64 `json:"list_seconds,omitempty"`
	// the snapshot's regular files and their bytes (what a full restore writes)
	TotalFiles int64 `json:"snapshot_files"`
	TotalBytes int64 `json:"snapshot_bytes"`

	DamagedFiles int64    `json:"damaged_files"`
	Damaged      []Damage `json:"damaged"`
	Drift        []Drift  `json:"drift"` // null without Options.Compare
}

// OK reports whether the snapshot restored intact and is recent enough.
func (s *Snapshot) OK() bool { return s.DamagedFiles == 0 && len(s.Damaged) == 0 && !s.TooOld }

// Damage is one pack whose copies of blobs could not be used, and the paths
// that could not be restored because of it. Paths is empty when other copies
// of its blobs restored every file. Pack is empty for files that failed for
// another reason (Err says why).
type Damage struct {
	Pack  string   `json:"pack,omitempty"`
	Err   string   `json:"error"`
	Paths []string `json:"paths"`
}

// OK reports whether every snapshot drilled restored intact, within the
// maximum age.
func (r *Report) OK() bool {
	for i := range r.Snapshots {
		if !r.Snapshots[i].OK() {
			return false
		}
	}
	return len(r.Snapshots) > 0
}

// Record returns the drill record of r for the repository.
func (r *Report) Record(host string, drillErr error) *chunkstore.Drill {
	d := &chunkstore.Drill{Time: r.Time, Host: host, Program: "restore drill", OK: r.OK() && drillErr == nil,
		Sample: r.Sample, Seconds: r.Seconds, Snapshots: []chunkstore.DrillSnapshot{}}
	if drillErr != nil {
		d.Error = strings.ReplaceAll(drillErr.Error(), "\n", " ")
	}
	for _, s := range r.Snapshots {
		ds := chunkstore.DrillSnapshot{ID: s.ID, Host: s.Host, Paths: s.Paths, Time: s.Time, AgeSeconds: s.AgeSeconds,
			Files: s.Files, Bytes: s.Bytes, Seconds: s.Seconds, EstSeconds: s.EstSecs, DamagedFiles: s.DamagedFiles,
			DriftFiles: int64(len(s.Drift))}
		for _, dm := range s.Damaged {
			if dm.Pack != "" {
				ds.DamagedPacks = append(ds.DamagedPacks, dm.Pack)
			}
		}
		d.Snapshots = append(d.Snapshots, ds)
	}
	return d
}

// Select returns the newest snapshot of each host among snaps (sorted
// oldest first), narrowed by hosts and paths, ordered by host.
func Select(snaps []*chunkstore.Snapshot, hosts, paths []string) []*chunkstore.Snapshot {
	newest := map[string]*chunkstore.Snapshot{}
	for _, sn := range snaps {
		if len(hosts) > 0 && !slices.Contains(hosts, sn.Host) {
			continue
		}
		if !holds(sn, paths) {
			continue
		}
		if cur := newest[sn.Host]; cur == nil || !sn.Time.Before(cur.Time) {
			newest[sn.Host] = sn
		}
	}
	out := make([]*chunkstore.Snapshot, 0, len(newest))
	for _, sn := range newest {
		out = append(out, sn)
	}
	slices.SortFunc(out, func(a, b *chunkstore.Snapshot) int { return strings.Compare(a.Host, b.Host) })
	return out
}

func holds(sn *chunkstore.Snapshot, paths []string) bool {
	for _, p := range paths {
		if !slices.Contains(sn.Paths, filepath.Clean(p)) {
			return false
		}
	}
	return true
}

// Run drills snaps (see Select) into opts.Scratch, one after the other.
// Damage and drift go into the report; the error is for a drill that could
// not go on (the scratch disk full, the repository unreachable), with the
// report of what was done so far.
func Run(ctx context.Context, repo *chunkstore.Repository, snaps []*chunkstore.Snapshot, opts Options) (*Report, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	start := opts.Now()
	rep := &Report{Time: start, Sample: opts.Sample, MaxAge: opts.MaxAge.Seconds(), Snapshots: []Snapshot{}}
	defer func() { rep.Seconds = opts.Now().Sub(start).Seconds() }()
	for i, sn := range snaps {
		if opts.OnStart != nil {
			opts.OnStart(sn)
		}
		s := Snapshot{ID: sn.ID(), Host: sn.Host, Paths: sn.Paths, Time: sn.Time, AgeSeconds: start.Sub(sn.Time).Seconds(),
			Damaged: []Damage{}}
		s.TooOld = opts.MaxAge > 0 && start.Sub(sn.Time) > opts.MaxAge
		err := drillOne(ctx, repo, sn, &s, opts, filepath.Join(opts.Scratch, fmt.Sprint(i)))
		rep.Snapshots = append(rep.Snapshots, s)
		if err != nil {
			rep.Seconds = opts.Now().Sub(start).Seconds()
			return rep, fmt.Errorf("snapshot %s of %s: %w", sn.ID().Short(), sn.Host, err)
		}
	}
	return rep, nil
}

// drillOne restores sn (all of it, or a sample) under dir and fills in s.
func drillOne(ctx context.Context, repo *chunkstore.Repository, sn *chunkstore.Snapshot, s *Snapshot, opts Options, dir string) error {
	// The listing is for choosing a sample, finding the files of --include
	// and --compare; a plain full drill counts what the restore planned.
	var files []File
	var listSecs float64
	listed := opts.Sample > 0 || len(opts.Include) > 0 || opts.Compare != ""
	if listed {
		t0 := opts.Now()
		var err error
		if files, err = List(ctx, repo, sn); err != nil {
			return err
		}
		listSecs = opts.Now().Sub(t0).Seconds()
	}
	for _, f := range files {
		if f.Type == chunkstore.NodeFile {
			s.TotalFiles++
			s.TotalBytes += f.Size
		}
	}
	var runs []run
	if opts.Sample > 0 {
		a, b := Pick(files, opts.Sample, opts.Rand)
		runs = []run{{include: append(a, opts.Include...)}, {include: b}}
	} else {
		runs = []run{{include: opts.Include}}
	}
	restored := map[string]int{} // path → the run that restored it
	for i := range runs {
		r := &runs[i]
		if opts.Sample > 0 && len(r.include) == 0 {
			continue
		}
		t, cpu := opts.Now(), cpuSeconds()
		planned := func() { r.planSecs, r.planCPU = opts.Now().Sub(t).Seconds(), cpuSeconds()-cpu }
		res, err := restorer.Restore(ctx, repo, sn, restorer.Options{
			Target: filepath.Join(dir, fmt.Sprint(i)), Include: r.include, Logger: opts.Logger, Stop: diskFull, Planned: planned,
		})
		if err != nil {
			return err
		}
		r.secs, r.cpu = opts.Now().Sub(t).Seconds(), cpuSeconds()-cpu
		r.files, r.bytes, r.entries = res.Files, res.FileBytes, res.TreeEntries
		s.Seconds += r.secs
		addDamage(s, res)
		if !listed {
			s.TotalFiles, s.TotalBytes = res.Files+int64(len(res.Errors)), res.Bytes
		}
		s.Files += r.files
		s.Bytes += r.bytes
		if opts.Compare != "" {
			markRestored(restored, i, files, r.include, opts.Sample > 0 || len(r.include) > 0)
		}
	}
	if s.Seconds > 0 {
		s.PerSecond = float64(s.Bytes) / s.Seconds
	}
	if opts.Sample > 0 {
		// like the measured seconds of a full drill, without the listing
		s.EstSecs = EstimateWall(runs[0].point(), runs[1].point(), s.TotalFiles, s.TotalBytes, int64(len(files)), runtime.GOMAXPROCS(0))
		s.SampleParts, s.ListSeconds = []Point{runs[0].point(), runs[1].point()}, listSecs
	}
	if opts.Compare != "" {
		var err error
		if s.Drift, err = Compare(ctx, files, restored, dir, opts.Compare, sn.Paths); err != nil {
			return err
		}
	}
	return nil
}

// run is one restore of a drill: a sample drill has two.
type run struct {
	include               []string
	files, bytes, entries int64
	secs, cpu             float64
	planSecs, planCPU     float64 // of secs and cpu: until the restore was planned
}

func (r run) point() Point {
	return Point{Files: float64(r.files), Bytes: float64(r.bytes), Secs: r.secs, CPU: r.cpu,
		PlanSecs: r.planSecs, PlanCPU: r.planCPU, Entries: float64(r.entries)}
}

// markRestored notes which listed paths a run restored: those under its
// includes, or every one when it had none.
func markRestored(restored map[string]int, i int, files []File, include []string, narrowed bool) {
	inc := make(map[string]bool, len(include))
	for _, p := range include {
		inc[strings.TrimPrefix(path.Clean("/"+p), "/")] = true
	}
	for _, f := range files {
		if !narrowed || inc[""] {
			restored[f.Path] = i
			continue
		}
		for p := f.Path; p != "." && p != "/" && p != ""; p = path.Dir(p) {
			if inc[p] {
				restored[f.Path] = i
				break
			}
		}
	}
}

// addDamage files each error of res under the pack at fault.
func addDamage(s *Snapshot, res *restorer.Result) {
	s.DamagedFiles += int64(len(res.Errors))
	find := func(pack, msg string) *Damage {
		for i := range s.Damaged {
			if s.Damaged[i].Pack == pack && (pack != "" || s.Damaged[i].Err == msg) {
				return &s.Damaged[i]
			}
		}
		s.Damaged = append(s.Damaged, Damage{Pack: pack, Err: msg, Paths: []string{}})
		return &s.Damaged[len(s.Damaged)-1]
	}
	for _, e := range res.Errors {
		var pe *restorer.PackError
		if errors.As(e.Err, &pe) {
			d := find(pe.Pack, strings.TrimPrefix(pe.Error(), pe.Pack+": "))
			d.Paths = append(d.Paths, e.Path)
			continue
		}
		d := find("", e.Err.Error())
		d.Paths = append(d.Paths, e.Path)
	}
	for _, p := range res.BadPacks {
		find(p, "a copy of a blob in it could not be used; other copies restored the files that needed it")
	}
	for i := range s.Damaged {
		slices.Sort(s.Damaged[i].Paths)
	}
}

// cpuSeconds returns the CPU time (user and system) the process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(syscall.TimevalToNsec(ru.Utime)+syscall.TimevalToNsec(ru.Stime)) / 1e9
}

// diskFull tells the restorer to stop: once the target disk is full every
// further file would fail the same way.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
