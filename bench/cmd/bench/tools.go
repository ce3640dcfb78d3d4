package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// toolsScale is the size of the tools section's fixtures.
type toolsScale struct {
	dumpMiB      int // the random file dump reads
	dirs, perDir int // the find tree: dirs directories of perDir files
	snaps        int // snapshots of the find tree
}

var (
	toolsFull  = toolsScale{dumpMiB: 512, dirs: 100, perDir: 100, snaps: 50}
	toolsSmall = toolsScale{dumpMiB: 32, dirs: 20, perDir: 50, snaps: 10}
)

// The find patterns: few matches (the files some rounds add) and many
// (every HTML page of every snapshot).
const (
	findFew  = "new4*.php"
	findMany = "*.html"
)

// toolsDefs are the rows of the tools section.
func toolsDefs(z toolsScale) []metric {
	tree := fmt.Sprintf("%d snapshots of a %s-file tree", z.snaps, thousands(int64(z.dirs*z.perDir)))
	return []metric{
		{id: "dump", title: fmt.Sprintf("`restore dump` of a %d MiB random file to /dev/null vs `restic dump`", z.dumpMiB), unit: seconds, bar: 1.0},
		{id: "find", title: fmt.Sprintf("`restore find '%s'` across %s vs `restic find`", findFew, tree), unit: seconds, bar: 0.5},
		{id: "find-many", title: fmt.Sprintf("`restore find '%s'` across the same vs `restic find` (informational)", findMany), unit: seconds},
		{id: "diff", title: "`restore diff` of two snapshots of the data set one mutation round apart vs `restic diff`", unit: seconds, bar: 0.5},
		{id: "stats", title: "`restore stats --json latest` vs `restic stats --json --mode restore-size latest`, the mutated data set (informational)", unit: seconds},
		{id: "dump-rss", title: "peak RSS of the dump (informational)", unit: byteCount},
		{id: "find-rss", title: fmt.Sprintf("peak RSS of the find of '%s' (informational)", findFew), unit: byteCount},
		{id: "diff-rss", title: "peak RSS of the diff (informational)", unit: byteCount},
		{id: "stats-rss", title: "peak RSS of the stats (informational)", unit: byteCount},
	}
}

// Check rows of the tools section.
const (
	toolsDumpSame  = "the dump's output is the file (sha256, first pair)"
	toolsFindFew   = "find '" + findFew + "' reports as many matches as the generator made (each pair)"
	toolsFindMany  = "find '" + findMany + "' reports as many matches as the generator made (each pair)"
	toolsDiffSame  = "both diffs count the same files and entries added and removed and files changed (each pair)"
	toolsStatsSame = "both give the same restore size in bytes (each pair)"
)

// toolsCorrect are the checks of what the tools said: a FAIL in any of
// them fails the section (a peak RSS at the runner's floor does not).
var toolsCorrect = []string{toolsDumpSame, toolsFindFew, toolsFindMany, toolsDiffSame, toolsStatsSame}

// toolsBackend is the tools section: local repositories below root.
func toolsBackend(root string, z toolsScale) Backend {
	b := localBackend(root)
	b.Name = "tools"
	b.Title = "Restore toolkit: `restore dump`, `find`, `diff`, `stats` vs restic's"
	b.Defs = toolsDefs(z)
	b.Procedure = fmt.Sprintf("Once, untimed, each tool builds three local repositories from the same data: (1) a %d MiB "+
		"file of random bytes (ChaCha8, fixed seed) backed up once; (2) a tree of %d directories of %d small text files "+
		"(200 B–4 KB; half .html, 3/10 .php, 1/5 .css; fixed seed) backed up %d times, with between two backups %d files "+
		"rewritten, %d new files `dNNN/newK-J.php` (K the round) and %d files deleted; the runner keeps the list of "+
		"files in each snapshot and so knows how many matches each find pattern must give; (3) a copy of the data set "+
		"(cp -a, at the same path for both) backed up, given mutation round 1 (mkdata.py --mutate --round 1) and "+
		"backed up again. Then each pair runs, ours then restic each time: `restore dump --repo R --index-key K "+
		"--identity D latest PATH` vs `restic dump latest PATH`, both writing straight to /dev/null; `restore find "+
		"PATTERN --repo R --index-key K` vs `restic find PATTERN` for '%s' and '%s' (default text output, read by the "+
		"runner as it comes: ours' summary line, restic's lines of paths); `restore diff --repo R --index-key K OLD "+
		"NEW` vs `restic diff OLD NEW` (text output, both summaries parsed: ours' entries and files are restic's "+
		"files + dirs + others and files); `restore stats --json --repo R --index-key K latest` vs `restic stats "+
		"--json --mode restore-size latest`. In the first pair each dump runs once more, untimed, into a SHA-256 of "+
		"its output, which must equal the file's. Index key only wherever ours needs no more; restic with its "+
		"defaults and its cache in the work directory.",
		z.dumpMiB, z.dirs, z.perDir, z.snaps, findEdits, findNew, findDeletes, findFew, findMany)
	return b
}

// toolsFixture is what the pairs read: the three repositories of each tool
// and what the runner knows about their contents.
type toolsFixture struct {
	dump, find, diff *[2]*Repo

	dumpPath string   // the random file's snapshot path
	dumpSum  [32]byte // and its SHA-256
	matches  map[string]int
	from, to [2]string // the diff's snapshots of each tool
	devNull  *os.File
}

// toolsSection runs the tools section: the fixtures, the pairs, the
// report. A failed check fails the section, after it is written.
func (s *suite) toolsSection(ctx context.Context, c *config, env *envInfo, work string) error {
	z := toolsFull
	if c.small {
		z = toolsSmall
	}
	s.backend = toolsBackend(filepath.Join(work, "repos"), z)
	if !s.any() {
		return nil
	}
	s.selectMetrics()
	if err := os.MkdirAll(s.work, 0o755); err != nil {
		return err
	}
	fx := &toolsFixture{}
	defer func() {
		for _, r := range []*[2]*Repo{fx.dump, fx.find, fx.diff} {
			if r != nil {
				removeRepos(r)
			}
		}
	}()
	var err error
	if fx.devNull, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
		return err
	}
	defer fx.devNull.Close()
	if s.want("dump") || s.want("dump-rss") {
		if err := s.toolsDumpRepos(ctx, fx, z); err != nil {
			return err
		}
	}
	if s.want("find") || s.want("find-many") || s.want("find-rss") {
		if err := s.toolsFindRepos(ctx, fx, z); err != nil {
			return err
		}
	}
	if s.want("diff") || s.want("diff-rss") || s.want("stats") || s.want("stats-rss") {
		if err := s.toolsDiffRepos(ctx, fx); err != nil {
			return err
		}
	}
	if err := s.eachPair(ctx, func(ctx context.Context, p int) error { return s.pairTools(ctx, p, fx) }); err != nil {
		return err
	}
	if err := s.publish(env, c.out); err != nil {
		return err
	}
	var failed []string
	for _, title := range toolsCorrect {
		c := s.findCheck(title)
		if c == nil {
			continue // not measured (-only)
		}
		for i, r := range c.result {
			if strings.HasPrefix(r, "FAIL") {
				failed = append(failed, fmt.Sprintf("%s: %s: %s", s.tools()[i].name, title, r))
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("tools: %d check(s) failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}

// toolsDumpRepos writes the random file, backs it up with both tools and
// removes it.
func (s *suite) toolsDumpRepos(ctx context.Context, fx *toolsFixture, z toolsScale) error {
	dir := filepath.Join(s.work, "dump")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fx.dumpPath = filepath.Join(dir, "random.bin")
	progress("[tools] writing %d MiB of random bytes to %s", z.dumpMiB, fx.dumpPath)
	sum, err := writeRandom(fx.dumpPath, int64(z.dumpMiB)<<20)
	if err != nil {
		return err
	}
	fx.dumpSum = sum
	if fx.dump, err = s.initRepos(ctx, "dump"); err != nil {
		return err
	}
	return s.untimedBackups(ctx, 0, fx.dump, dir, "backup", "the random file")
}

// toolsFindRepos builds the find tree's history in a repository of each
// tool and counts the matches each pattern must give.
func (s *suite) toolsFindRepos(ctx context.Context, fx *toolsFixture, z toolsScale) error {
	dir := filepath.Join(s.work, "find", "tree")
	defer os.RemoveAll(filepath.Dir(dir))
	progress("[tools] writing a tree of %d × %d files to %s", z.dirs, z.perDir, dir)
	t, err := newFindTree(dir, z.dirs, z.perDir)
	if err != nil {
		return err
	}
	if fx.find, err = s.initRepos(ctx, "find"); err != nil {
		return err
	}
	fx.matches = map[string]int{}
	for k := range z.snaps {
		if k > 0 {
			if err := t.round(k); err != nil {
				return err
			}
		}
		if err := s.untimedBackups(ctx, 0, fx.find, dir, "history", fmt.Sprintf("backup %d of %d of the find tree", k+1, z.snaps)); err != nil {
			return err
		}
		for _, pat := range []string{findFew, findMany} {
			fx.matches[pat] += t.count(pat)
		}
	}
	progress("[tools] matches across the %d snapshots: '%s' %d, '%s' %d", z.snaps, findFew, fx.matches[findFew], findMany, fx.matches[findMany])
	return nil
}

// toolsDiffRepos backs up a copy of the data set before and after mutation
// round 1 with both tools and notes the two snapshots of each.
func (s *suite) toolsDiffRepos(ctx context.Context, fx *toolsFixture) error {
	dir := filepath.Join(s.work, "tree", "data")
	defer os.RemoveAll(filepath.Dir(dir))
	progress("[tools] copying the data set to %s", dir)
	if err := s.data.copyTo(ctx, s.run, dir); err != nil {
		return err
	}
	repos, err := s.initRepos(ctx, "diff")
	if err != nil {
		return err
	}
	fx.diff = repos
	if err := s.untimedBackups(ctx, 0, repos, dir, "parent", "backup of the unmutated copy"); err != nil {
		return err
	}
	if err := s.data.mutate(ctx, s.run, dir, 1); err != nil {
		return err
	}
	if err := s.untimedBackups(ctx, 0, repos, dir, "mutation", "backup of the mutated copy"); err != nil {
		return err
	}
	for i := range s.tools() {
		ids, err := s.snapshotIDs(ctx, i, repos[i])
		if err != nil {
			return err
		}
		if len(ids) != 2 {
			return fmt.Errorf("%s: %d snapshots in the diff repository, want 2", s.tools()[i].name, len(ids))
		}
		fx.from[i], fx.to[i] = ids[0], ids[1]
	}
	return nil
}

// snapshotIDs lists the IDs of the snapshots in tool i's repo, oldest first.
func (s *suite) snapshotIDs(ctx context.Context, i int, r *Repo) ([]string, error) {
	var res runResult
	var err error
	if i == 0 {
		res, err = s.run.run(ctx, r.Env, s.ours.restoreBin, "snapshots", "--json", "--repo", r.URL, "--index-key", s.ours.indexKey(r))
	} else {
		res, err = s.restic.exec(ctx, r, "snapshots", "--json")
	}
	if err != nil {
		return nil, err
	}
	var list []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
		return nil, fmt.Errorf("%s snapshots --json: %v", s.tools()[i].name, err)
	}
	ids := make([]string, len(list))
	for k, sn := range list {
		ids[k] = sn.ID
	}
	return ids, nil
}

// oursArgs are the arguments of a `restore CMD` that needs only the index
// key, on repository r.
func (s *suite) oursArgs(r *Repo, cmd string, args ...string) []string {
	return append([]string{cmd, "--repo", r.URL, "--index-key", s.ours.indexKey(r)}, args...)
}

// toolRun runs tool i on r: ours `restore ARGS…`, restic `restic -r R
// ARGS…`, its standard output to stdout (nil: kept in the result).
func (s *suite) toolRun(ctx context.Context, i int, r *Repo, stdout io.Writer, ours, restic []string) (runResult, error) {
	if i == 0 {
		return s.run.runTo(ctx, r.Env, stdout, s.ours.restoreBin, ours...)
	}
	return s.restic.execTo(ctx, r, stdout, restic...)
}

// pairTools runs each selected measurement once per tool, ours first.
func (s *suite) pairTools(ctx context.Context, p int, fx *toolsFixture) error {
	if fx.dump != nil {
		if err := s.toolsDump(ctx, p, fx); err != nil {
			return err
		}
	}
	if fx.find != nil {
		for _, f := range []struct {
			id, pat, check string
			selected       bool
		}{
			{"find", findFew, toolsFindFew, s.want("find") || s.want("find-rss")},
			{"find-many", findMany, toolsFindMany, s.want("find-many")},
		} {
			if !f.selected {
				continue
			}
			if err := s.toolsFind(ctx, p, fx, f.id, f.pat, f.check); err != nil {
				return err
			}
		}
	}
	if fx.diff != nil && (s.want("diff") || s.want("diff-rss")) {
		if err := s.toolsDiff(ctx, p, fx); err != nil {
			return err
		}
	}
	if fx.diff != nil && (s.want("stats") || s.want("stats-rss")) {
		return s.toolsStats(ctx, p, fx)
	}
	return nil
}

// measured records a timed run of tool i under id and its peak RSS under
// id-rss.
func (s *suite) measured(p int, id string, i int, res runResult, what string) {
	s.recordRun(p, id, i, res, fmt.Sprintf("  peak RSS %s%s", iec(res.MaxRSS), what))
	s.record(id+"-rss", i, float64(res.MaxRSS))
	s.checkFloor(p, i, res.MaxRSS)
}

// noteEach records pair p's result of a check made in every pair: the
// first FAIL stays, and a pass says what it saw.
func (s *suite) noteEach(title string, i int, ok bool, saw string) {
	if c := s.findCheck(title); c != nil && strings.HasPrefix(c.result[i], "FAIL") {
		return
	}
	if ok {
		s.note(title, i, "pass ("+saw+")")
	} else {
		s.note(title, i, "FAIL: "+saw)
	}
}

// toolsDump times both dumps to /dev/null; in the first pair it also
// checks what each writes.
func (s *suite) toolsDump(ctx context.Context, p int, fx *toolsFixture) error {
	for i, r := range fx.dump {
		ours := s.oursArgs(r, "dump", "--identity", s.ours.dataKey, "latest", fx.dumpPath)
		restic := []string{"dump", "latest", fx.dumpPath}
		res, err := s.toolRun(ctx, i, r, fx.devNull, ours, restic)
		if err != nil {
			return err
		}
		s.measured(p, "dump", i, res, "")
		if p != 1 {
			continue
		}
		h := sha256.New()
		if _, err := s.toolRun(ctx, i, r, h, ours, restic); err != nil {
			return err
		}
		got := h.Sum(nil)
		s.noteEach(toolsDumpSame, i, bytes.Equal(got, fx.dumpSum[:]), fmt.Sprintf("sha256 %x…, the file's %x…", got[:6], fx.dumpSum[:6]))
	}
	return nil
}

// toolsFind times both finds of pat (row id) and checks their counts.
func (s *suite) toolsFind(ctx context.Context, p int, fx *toolsFixture, id, pat, check string) error {
	for i, r := range fx.find {
		// ours ends with "N match(es) in …"; restic prints each match's path
		t := &lineTally{prefix: "/"}
		res, err := s.toolRun(ctx, i, r, t, s.oursArgs(r, "find", pat), []string{"find", pat})
		if err != nil {
			return err
		}
		t.Close()
		got := t.n
		if i == 0 {
			if _, err := fmt.Sscanf(string(t.last), "%d match", &got); err != nil {
				return fmt.Errorf("restore find %s: last line %q: %v", pat, t.last, err)
			}
		}
		want := fx.matches[pat]
		if id == "find" {
			s.measured(p, id, i, res, fmt.Sprintf(" | %d matches", got))
		} else {
			s.recordRun(p, id, i, res, fmt.Sprintf(" | %d matches", got))
		}
		s.noteEach(check, i, got == want, fmt.Sprintf("%s, want %s", thousands(int64(got)), thousands(int64(want))))
	}
	return nil
}

// toolsDiff times both diffs and checks that they agree.
func (s *suite) toolsDiff(ctx context.Context, p int, fx *toolsFixture) error {
	var got [2]diffCounts
	for i, r := range fx.diff {
		res, err := s.toolRun(ctx, i, r, nil, s.oursArgs(r, "diff", fx.from[i], fx.to[i]), []string{"diff", fx.from[i], fx.to[i]})
		if err != nil {
			return err
		}
		if i == 0 {
			got[i], err = oursDiffCounts(lastLine(res.Stdout))
		} else {
			got[i], err = resticDiffCounts(res.Stdout)
		}
		if err != nil {
			return err
		}
		s.measured(p, "diff", i, res, " | "+got[i].String())
	}
	for i := range got {
		s.noteEach(toolsDiffSame, i, got[0] == got[1], got[i].String())
	}
	return nil
}

// toolsStats times both restore sizes of the latest snapshot and checks
// that they agree.
func (s *suite) toolsStats(ctx context.Context, p int, fx *toolsFixture) error {
	var size [2]int64
	for i, r := range fx.diff {
		res, err := s.toolRun(ctx, i, r, nil, s.oursArgs(r, "stats", "--json", "latest"),
			[]string{"stats", "--json", "--mode", "restore-size", "latest"})
		if err != nil {
			return err
		}
		var out struct {
			Total struct {
				Bytes int64 `json:"bytes"`
			} `json:"total"`
			TotalSize int64 `json:"total_size"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil {
			return fmt.Errorf("%s stats --json: %v", s.tools()[i].name, err)
		}
		size[i] = out.Total.Bytes + out.TotalSize // each tool fills one of them
		s.measured(p, "stats", i, res, fmt.Sprintf(" | restore size %s bytes", thousands(size[i])))
	}
	for i := range size {
		s.noteEach(toolsStatsSame, i, size[0] == size[1], thousands(size[i])+" bytes")
	}
	return nil
}
