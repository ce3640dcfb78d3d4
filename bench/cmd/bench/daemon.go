package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/syncd/syncd/daemon"
)

// daemonMetricDefs are the rows of the daemon section (bars of
// ../shared/BENCHMARKS.md and the daemon issue).
var daemonMetricDefs = []metric{
	{id: "nochange", title: "daemon snapshot from the index, nothing changed (vs restic backup)", unit: seconds, bar: 0.1},
	{id: "mutation", title: "daemon snapshot from the index after one mutation round (vs restic backup)", unit: seconds, bar: 0.2},
	{id: "latency-p50", title: "event-to-indexed latency, 100 small files, p50", unit: millis, anchorless: true},
	{id: "latency-p99", title: "event-to-indexed latency, 100 small files, p99", unit: millis, anchorless: true, absBar: 0.3},
	{id: "latency-max", title: "event-to-indexed latency, 100 small files, max", unit: millis, anchorless: true},
	{id: "rss", title: "daemon peak RSS over the section (vs restic's initial backup of the copy)", unit: byteCount, bar: 1.0},
	{id: "scan", title: "daemon start to ready: full scan of the copy (untimed, informational)", unit: seconds, anchorless: true},
	{id: "settle", title: "daemon end of the mutation round to ready (untimed, informational)", unit: seconds, anchorless: true},
}

// latencyFiles is how many small files the latency series writes, and
// latencyGap the pause between two writes.
const (
	latencyFiles = 100
	latencyGap   = 10 * time.Millisecond
	pollEvery    = 5 * time.Millisecond
	// quietBeforeReady: /readyz may say ready right after a write, before
	// the 100 ms debounce has fired; wait this long after the last write
	// before believing it.
	quietBeforeReady = 300 * time.Millisecond
)

// daemonBackend is the daemon section: local repositories below root.
func daemonBackend(root string) Backend {
	b := localBackend(root)
	b.Name = "daemon"
	b.Title = "Daemon (`syncd run`): snapshots from the index, event latency, peak RSS"
	b.Defs = daemonMetricDefs
	b.Procedure = "Each pair works on a fresh copy of the data set (cp -a, at the same path for both tools) and fresh " +
		"local repositories. Ours: `syncd init`, then `syncd run --config` on the copy (default settings: debounce " +
		"100 ms), wait until it is ready (/readyz 200 and /status pending 0, polled every 5 ms), then an untimed " +
		"initial `syncd snapshot --config`. Restic: `restic init` and an untimed backup of the copy (the parent; " +
		"its peak RSS is the anchor of the RSS row). Then, nothing changed, ours times `syncd snapshot --config` (a " +
		"snapshot from the daemon's index, no walk) and restic times `restic backup` of the same copy. Then the " +
		"mutation round (mkdata.py --mutate --round 1) is applied to the copy while the daemon runs; the runner waits " +
		"300 ms after it ends, then until the daemon is ready with nothing pending — so the daemon indexes the " +
		"mutation before the timed snapshot, by design: that is the point of the daemon; the time it took is the " +
		"informational \"end of the mutation round to ready\" row (it includes the 300 ms wait). Then ours times " +
		"`syncd snapshot --config` and restic times `restic backup` of the mutated copy. Restic runs while the " +
		"(idle) daemon is running. In the first pair only, with the daemon settled, 100 files of 1 KiB are written " +
		"one by one into the folder, 10 ms apart; /status is polled every 5 ms and each file's latency is from the " +
		"start of its write to the first poll whose folder \"files\" count includes it (so latencies carry up to " +
		"~5 ms of polling granularity). Finally the daemon gets SIGTERM and its peak RSS is its ru_maxrss over the " +
		"whole section (scan, snapshots, mutation, latency series). `sync` runs before every timed command, outside " +
		"the timed interval; the binaries are copied once at the start. The CPU time of ours' snapshot " +
		"runs is the client's plus the daemon's during the command (from /proc/PID/stat, 10 ms ticks), since the " +
		"daemon does the work."
	return b
}

// pairDaemon runs one pair of the daemon section on a fresh copy of the
// data set (see daemonBackend's Procedure).
func (s *suite) pairDaemon(ctx context.Context, p int) error {
	dir, repos, done, err := s.freshCopy(ctx, p, "daemon")
	if err != nil {
		return err
	}
	defer done()
	ddir := filepath.Join(s.work, fmt.Sprintf("daemon-p%d", p))
	if err := os.RemoveAll(ddir); err != nil {
		return err
	}
	defer os.RemoveAll(ddir)

	// Ours: start the daemon on the copy and let it index it.
	start := time.Now()
	d, err := startDaemon(ctx, s.run, s.ours, repos[0], dir, ddir)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			d.stop()
		}
	}()
	took, err := d.waitReady(ctx, start, 30*time.Minute)
	if err != nil {
		return err
	}
	st, err := d.status(ctx)
	if err != nil {
		return err
	}
	s.record("scan", 0, took.Seconds())
	s.say(p, "%-9s %-6s %7.2f s untimed: syncd run start to ready (%d files indexed)", "scan", "ours", took.Seconds(), st.Folders[0].Files)
	if err := s.checkCount(ctx, p, d, dir, "after the initial scan"); err != nil {
		return err
	}
	// The snapshot's work is done in the daemon: its CPU time (from
	// /proc/PID/stat) during the command is added to the client's.
	snap := func() (runResult, error) {
		before := procCPU(d.cmd.Process.Pid)
		res, err := s.run.run(ctx, repos[0].Env, s.ours.syncd, "snapshot", "--config", d.config)
		if after := procCPU(d.cmd.Process.Pid); before >= 0 && after >= before {
			res.CPU += after - before
		}
		return res, err
	}
	res, err := snap()
	if err != nil {
		return err
	}
	s.say(p, "%-9s %-6s %7.2f s (cpu %6.2f s) untimed: initial snapshot from the index | %s", "parent", "ours", res.Wall.Seconds(), res.CPU.Seconds(), s.ours.summary(res))

	// Restic: the parent backup of the same copy; its peak RSS is the anchor.
	res, err = s.restic.backup(ctx, repos[1], dir)
	if err != nil {
		return err
	}
	s.record("rss", 1, float64(res.MaxRSS))
	s.checkFloor(p, 1, res.MaxRSS)
	s.say(p, "%-9s %-6s %7.2f s (cpu %6.2f s) untimed: backup of the unmutated copy, peak RSS %s | %s", "parent", "restic", res.Wall.Seconds(), res.CPU.Seconds(), iec(res.MaxRSS), s.restic.summary(res))

	// 1. Nothing changed.
	if err := d.alive(); err != nil {
		return err
	}
	res, err = snap()
	if err != nil {
		return err
	}
	s.recordRun(p, "nochange", 0, res, " | "+s.ours.summary(res))
	res, err = s.restic.backup(ctx, repos[1], dir)
	if err != nil {
		return err
	}
	s.recordRun(p, "nochange", 1, res, " | "+s.restic.summary(res))

	// 2. One mutation round, applied while the daemon runs.
	if err := s.data.mutate(ctx, s.run, dir, 1); err != nil {
		return err
	}
	end := time.Now()
	if err := sleepCtx(ctx, quietBeforeReady); err != nil {
		return err
	}
	took, err = d.waitReady(ctx, end, 10*time.Minute)
	if err != nil {
		return err
	}
	s.record("settle", 0, took.Seconds())
	s.say(p, "%-9s %-6s %7.2f s untimed: end of the mutation round to ready", "settle", "ours", took.Seconds())
	if err := s.checkCount(ctx, p, d, dir, "after the mutation round"); err != nil {
		return err
	}
	res, err = snap()
	if err != nil {
		return err
	}
	s.recordRun(p, "mutation", 0, res, " | "+s.ours.summary(res))
	res, err = s.restic.backup(ctx, repos[1], dir)
	if err != nil {
		return err
	}
	s.recordRun(p, "mutation", 1, res, " | "+s.restic.summary(res))

	// 3. Event-to-indexed latency, once per run.
	if p == 1 && (s.want("latency-p50") || s.want("latency-p99") || s.want("latency-max")) {
		if err := s.latency(ctx, p, d, dir); err != nil {
			return err
		}
	}

	// 4. The daemon's peak RSS over the whole pair.
	stopped = true
	ru, err := d.stop()
	if err != nil {
		return err
	}
	if ru == nil {
		return errors.New("syncd run: no rusage")
	}
	rss := ru.Maxrss * 1024
	s.record("rss", 0, float64(rss))
	s.checkFloor(p, 0, rss)
	s.say(p, "%-9s %-6s peak RSS %s (cpu %.2f s over the pair)", "rss", "ours", iec(rss),
		time.Duration(syscall.TimevalToNsec(ru.Utime)+syscall.TimevalToNsec(ru.Stime)).Seconds())
	return nil
}

// checkCount compares the daemon's indexed file count (/status "files",
// regular files) with the regular files actually in dir, once it says it
// is ready, and records the result as a check. A mismatch is looked at again
// 5 s later, to tell slow from wrong; it does not stop the run.
func (s *suite) checkCount(ctx context.Context, p int, d *daemonProc, dir, when string) error {
	title := "daemon's indexed file count equals the tree's regular files " + when
	want, err := countFiles(dir)
	if err != nil {
		return err
	}
	st, err := d.status(ctx)
	if err != nil {
		return err
	}
	got := st.Folders[0].Files
	if got == want {
		if c := s.findCheck(title); c == nil || c.result[0] == "" {
			s.note(title, 0, "pass")
		}
		return nil
	}
	s.say(p, "WARNING: daemon ready %s with %d files indexed, the tree has %d; looking again in 5 s", when, got, want)
	if err := sleepCtx(ctx, 5*time.Second); err != nil {
		return err
	}
	st, err = d.status(ctx)
	if err != nil {
		return err
	}
	later := st.Folders[0].Files
	s.say(p, "daemon: %d files indexed 5 s later (pending %d, state %s)", later, st.Folders[0].Pending, st.Folders[0].State)
	msg := fmt.Sprintf("pair %d: ready with %d indexed, tree has %d; %d 5 s later", p, got, want, later)
	if c := s.findCheck(title); c != nil && strings.HasPrefix(c.result[0], "FAIL") {
		msg = c.result[0] + "; " + msg
	} else {
		msg = "FAIL: " + msg
	}
	s.note(title, 0, msg)
	return nil
}

// procCPU is the user + system CPU time of process pid so far, from
// /proc/PID/stat (clock ticks, 100 per second), or -1.
func procCPU(pid int) time.Duration { return procTicks(pid, 2) }

// procCPUChildren is procCPU plus the CPU time of the children pid has
// waited for, or -1.
func procCPUChildren(pid int) time.Duration { return procTicks(pid, 4) }

// procTicks sums n fields of /proc/PID/stat from utime on (utime, stime,
// cutime, cstime) as a duration, or -1.
func procTicks(pid, n int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces; fields count from after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 11+n {
		return -1
	}
	var ticks int64
	for _, s := range f[11 : 11+n] {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return -1
		}
		ticks += t
	}
	return time.Duration(ticks) * (time.Second / 100)
}

func (s *suite) findCheck(title string) *check {
	for _, c := range s.checks {
		if c.title == title {
			return c
		}
	}
	return nil
}

// countFiles counts the regular files below dir.
func countFiles(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() && e.Name() != daemon.MarkerName { // the node's own marker is not indexed
			n++
		}
		return nil
	})
	return n, err
}

// checkFloor notes whether a peak RSS is above the runner's own (vfork: a
// child's ru_maxrss is at least the runner's high-water mark).
func (s *suite) checkFloor(p, i int, rss int64) {
	const title = "peak RSS above the runner's own (a real measurement)"
	floor := selfPeakRSS()
	if rss <= floor {
		s.note(title, i, fmt.Sprintf("FAIL: %s ≤ runner's %s", iec(rss), iec(floor)))
		s.say(p, "WARNING: %s's peak RSS %s is not above the runner's own %s; it is not a measurement", s.tools()[i].name, iec(rss), iec(floor))
		return
	}
	for _, c := range s.checks {
		if c.title == title && c.result[i] != "" {
			return // keep an earlier FAIL
		}
	}
	s.note(title, i, "pass")
}

// latency writes latencyFiles small files one by one into dir and measures,
// for each, the time from the start of its write to the first /status poll
// whose file count includes it.
func (s *suite) latency(ctx context.Context, p int, d *daemonProc, dir string) error {
	st, err := d.status(ctx)
	if err != nil {
		return err
	}
	base := st.Folders[0].Files
	type seen struct {
		at    time.Time
		files int64
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seenc := make(chan seen, 1024)
	pollErr := make(chan error, 1)
	go func() {
		defer close(seenc)
		last := base
		for {
			st, err := d.status(pctx)
			now := time.Now()
			if err != nil {
				if pctx.Err() == nil {
					pollErr <- err
				}
				return
			}
			if f := st.Folders[0].Files; f != last {
				seenc <- seen{now, f}
				last = f
			}
			select {
			case <-pctx.Done():
				return
			case <-time.After(pollEvery):
			}
		}
	}()
	s.say(p, "latency: writing %d files of 1 KiB into %s, %v apart (indexed files before: %d)", latencyFiles, dir, latencyGap, base)
	writes := make([]time.Time, latencyFiles)
	content := make([]byte, 1024)
	for k := range writes {
		for j := range content {
			content[j] = byte('a' + (k+j)%26)
		}
		writes[k] = time.Now()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("bench-latency-%03d.txt", k)), content, 0o644); err != nil {
			return err
		}
		if err := sleepCtx(ctx, latencyGap); err != nil {
			return err
		}
	}
	// Collect until every file is counted, or 30 s after the last write.
	indexed := make([]time.Time, latencyFiles)
	n := 0
	timeout := time.After(30 * time.Second)
	var odd []string
collect:
	for n < latencyFiles {
		select {
		case sn, ok := <-seenc:
			if !ok {
				break collect
			}
			if sn.files < base+int64(n) {
				odd = append(odd, fmt.Sprintf("file count went down to %d", sn.files))
			}
			for n < latencyFiles && base+int64(n)+1 <= sn.files {
				indexed[n] = sn.at
				n++
			}
		case err := <-pollErr:
			return fmt.Errorf("latency: polling /status: %v", err)
		case <-timeout:
			break collect
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	cancel()
	for _, o := range odd {
		s.say(p, "latency: odd: %s", o)
	}
	if n < latencyFiles {
		s.note("all latency files indexed within 30 s", 0, fmt.Sprintf("FAIL: %d of %d", n, latencyFiles))
		return fmt.Errorf("latency: only %d of %d files counted by /status within 30 s of the last write", n, latencyFiles)
	}
	s.note("all latency files indexed within 30 s", 0, "pass")
	lat := make([]float64, latencyFiles)
	for k := range lat {
		lat[k] = indexed[k].Sub(writes[k]).Seconds()
	}
	slices.Sort(lat)
	p50, p99, mx := percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1]
	s.record("latency-p50", 0, p50)
	s.record("latency-p99", 0, p99)
	s.record("latency-max", 0, mx)
	s.say(p, "latency: p50 %.0f ms, p99 %.0f ms, max %.0f ms, min %.0f ms", p50*1000, p99*1000, mx*1000, lat[0]*1000)
	return nil
}

// percentile returns the q-quantile of the sorted values (nearest rank).
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(q*float64(len(sorted))+0.999999) - 1
	k = max(0, min(k, len(sorted)-1))
	return sorted[k]
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
