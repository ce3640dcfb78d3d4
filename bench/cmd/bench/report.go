package main

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// envInfo describes the machine, the tools and the run, for the report header.
type envInfo struct {
	date, uname, cpu, goVersion, load, tree string
	nproc                                   int
	ours, restic, data, run, fs             string
}

// describeEnv gathers the report header.
func describeEnv(ctx context.Context, c *config, ds *dataset, ours, restic *tool) (*envInfo, error) {
	e := &envInfo{
		date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		cpu:       cpuModel(),
		nproc:     runtime.NumCPU(),
		goVersion: runtime.Version(),
		ours:      ours.version,
		restic:    restic.version,
		data:      ds.Summary(),
	}
	out, err := exec.CommandContext(ctx, "uname", "-srm").Output()
	if err != nil {
		return nil, fmt.Errorf("uname: %v", err)
	}
	e.uname = strings.TrimSpace(string(out))
	e.load = loadAvg()
	e.tree = "unknown"
	if out, err := exec.CommandContext(ctx, "git", "-C", c.root, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		e.tree = strings.TrimSpace(string(out))
		if st, err := exec.CommandContext(ctx, "git", "-C", c.root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			e.tree += " with uncommitted changes"
		}
	}
	e.run = fmt.Sprintf("%d pair(s)", c.pairs)
	if c.only != nil {
		e.run += fmt.Sprintf(", only measurements matching `%s`", c.only)
	}
	if c.small {
		e.run += ", small data set (quick check, not a result)"
	}
	return e, nil
}

// loadAvg is the 1, 5 and 15 minute load averages. The machines are shared:
// a high load says the run competed for the cores.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// pageReportingDir holds the parameters of the kernel's free page
// reporting (a VM's guest handing free memory back to its host).
const pageReportingDir = "/sys/module/page_reporting/parameters"

// pageReporting describes, for the report header, a kernel that has
// handed free memory back to its host, from its counter in dir: on such a
// VM a page the host took back faults on the host when it is next used,
// so a tool that fills new page-cache pages (rsync's receiver above all)
// runs faster or slower with the host's state, from run to run. It is ""
// where the kernel has no such counter or has reported nothing.
func pageReporting(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "reported_kib"))
	if err != nil {
		return ""
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || kib <= 0 {
		return ""
	}
	return fmt.Sprintf(" The kernel hands free memory back to the host (free page reporting: %s so far); a page "+
		"the host took back faults on the host when next used, so writing into new page-cache pages (rsync's "+
		"receiver above all) is faster or slower from run to run with the host's state.", iec(kib<<10))
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// binaryVersion says which commit and Go version a Go binary was built from.
func binaryVersion(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "(build info unreadable)"
	}
	rev, dirty := "no VCS stamp", ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = " (modified tree)"
		}
	}
	return fmt.Sprintf("%s%s, built with %s", rev, dirty, bi.GoVersion)
}

// median returns the median of vs (the mean of the middle two for an even count).
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// format prints one value of a metric.
func (m *metric) format(v float64) string {
	switch m.unit {
	case seconds:
		return fmt.Sprintf("%.2f s", v)
	case millis:
		return fmt.Sprintf("%.0f ms", v*1000)
	}
	return iec(int64(v))
}

// row is the metric's table row: medians, ratio, bar and verdict.
func (m *metric) row() string {
	if m.anchorless {
		if len(m.vals[0]) == 0 {
			return fmt.Sprintf("| %s | n/a | — | — | %s | n/a |", m.title, m.barText())
		}
		o := median(m.vals[0])
		verdict := "—"
		if m.absBar > 0 {
			verdict = "pass"
			if o > m.absBar {
				verdict = "**FAIL**"
			}
		}
		return fmt.Sprintf("| %s | %s | — | — | %s | %s |", m.title, m.format(o), m.barText(), verdict)
	}
	if len(m.vals[0]) == 0 || len(m.vals[1]) == 0 {
		return fmt.Sprintf("| %s | n/a | n/a | n/a | ≤ %g | n/a |", m.title, m.bar)
	}
	o, r := median(m.vals[0]), median(m.vals[1])
	ratio := o / r
	if m.bar == 0 { // informational: a ratio, no bar
		return fmt.Sprintf("| %s | %s | %s | %.3f | — | — |", m.title, m.format(o), m.format(r), ratio)
	}
	verdict := "pass"
	if ratio > m.bar {
		verdict = "**FAIL**"
	}
	return fmt.Sprintf("| %s | %s | %s | %.3f | ≤ %g | %s |", m.title, m.format(o), m.format(r), ratio, m.bar, verdict)
}

// barText is the bar column of an anchorless row.
func (m *metric) barText() string {
	if m.absBar > 0 {
		return "≤ " + m.format(m.absBar)
	}
	return "—"
}

// section renders one backend's results, markers included.
func section(e *envInfo, s *suite) string {
	var b strings.Builder
	name := s.backend.Name
	anchor, anchorVersion := "restic", e.restic
	if s.backend.Anchor != "" {
		anchor, anchorVersion = s.backend.Anchor, s.backend.AnchorVersion
	}
	fmt.Fprintf(&b, "<!-- bench:%s:begin -->\n## %s\n\n", name, s.backend.Title)
	fmt.Fprintf(&b, "Measured %s on `%s`, %s, %d cores (load average at start %s, at end %s).%s\n",
		e.date, e.uname, e.cpu, e.nproc, e.load, loadAvg(), pageReporting(pageReportingDir))
	fmt.Fprintf(&b, "Ours: %s (repository HEAD during the run: %s). Anchor: %s. Runner: %s.\n\n", e.ours, e.tree, anchorVersion, e.goVersion)
	fmt.Fprintf(&b, "Data set: %s. File system: %s.\n\n", e.data, e.fs)
	if s.backend.Procedure != "" {
		fmt.Fprintf(&b, "Procedure: %s. %s ", e.run, s.backend.Procedure)
		if s.want("rss") {
			fmt.Fprintf(&b, "Peak RSS is the process's ru_maxrss (the runner's own peak, a floor for it, was %s). ", iec(selfPeakRSS()))
		}
	} else {
		fmt.Fprintf(&b, "Procedure: %s, ours then restic (A B A B …), each pair on fresh repositories; the table gives the "+
			"median of each side and ratio = ours / restic of the medians. The data set was read once before the first run "+
			"(warm page cache for both) and `sync` runs before every command, outside the timed interval. The binaries are "+
			"copied once at the start, so every run uses the same ones. Ours times only "+
			"`syncd snapshot` (after `syncd init`), restic only `restic backup` (after `restic init`); both with their default "+
			"settings and all cores. ", e.run)
		if s.want("mutation") {
			b.WriteString("The mutation round (mkdata.py --mutate --round 1) is applied to a copy at the same path " +
				"for both tools, whose unmutated state is the parent snapshot. ")
		}
		if s.want("rss") {
			fmt.Fprintf(&b, "Peak RSS is the process's ru_maxrss (the runner's own peak, a floor for it, was %s). ", iec(selfPeakRSS()))
		}
	}
	b.WriteString("The machine is shared: see the load averages, and the CPU time of each run below, which competition " +
		"for the cores does not inflate the way it does wall time.\n\n")
	if s.backend.Note != "" {
		b.WriteString(s.backend.Note + "\n\n")
	}
	fmt.Fprintf(&b, "| measurement | ours (median) | %s (median) | ratio | bar | result |\n", anchor)
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, m := range s.metrics {
		b.WriteString(m.row() + "\n")
	}
	if len(s.checks) > 0 {
		if s.backend.Defs != nil {
			fmt.Fprintf(&b, "\nChecks:\n\n| check | ours | %s |\n| --- | --- | --- |\n", anchor)
		} else {
			b.WriteString("\nCorrectness (first pair; `diff -rq --no-dereference` plus lstat of every path: mode, size, " +
				"mtime in ns, owner, symlink target, hard-link groups):\n\n| check | ours | restic |\n| --- | --- | --- |\n")
		}
		for _, c := range s.checks {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", c.title, orNA(c.result[0]), orNA(c.result[1]))
		}
	}
	b.WriteString("\n<details><summary>every run</summary>\n\n")
	for _, m := range s.metrics {
		if m.anchorless {
			fmt.Fprintf(&b, "- %s: ours %s\n", m.title, m.list(0))
			continue
		}
		fmt.Fprintf(&b, "- %s: ours %s; %s %s\n", m.title, m.list(0), anchor, m.list(1))
	}
	fmt.Fprintf(&b, "\n</details>\n\n_Written by `go run ./bench/cmd/bench` (`make bench`); edits between the markers are overwritten._\n")
	fmt.Fprintf(&b, "<!-- bench:%s:end -->\n", name)
	return b.String()
}

// publish prints the suite's section and, when out is set, writes it into
// that file between the section's markers (see updateFile).
func (s *suite) publish(env *envInfo, out string) error {
	md := section(env, s)
	fmt.Println(md)
	if out == "" {
		return nil
	}
	if err := updateFile(out, s.backend.Name, md); err != nil {
		return err
	}
	progress("wrote section %q of %s", s.backend.Name, out)
	return nil
}

// list prints every value of side i, in run order.
func (m *metric) list(i int) string {
	var parts []string
	for k, v := range m.vals[i] {
		if k < len(m.cpu[i]) {
			parts = append(parts, fmt.Sprintf("%s (cpu %.2f s)", m.format(v), m.cpu[i][k]))
		} else {
			parts = append(parts, m.format(v))
		}
	}
	if len(parts) == 0 {
		return "n/a"
	}
	return strings.Join(parts, ", ")
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

// intro starts a results file that does not exist yet.
const intro = `# Benchmarks

Side-by-side measurements of syncd against its anchors (restic, rsync), on the
same machine in the same run; the data set, the bars and the procedure are in
../shared/BENCHMARKS.md. Each section below is written by a runner between its
own markers; text outside the markers is kept.

`

// updateFile writes section md into path, replacing the text between the
// markers of section name (inclusive) or, when they are not there, appending
// it. Everything else in the file is kept; a missing file is created.
func updateFile(path, name, md string) error {
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return os.WriteFile(path, []byte(intro+md), 0o644)
	}
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(replaceSection(string(old), name, md)), 0o644)
}

// replaceSection returns doc with the section of name replaced by md.
func replaceSection(doc, name, md string) string {
	begin, end := fmt.Sprintf("<!-- bench:%s:begin -->", name), fmt.Sprintf("<!-- bench:%s:end -->", name)
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		if doc != "" && !strings.HasSuffix(doc, "\n\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		return doc + md
	}
	j += len(end)
	if j < len(doc) && doc[j] == '\n' {
		j++
	}
	return doc[:i] + md + doc[j:]
}
