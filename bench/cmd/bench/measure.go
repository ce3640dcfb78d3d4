package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
)

// unit says how a metric's values are printed.
type unit int

const (
	seconds unit = iota
	byteCount
	millis // stored in seconds, printed in milliseconds
)

// A metric is one row of the table: a quantity measured for both tools, once
// per pair, and the bar its ratio (ours / restic, of the medians) must meet.
type metric struct {
	id    string
	title string
	unit  unit
	bar   float64
	// anchorless rows have no restic side: the ratio column is "—" and
	// absBar (when > 0) is a bar on ours' own value, in the stored unit.
	anchorless bool
	absBar     float64
	vals       [2][]float64 // [0] ours, [1] restic; one value per pair
	cpu        [2][]float64 // CPU seconds (user + system) of each timed run
}

// metricDefs are the rows, in table order, with the bars of BENCHMARKS.md.
var metricDefs = []metric{
	{id: "initial", title: "initial backup (wall time)", unit: seconds, bar: 0.6},
	{id: "nochange", title: "second snapshot, nothing changed", unit: seconds, bar: 0.5},
	{id: "mutation", title: "snapshot after one mutation round", unit: seconds, bar: 0.7},
	{id: "restore", title: "restore of the latest snapshot", unit: seconds, bar: 0.7},
	{id: "size", title: "repository size after the initial backup", unit: byteCount, bar: 1.05},
	{id: "rss", title: "peak RSS of the initial backup", unit: byteCount, bar: 1.0},
}

// A check is a correctness result per tool: "pass" or what went wrong.
type check struct {
	title  string
	result [2]string
}

// suite runs the measurements of one backend.
type suite struct {
	backend      Backend
	ours, restic *tool
	run          *runner
	data         *dataset
	pairs        int
	only         *regexp.Regexp
	work         string
	nodeLogs     string // mirror: where to keep the nodes' debug logs ("": not kept)

	metrics []*metric
	checks  []*check
}

// want reports whether the measurement id is selected by -only.
func (s *suite) want(id string) bool {
	if s.backend.Metrics != nil && !slices.Contains(s.backend.Metrics, id) {
		return false
	}
	return s.only == nil || s.only.MatchString(s.backend.Name+"/"+id)
}

// any reports whether any measurement of this backend is selected.
func (s *suite) any() bool {
	for _, m := range s.defs() {
		if s.want(m.id) {
			return true
		}
	}
	return false
}

// measure runs every selected measurement for s.pairs pairs.
func (s *suite) measure(ctx context.Context) error {
	s.selectMetrics()
	if err := os.MkdirAll(s.work, 0o755); err != nil {
		return err
	}
	if s.backend.Name == "prune" {
		return s.eachPair(ctx, s.pairPrune)
	}
	if s.backend.Name == "mirror" {
		return s.measureMirror(ctx)
	}
	if s.backend.Name == "wan" {
		return s.measureWan(ctx)
	}
	if s.backend.Name == "drill" {
		return s.eachPair(ctx, s.pairDrill)
	}
	if s.backend.Name == "replace" {
		return s.eachPair(ctx, s.pairReplace)
	}
	if s.backend.Defs != nil {
		return s.eachPair(ctx, s.pairDaemon)
	}
	needInitial := s.want("initial") || s.want("nochange") || s.want("restore") || s.want("size") || s.want("rss")
	for p := 1; p <= s.pairs; p++ {
		if needInitial {
			if err := s.pairInitial(ctx, p); err != nil {
				return err
			}
		}
		if s.want("mutation") {
			if err := s.pairMutation(ctx, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// selectMetrics makes the selected rows of the backend (see want) the
// suite's metrics, in table order.
func (s *suite) selectMetrics() {
	for _, m := range s.defs() {
		if s.want(m.id) {
			s.metrics = append(s.metrics, &m)
		}
	}
}

// defs are the rows of this suite's backend.
func (s *suite) defs() []metric {
	if s.backend.Defs != nil {
		return s.backend.Defs
	}
	return metricDefs
}

// tools returns the two tools in run order: ours, then restic (A B).
func (s *suite) tools() [2]*tool { return [2]*tool{s.ours, s.restic} }

// record stores one value if the metric is selected.
func (s *suite) record(id string, i int, v float64) {
	for _, m := range s.metrics {
		if m.id == id {
			m.vals[i] = append(m.vals[i], v)
		}
	}
}

// recordRun stores a timed run's wall and CPU time if the metric is selected,
// and prints it.
func (s *suite) recordRun(p int, id string, i int, res runResult, what string) {
	for _, m := range s.metrics {
		if m.id == id {
			m.cpu[i] = append(m.cpu[i], res.CPU.Seconds())
		}
	}
	s.record(id, i, res.Wall.Seconds())
	s.say(p, "%-9s %-6s %7.2f s (cpu %6.2f s)%s", id, s.tools()[i].name, res.Wall.Seconds(), res.CPU.Seconds(), what)
}

// note stores a correctness result for tool i.
func (s *suite) note(title string, i int, result string) {
	for _, c := range s.checks {
		if c.title == title {
			c.result[i] = result
			return
		}
	}
	c := &check{title: title}
	c.result[i] = result
	s.checks = append(s.checks, c)
}

// say prints a progress line about pair p.
func (s *suite) say(p int, format string, args ...any) {
	progress("[%s pair %d/%d] %s", s.backend.Name, p, s.pairs, fmt.Sprintf(format, args...))
}

// pairInitial runs, on fresh repositories, the initial backup of the data set,
// then a second one with nothing changed, then a restore of the latest
// snapshot (verified against the data set in the first pair).
func (s *suite) pairInitial(ctx context.Context, p int) error {
	var repos [2]*Repo
	defer removeRepos(&repos)
	for i, t := range s.tools() {
		r, err := s.backend.Repo(ctx, t.name, fmt.Sprintf("p%d", p))
		if err != nil {
			return err
		}
		repos[i] = r
		if err := t.init(ctx, r); err != nil {
			return err
		}
		res, err := t.backup(ctx, r, s.data.Dir)
		if err != nil {
			return err
		}
		size, err := r.Size(ctx)
		if err != nil {
			return err
		}
		s.record("rss", i, float64(res.MaxRSS))
		if floor := selfPeakRSS(); res.MaxRSS <= floor {
			s.note("peak RSS above the runner's own (a real measurement)", i, fmt.Sprintf("FAIL: %s ≤ runner's %s", iec(res.MaxRSS), iec(floor)))
			s.say(p, "WARNING: %s's peak RSS %s is not above the runner's own %s; it is not a measurement", t.name, iec(res.MaxRSS), iec(floor))
		}
		s.record("size", i, float64(size))
		s.recordRun(p, "initial", i, res, fmt.Sprintf("  peak RSS %s  repository %s | %s", iec(res.MaxRSS), iec(size), t.summary(res)))
	}
	if s.want("nochange") {
		for i, t := range s.tools() {
			res, err := t.backup(ctx, repos[i], s.data.Dir)
			if err != nil {
				return err
			}
			s.recordRun(p, "nochange", i, res, " | "+t.summary(res))
		}
	}
	if s.want("restore") {
		for i := range s.tools() {
			if err := s.restoreAndCheck(ctx, p, i, repos[i], s.data.Dir, "restore", "restored tree equals the data set"); err != nil {
				return err
			}
		}
	}
	return nil
}

// untimedBackups backs dir up with both tools into repos, untimed, and
// says so: "label … untimed: note".
func (s *suite) untimedBackups(ctx context.Context, p int, repos *[2]*Repo, dir, label, note string) error {
	for i, t := range s.tools() {
		res, err := t.backup(ctx, repos[i], dir)
		if err != nil {
			return err
		}
		s.say(p, "%-9s %-6s %7.2f s (cpu %6.2f s) untimed: %s", label, t.name, res.Wall.Seconds(), res.CPU.Seconds(), note)
	}
	return nil
}

// pairMutation copies the data set to the same path for both tools, backs
// the copy up (untimed, the parent), applies mutation round 1 to it and
// times the backup of the mutated copy. In the first pair the latest
// snapshot is then restored and compared with the mutated copy.
func (s *suite) pairMutation(ctx context.Context, p int) error {
	dir, repos, done, err := s.freshCopy(ctx, p, "mut")
	if err != nil {
		return err
	}
	defer done()
	if err := s.untimedBackups(ctx, p, repos, dir, "parent", "backup of the unmutated copy"); err != nil {
		return err
	}
	if err := s.data.mutate(ctx, s.run, dir, 1); err != nil {
		return err
	}
	for i, t := range s.tools() {
		res, err := t.backup(ctx, repos[i], dir)
		if err != nil {
			return err
		}
		s.recordRun(p, "mutation", i, res, " | "+t.summary(res))
	}
	if p == 1 {
		for i := range s.tools() {
			if err := s.restoreAndCheck(ctx, p, i, repos[i], dir, "", "restored tree equals the mutated copy"); err != nil {
				return err
			}
		}
	}
	return nil
}

// restoreAndCheck restores the latest snapshot of repo with tool i into a
// fresh empty directory and records the run under metric id (none: untimed).
// In the first pair it compares the restored tree with src and records the
// result as a check.
func (s *suite) restoreAndCheck(ctx context.Context, p, i int, repo *Repo, src, id, title string) error {
	t := s.tools()[i]
	target := filepath.Join(s.work, "restore-"+t.name)
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	defer os.RemoveAll(target)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	res, err := t.restore(ctx, repo, target)
	if err != nil {
		return err
	}
	if id != "" {
		s.recordRun(p, id, i, res, "")
	} else {
		s.say(p, "%-9s %-6s %7.2f s (cpu %6.2f s) untimed: restore of the mutated snapshot", "restore", t.name, res.Wall.Seconds(), res.CPU.Seconds())
	}
	if p == 1 {
		s.say(p, "checking %s's restore against %s", t.name, src)
		problems := compareTrees(ctx, src, filepath.Join(target, src))
		result := "pass"
		if len(problems) > 0 {
			result = fmt.Sprintf("FAIL (%d): %s", len(problems), summarize(problems, 3))
			for _, pr := range summarizeList(problems, 20) {
				s.say(p, "  %s: %s", t.name, pr)
			}
		}
		s.note(title, i, result)
		s.say(p, "%s: %s: %s", t.name, title, result)
	}
	return nil
}

// removeRepos deletes the repositories made so far.
func removeRepos(repos *[2]*Repo) {
	for _, r := range repos {
		if r != nil {
			r.Remove(context.Background())
		}
	}
}

// eachPair runs pair for pairs 1 to s.pairs, stopping at the first error.
func (s *suite) eachPair(ctx context.Context, pair func(context.Context, int) error) error {
	for p := 1; p <= s.pairs; p++ {
		if err := pair(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// freshCopy copies the data set to a fresh <work>/tree/data and makes and
// initializes a new repository of each tool, named p<P>-<tag>. done
// removes both; it is also safe to call after an error.
func (s *suite) freshCopy(ctx context.Context, p int, tag string) (dir string, repos *[2]*Repo, done func(), err error) {
	tree := filepath.Join(s.work, "tree")
	dir = filepath.Join(tree, "data")
	if err := os.RemoveAll(tree); err != nil {
		return "", nil, func() {}, err
	}
	s.say(p, "copying the data set to %s", dir)
	if err := s.data.copyTo(ctx, s.run, dir); err != nil {
		os.RemoveAll(tree)
		return "", nil, func() {}, err
	}
	if repos, err = s.initRepos(ctx, fmt.Sprintf("p%d-%s", p, tag)); err != nil {
		os.RemoveAll(tree)
		return "", nil, func() {}, err
	}
	return dir, repos, func() {
		removeRepos(repos)
		os.RemoveAll(tree)
	}, nil
}

// initRepos makes and initializes a fresh repository of each tool, named
// <tag>; on an error it removes what it made.
func (s *suite) initRepos(ctx context.Context, tag string) (*[2]*Repo, error) {
	repos := new([2]*Repo)
	for i, t := range s.tools() {
		r, err := s.backend.Repo(ctx, t.name, tag)
		if err == nil {
			repos[i] = r
			err = t.init(ctx, r)
		}
		if err != nil {
			removeRepos(repos)
			return nil, err
		}
	}
	return repos, nil
}
