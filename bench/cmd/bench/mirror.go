package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncd/syncd/internal/faultproxy"
)

// mirrorMetricDefs are the rows of the mirror section: issue 6's "Done
// when" and ../shared/BENCHMARKS.md, against rsync to an rsync daemon.
var mirrorMetricDefs = []metric{
	{id: "initial", title: "initial mirror of the data set to one peer (wall time; ours from both daemons up)", unit: seconds, bar: 1.0},
	{id: "mutation-catchup", title: "one mutation round: from the end of the change to the replica complete (rsync: its run for the round)", unit: seconds, bar: 1.0},
	{id: "mutation-vs-floor", title: "bytes on the wire for one mutation round, both directions, against its floor (the rsync column holds the floor: the round's new random bytes, 50 uploads and the 1 MiB overwrite)", unit: byteCount, bar: 1.1},
	{id: "mutation-bytes", title: "bytes on the wire for one mutation round, both directions (TCP proxy count for both; informational, the bar is against the floor above)", unit: byteCount},
	{id: "mutation-sent", title: "bytes on the wire for one mutation round, source to replica only (rsync: `--stats` Total bytes sent; informational)", unit: byteCount},
	{id: "latency-p50", title: "write-to-replica latency, 100 small files, p50", unit: millis, anchorless: true, absBar: 0.3},
	{id: "latency-p99", title: "write-to-replica latency, 100 small files, p99", unit: millis, anchorless: true, absBar: 1.0},
	{id: "latency-max", title: "write-to-replica latency, 100 small files, max", unit: millis, anchorless: true},
	{id: "mutation-floor", title: "one mutation round: its new random bytes (50 uploads, the 1 MiB overwrite), a floor for any tool, vs rsync's bytes both ways (informational)", unit: byteCount},
	{id: "initial-bytes", title: "bytes on the wire for the initial mirror, both directions (informational)", unit: byteCount},
	{id: "initial-z", title: "initial mirror against `rsync -z --compress-choice=zstd`, which compresses as ours does (informational)", unit: seconds},
	{id: "initial-durable", title: "initial mirror against `rsync -a` followed by a `syncfs` of its destination, which makes its files as durable as ours are when ours is complete (informational; rsync's CPU without the kernel's writeback)", unit: seconds},
	{id: "mutation-time", title: "one mutation round: start of the mutation to replica complete (informational)", unit: seconds},
	{id: "initial-from-start", title: "ours: initial mirror from the start of node A's process (informational)", unit: seconds, anchorless: true},
}

// Timing of the mirror section's polls.
const (
	mirrorTick      = 2 * time.Millisecond   // reads of the proxy's byte counters
	mirrorQuiet     = 100 * time.Millisecond // no bytes moved for this long: ask /status
	mirrorCheck     = 2 * time.Second        // at most this often (each costs both nodes ~30 ms of CPU)
	mirrorLatGap    = 50 * time.Millisecond  // between two writes of the latency series
	mirrorLatPoll   = 2 * time.Millisecond   // lstat of the replica's files in the latency series
	mirrorLatSize   = 1024
	mirrorSettle    = 300 * time.Millisecond // after the mutation, before believing "ready"
	mirrorCompleted = 30 * time.Minute       // limit for any wait for the replica
)

// mirrorBackend is the mirror section; the anchor is rsync (version ver).
func mirrorBackend(ver string) Backend {
	return Backend{
		Name:  "mirror",
		Title: "Mirroring (`syncd run` on two nodes): initial mirror, one mutation round, latency, against rsync",
		Defs:  mirrorMetricDefs,
		Note: "The bytes rows' floor: the mutation round writes ~50 MB of random (incompressible) uploads, which " +
			"every tool must send; the floor row sets that amount against rsync's bytes: the best ratio any tool " +
			"could reach.",
		Anchor:        "rsync",
		AnchorVersion: ver + ", to `rsync --daemon` on 127.0.0.1 (a module with use chroot = no and path /, so that symlinks are not sanitized; the destination below it)",
		Procedure: "Each pair starts from a fresh copy of the data set (cp -a) as the source. Ours: two `syncd run` on " +
			"127.0.0.1, each with its own config and fresh state_dir (identities made by `syncd id`, untimed); node A " +
			"has the source as folder `data` in mode send-only, node B an empty directory in mode receive-only; default " +
			"settings otherwise (no repository). A starts first and indexes the source (a node that serves a folder has " +
			"its index: it is kept up to date from events, not built for a transfer); once A is ready (/readyz) B starts; " +
			"the timed interval runs from B's /healthz answering until " +
			"the replica is complete: the last time bytes moved between B and A (the proxy's counters, read every 2 ms; " +
			"B asks A for more right after it applies a batch) before a quiet spell in which both /status say: A's " +
			"folder scanned with nothing pending and its files and bytes equal to the tree's, nothing left for A to " +
			"send to B (send_files 0), B connected with lag 0 and behind 0, and B's folder files and bytes equal to " +
			"A's. (/status walks the whole index, ~30 ms of CPU per call at this size, so it is asked only after 100 ms " +
			"without traffic and at most every 2 s; the time is that of the last bytes moved, so how often it asks does not change it.) The replica is then compared with the source (untimed). " +
			"Anchor: `rsync -a --delete --stats SRC/ rsync://127.0.0.1:PORT/bench/DST/` into an empty " +
			"directory, timed as a command, then again with `-z --compress-choice=zstd` into an emptied one (an informational row: syncd " +
			"compresses chunk data with zstd, as issue 6 asks); its CPU time includes the rsync daemon's forked receiver. B dials A, and " +
			"rsync the daemon, through the same kind of counting TCP proxy (internal/faultproxy, in the runner), for " +
			"the whole pair, so both pay the same copy. Then the mutation round (mkdata.py --mutate --round 1) is " +
			"applied to the source while both daemons run; ours counts the proxy's bytes (both directions, TLS " +
			"included; \"source to replica\" is A→B only) from the start of the mutation until the replica is complete " +
			"(the same test, after a 300 ms pause so that A's 100 ms debounce has fired), and rsync pushes the mutated " +
			"source over its unmutated first copy. The catch-up row times ours from the end of the mutation " +
			"(mkdata.py returned) to the replica complete, the window a failover could lose, against rsync's whole " +
			"run for the round, which starts once the change has ended. Rsync's bytes both ways are the proxy's count (the runs below give " +
			"`--stats` sent + received too), its \"source to replica\" is `--stats` Total bytes sent. Both replicas " +
			"are compared with the source after each step. Finally 100 files of 1 KiB are written one by one into " +
			"A's folder, 50 ms apart; each one's latency runs from the return of its close to the first lstat of " +
			"B's copy (every 2 ms) that finds it at full size (syncd renames a complete file into place); their " +
			"contents, modes and mtimes are checked afterwards (`sync` runs before the series). The latency rows are the median over pairs of each " +
			"pair's percentile. `sync` runs before each timed start. Neither tool compresses by default; rsync does " +
			"not fsync, syncd fsyncs every file (issue 6); the initial-durable row adds to rsync's initial run a " +
			"syncfs(2) of its destination's file system, timed right after its exit (its kernel writeback's CPU is " +
			"not counted). Replica comparison: the same paths, types and permission " +
			"bits; for files size, mtime (ns) and bytes; for symlinks the target (not directory mtimes, owners or " +
			"hard links).",
	}
}

// measureMirror runs the mirror section: one rsync daemon for the
// section, then s.pairs pairs.
func (s *suite) measureMirror(ctx context.Context) error {
	rdir := filepath.Join(s.work, "rsyncd")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return err
	}
	rd, err := startRsyncd(ctx, s.run, rdir, filepath.Join(s.work, "rsync-dst"))
	if err != nil {
		return err
	}
	defer rd.stop()
	rp, err := faultproxy.New(rd.addr)
	if err != nil {
		return err
	}
	defer rp.Close()
	progress("rsync daemon on %s (pid %d), through the proxy %s; module path %s", rd.addr, rd.cmd.Process.Pid, rp.Addr(), rd.dst)
	for p := 1; p <= s.pairs; p++ {
		if err := s.pairMirror(ctx, p, rd, rp); err != nil {
			return err
		}
	}
	return nil
}

// mirrorPair is the state of one pair of the mirror section.
type mirrorPair struct {
	src, dst string // the source tree, ours' replica (B's folder)
	a, b     *mirrorNode
	proxy    *faultproxy.Proxy // B → A
}

// pairMirror runs one pair: initial mirror, mutation round, latency.
func (s *suite) pairMirror(ctx context.Context, p int, rd *rsyncDaemon, rp *faultproxy.Proxy) error {
	pdir := filepath.Join(s.work, fmt.Sprintf("p%d", p))
	mp := &mirrorPair{src: filepath.Join(s.work, "src", "data"), dst: filepath.Join(pdir, "b", "data")}
	for _, d := range []string{filepath.Dir(mp.src), pdir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	defer os.RemoveAll(pdir)
	defer os.RemoveAll(filepath.Dir(mp.src))
	s.say(p, "copying the data set to %s", mp.src)
	if err := s.data.copyTo(ctx, s.run, mp.src); err != nil {
		return err
	}
	if err := emptyDir(rd.dst); err != nil {
		return err
	}
	want := treeCount{int64(s.data.Files), s.data.Bytes}

	// Ours: the initial mirror.
	var err error
	if mp.a, err = newMirrorNode("a", filepath.Join(pdir, "a"), mp.src); err != nil {
		return err
	}
	if mp.b, err = newMirrorNode("b", filepath.Join(pdir, "b"), mp.dst); err != nil {
		return err
	}
	if s.nodeLogs != "" {
		mp.a.keepLog = filepath.Join(s.nodeLogs, fmt.Sprintf("p%d-a.log", p))
		mp.b.keepLog = filepath.Join(s.nodeLogs, fmt.Sprintf("p%d-b.log", p))
	}
	defer mp.b.stop()
	defer mp.a.stop()
	for _, n := range []*mirrorNode{mp.a, mp.b} {
		if err := n.makeIdentity(ctx, s.run, s.ours.syncd); err != nil {
			return err
		}
	}
	if mp.proxy, err = faultproxy.New(mp.a.listen); err != nil {
		return err
	}
	defer mp.proxy.Close()
	syscall.Sync()
	startA := time.Now()
	if err := mp.a.start(ctx, s.run, s.ours.syncd, mp.a.config("send-only", mp.b, mp.b.listen)); err != nil {
		return err
	}
	indexed, err := mp.a.proc.waitReady(ctx, startA, 15*time.Minute)
	if err != nil {
		return err
	}
	s.say(p, "initial   ours   A indexed the source in %.2f s (untimed)", indexed.Seconds())
	syscall.Sync()
	if err := mp.b.start(ctx, s.run, s.ours.syncd, mp.b.config("receive-only", mp.a, mp.proxy.Addr())); err != nil {
		return err
	}
	up := time.Now()
	cpu0 := mp.a.cpu() + mp.b.cpu()
	done, err := waitMirrored(ctx, mp.a, mp.b, mp.proxy, want)
	if err != nil {
		return err
	}
	cpu := (mp.a.cpu() + mp.b.cpu() - cpu0).Seconds()
	wall := done.Sub(up).Seconds()
	bytes := mp.proxy.BytesUp() + mp.proxy.BytesDown()
	s.recordMirror("initial", 0, wall, cpu)
	s.recordMirror("initial-durable", 0, wall, cpu)
	s.record("initial-from-start", 0, done.Sub(startA).Seconds())
	s.record("initial-bytes", 0, float64(bytes))
	s.say(p, "initial   ours   %7.2f s (cpu %6.2f s, both daemons), %.2f s from A's start; wire %s (B→A %s, A→B %s)",
		wall, cpu, done.Sub(startA).Seconds(), iec(bytes), iec(mp.proxy.BytesUp()), iec(mp.proxy.BytesDown()))
	s.checkReplica(ctx, p, 0, "replica equals the source after the initial mirror", mp.src, mp.dst)

	// Rsync: the initial mirror.
	if _, err := s.rsyncRun(ctx, p, rd, rp, mp.src, "initial", "initial-bytes", ""); err != nil {
		return err
	}
	s.checkReplica(ctx, p, 1, "replica equals the source after the initial mirror", mp.src, rd.dst)

	// Rsync again, compressing with zstd as ours does; it leaves the same
	// unmutated copy for the mutation round.
	if s.want("initial-z") {
		s.recordMirror("initial-z", 0, wall, cpu)
		if err := emptyDir(rd.dst); err != nil {
			return err
		}
		syscall.Sync()
		if _, err := s.rsyncRun(ctx, p, rd, rp, mp.src, "initial-z", "", "", "-z", "--compress-choice=zstd"); err != nil {
			return err
		}
		s.checkReplica(ctx, p, 1, "replica equals the source after the initial mirror", mp.src, rd.dst)
	}

	// One mutation round, applied while the daemons run.
	up0, down0 := mp.proxy.BytesUp(), mp.proxy.BytesDown()
	mstart := time.Now()
	if err := s.data.mutate(ctx, s.run, mp.src, 1); err != nil {
		return err
	}
	mend := time.Now()
	if err := sleepCtx(ctx, mirrorSettle); err != nil {
		return err
	}
	mwant, err := countTree(mp.src)
	if err != nil {
		return err
	}
	floor, err := mutationFloor(mp.src, 1)
	if err != nil {
		return err
	}
	s.record("mutation-floor", 0, float64(floor))
	s.record("mutation-vs-floor", 1, float64(floor))
	if done, err = waitMirrored(ctx, mp.a, mp.b, mp.proxy, mwant); err != nil {
		return err
	}
	upB, downB := mp.proxy.BytesUp()-up0, mp.proxy.BytesDown()-down0
	s.record("mutation-bytes", 0, float64(upB+downB))
	s.record("mutation-sent", 0, float64(downB))
	s.record("mutation-vs-floor", 0, float64(upB+downB))
	s.record("mutation-time", 0, done.Sub(mstart).Seconds())
	s.record("mutation-catchup", 0, done.Sub(mend).Seconds())
	s.say(p, "mutation  ours   %7.2f s from the start of the mutation, %.2f s from its end; wire %s both ways (B→A %s, A→B %s)",
		done.Sub(mstart).Seconds(), done.Sub(mend).Seconds(), iec(upB+downB), iec(upB), iec(downB))
	s.checkReplica(ctx, p, 0, "replica equals the source after the mutation round", mp.src, mp.dst)
	wire, err := s.rsyncRun(ctx, p, rd, rp, mp.src, "mutation-time", "mutation-bytes", "mutation-sent")
	if err != nil {
		return err
	}
	s.record("mutation-floor", 1, float64(wire))
	s.checkReplica(ctx, p, 1, "replica equals the source after the mutation round", mp.src, rd.dst)

	// Write-to-replica latency.
	if s.want("latency-p50") || s.want("latency-p99") || s.want("latency-max") {
		if err := s.mirrorLatency(ctx, p, mp); err != nil {
			return err
		}
	}
	return nil
}

// recordMirror stores a timed value and its CPU seconds for side i.
func (s *suite) recordMirror(id string, i int, v, cpu float64) {
	for _, m := range s.metrics {
		if m.id == id {
			m.vals[i] = append(m.vals[i], v)
			m.cpu[i] = append(m.cpu[i], cpu)
		}
	}
}

// rsyncAlso lists the rows whose rsync side is the same run as another
// row's: rsync's run for the mutation round is both its "start to
// complete" and what ours' catch-up from the end of the change is held
// against (rsync starts when the change has ended).
var rsyncAlso = map[string][]string{"mutation-time": {"mutation-catchup"}}

// rsyncDurable names the row that times a run of rsync and a syncfs of its
// destination right after it: ours makes every file durable before it
// counts the mirror complete, rsync leaves that to the kernel after its
// exit.
var rsyncDurable = map[string]string{"initial": "initial-durable"}

// syncFS makes the file system holding dir durable (syncfs(2)).
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// rsyncRun pushes src to the rsync daemon through the proxy rp, records
// its wall time under timeID (with the CPU time of the client and of the
// daemon's receiver), the proxy's count both ways under bytesID and, if
// sentID is set, `--stats` Total bytes sent under sentID. It returns the
// proxy's count.
func (s *suite) rsyncRun(ctx context.Context, p int, rd *rsyncDaemon, rp *faultproxy.Proxy, src, timeID, bytesID, sentID string, extra ...string) (int64, error) {
	up0, down0 := rp.BytesUp(), rp.BytesDown()
	dcpu0 := rd.cpu()
	res, st, err := rsyncPush(ctx, s.run, src, rp.Addr(), rd.dst, extra...)
	if err != nil {
		return 0, err
	}
	var synced time.Duration // the syncfs after the run, for rsyncDurable's row
	durableID := rsyncDurable[timeID]
	if durableID != "" {
		t := time.Now()
		if err := syncFS(rd.dst); err != nil {
			return 0, err
		}
		synced = time.Since(t)
	}
	// The daemon reaps its forked receiver soon after the client ends;
	// only then is the receiver's CPU time counted in the daemon's.
	if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
		return 0, err
	}
	cpu := (res.CPU + rd.cpu() - dcpu0).Seconds()
	wire := rp.BytesUp() - up0 + rp.BytesDown() - down0
	s.recordMirror(timeID, 1, res.Wall.Seconds(), cpu)
	for _, id := range rsyncAlso[timeID] {
		s.recordMirror(id, 1, res.Wall.Seconds(), cpu)
	}
	if durableID != "" {
		s.recordMirror(durableID, 1, (res.Wall + synced).Seconds(), cpu)
		s.say(p, "%-9s rsync  its syncfs after the run took %.2f s", timeID, synced.Seconds())
	}
	if bytesID != "" {
		s.record(bytesID, 1, float64(wire))
	}
	if sentID != "" {
		s.record(sentID, 1, float64(st.Sent))
	}
	s.say(p, "%-9s rsync  %7.2f s (cpu %6.2f s, client and daemon); wire %s both ways; --stats sent %s received %s (sum %s), literal data %s",
		strings.TrimSuffix(timeID, "-time"), res.Wall.Seconds(), cpu, iec(wire), iec(st.Sent), iec(st.Received), iec(st.Sent+st.Received), iec(st.Literal))
	return wire, nil
}

// checkReplica compares the replica of side i with the source and notes the
// result. A difference in ours is looked at again after 5 s, to tell a slow
// replica from a wrong one; both are failures of the row.
func (s *suite) checkReplica(ctx context.Context, p, i int, title, src, dst string) {
	name := []string{"ours", "rsync"}[i]
	problems := compareMirror(src, dst)
	result, short := "pass", ""
	if len(problems) > 0 {
		s.say(p, "WARNING: %s: %s: %d differences", name, title, len(problems))
		for _, pr := range summarizeList(problems, 20) {
			s.say(p, "  %s: %s", name, pr)
		}
		short = fmt.Sprintf("pair %d: %d", p, len(problems))
		if i == 0 { // a daemon: slow or wrong?
			_ = sleepCtx(ctx, 5*time.Second)
			short += fmt.Sprintf(", %d 5 s later", len(compareMirror(src, dst)))
		}
		result = fmt.Sprintf("FAIL (%s): %s", short, summarize(problems, 3))
	}
	s.say(p, "%s: %s: %s", name, title, result)
	// The table keeps the first failure's details and the count of others.
	if c := s.findCheck(title); c != nil && strings.HasPrefix(c.result[i], "FAIL") {
		if short != "" {
			short = c.result[i] + "; " + short
		} else {
			short = c.result[i]
		}
		result = short
	}
	s.note(title, i, result)
}

// mirrorLatency writes 100 small files one by one into A's folder and
// measures, for each, the time from the return of its close to the first
// lstat of B's copy that finds it at full size.
func (s *suite) mirrorLatency(ctx context.Context, p int, mp *mirrorPair) error {
	const n = latencyFiles
	name := func(k int) string { return fmt.Sprintf("bench-latency-%03d.txt", k) }
	closed := make(chan time.Time, n)
	seen := make([]time.Time, n)
	written := make([]time.Time, 0, n)
	pollDone := make(chan int)
	go func() {
		var got int
		defer func() { pollDone <- got }()
		giveUp := time.Time{}
		for got < n {
			for more := true; more; {
				select {
				case t := <-closed:
					written = append(written, t)
					if len(written) == n {
						giveUp = time.Now().Add(30 * time.Second)
					}
				default:
					more = false
				}
			}
			for k := range written {
				if !seen[k].IsZero() {
					continue
				}
				if fi, err := os.Lstat(filepath.Join(mp.dst, name(k))); err == nil && fi.Size() == mirrorLatSize {
					seen[k] = time.Now()
					got++
				}
			}
			if (!giveUp.IsZero() && time.Now().After(giveUp)) || ctx.Err() != nil {
				return
			}
			time.Sleep(mirrorLatPoll)
		}
	}()
	// The step before (rsync's mutation run) leaves dirty pages; with a
	// journal in ordered mode the nodes' first fsync would write them out.
	syscall.Sync()
	s.say(p, "latency: writing %d files of %d bytes into A's folder, %v apart", n, mirrorLatSize, mirrorLatGap)
	content := make([]byte, mirrorLatSize)
	for k := range n {
		for j := range content {
			content[j] = byte('a' + (k+j)%26)
		}
		if err := os.WriteFile(filepath.Join(mp.src, name(k)), content, 0o644); err != nil {
			return err
		}
		closed <- time.Now()
		if err := sleepCtx(ctx, mirrorLatGap); err != nil {
			return err
		}
	}
	got := <-pollDone
	if got < n {
		s.note("all latency files on the replica within 30 s, equal to the source", 0, fmt.Sprintf("FAIL (pair %d): %d of %d", p, got, n))
		return fmt.Errorf("latency: only %d of %d files on the replica within 30 s of the last write", got, n)
	}
	// The replica's copies: same content, mode and mtime.
	var bad []string
	for k := range n {
		a, b := filepath.Join(mp.src, name(k)), filepath.Join(mp.dst, name(k))
		pr, _ := diffMirror(map[string]mirrorEntry{name(k): scanOne(a)}, map[string]mirrorEntry{name(k): scanOne(b)})
		bad = append(bad, pr...)
		if same, err := sameContent(a, b, make([]byte, 4096), make([]byte, 4096)); err != nil || !same {
			bad = append(bad, name(k)+": content differs")
		}
	}
	result := "pass"
	if len(bad) > 0 {
		result = fmt.Sprintf("FAIL (pair %d, %d): %s", p, len(bad), summarize(bad, 3))
	}
	if c := s.findCheck("all latency files on the replica within 30 s, equal to the source"); c != nil && strings.HasPrefix(c.result[0], "FAIL") {
		result = c.result[0]
	}
	s.note("all latency files on the replica within 30 s, equal to the source", 0, result)
	lat := make([]float64, n)
	for k := range lat {
		lat[k] = seen[k].Sub(written[k]).Seconds()
	}
	slices.Sort(lat)
	p50, p99, mx := percentile(lat, 0.50), percentile(lat, 0.99), lat[n-1]
	s.record("latency-p50", 0, p50)
	s.record("latency-p99", 0, p99)
	s.record("latency-max", 0, mx)
	s.say(p, "latency: p50 %.0f ms, p99 %.0f ms, max %.0f ms, min %.0f ms; copies %s", p50*1000, p99*1000, mx*1000, lat[0]*1000, result)
	return nil
}

// mutationFloor is the random content mutation round k of mkdata.py adds
// to the tree at dir: its new uploads (web/uploads/new/rK-*) and the 1 MiB
// it overwrites in big/db.sql.
func mutationFloor(dir string, k int) (int64, error) {
	ms, err := filepath.Glob(filepath.Join(dir, "web", "uploads", "new", fmt.Sprintf("r%d-*", k)))
	if err != nil {
		return 0, err
	}
	n := int64(1 << 20)
	for _, m := range ms {
		fi, err := os.Lstat(m)
		if err != nil {
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}

// scanOne is the mirrorEntry of one regular file or directory (a missing
// path gives a zero entry, which differs from any file's).
func scanOne(p string) mirrorEntry {
	fi, err := os.Lstat(p)
	if err != nil {
		return mirrorEntry{}
	}
	return mirrorEntry{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}
