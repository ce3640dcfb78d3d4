package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/syncd/syncd/internal/faultproxy"
)

// syncthingMetricDefs are the rows of the syncthing section: issue 14's
// second mirroring anchor, with the bar of ../shared/BENCHMARKS.md.
var syncthingMetricDefs = []metric{
	{id: "initial", title: "initial mirror of the data set to one peer (wall time; ours from B up, Syncthing from the folder shared on both)", unit: seconds, bar: 0.2},
	{id: "round", title: "one mutation round: end of the change to the replica complete", unit: seconds, bar: 0.2},
	{id: "round-first", title: "one mutation round, Syncthing only until its first scan of the change is applied on the receiver (its deletes still wait on the watcher; ours: its whole round) (informational)", unit: seconds},
	{id: "initial-bytes", title: "bytes on the wire for the initial mirror, both directions (informational)", unit: byteCount},
	{id: "round-bytes", title: "bytes on the wire for one mutation round, both directions, from the start of the change (informational)", unit: byteCount},
	{id: "scan", title: "the source indexed before the mirror, untimed: ours A's start to ready, Syncthing the folder added to scanned (informational)", unit: seconds},
}

// Timing of the syncthing section's polls.
const (
	stPoll     = 50 * time.Millisecond // GET /rest/db/status of the receiver (~1 ms of its CPU each)
	stSay      = 5 * time.Second       // a progress line while waiting
	stComplete = 30 * time.Minute      // limit for any wait for the replica
	stFolderID = "data"
)

// syncthingBackend is the syncthing section; ver describes the anchor.
func syncthingBackend(ver string) Backend {
	return Backend{
		Name:          "syncthing",
		Title:         "Mirroring against Syncthing: initial mirror and one mutation round, two nodes on loopback",
		Defs:          syncthingMetricDefs,
		Metrics:       syncthingMetricIDs(),
		Anchor:        "Syncthing",
		AnchorVersion: ver + ", built by `make bin/syncthing` from the module at v1.30.0 (go generate ./lib/api/auto, go build ./cmd/syncthing)",
		Note: "Syncthing's defaults hold the changes its file system watcher reports for 10 s before scanning them " +
			"(fsWatcherDelayS), and deletions longer, until a minute after the first of them (fsWatcherTimeoutS 0: six " +
			"times the delay, at most 60 s), so that a rename can be seen as one; the mutation round deletes 10 files " +
			"and renames a directory, so Syncthing's round ends about a minute after the change. That is what a user of " +
			"its defaults gets, and it is kept. The round-first row stops Syncthing's clock earlier, when the receiver " +
			"has applied the source's first scan of the change (uploads, edits and the rename's new side, not yet the " +
			"deletions): the point an \"idle, nothing needed\" test on the receiver alone would stop at.",
		Procedure: "Each pair runs ours, then Syncthing, each on its own fresh copy of the data set (cp -a) at the same " +
			"source path, mirrored into an empty directory. Ours: two `syncd run` on 127.0.0.1 set up exactly as in the " +
			"mirror section (A the source, folder `data` send-only; B an empty directory, receive-only; default settings; " +
			"identities by `syncd id`); A starts and indexes the source (untimed: the scan row); once A is ready B starts, " +
			"and the initial mirror runs from B's /healthz answering to the replica complete, as the mirror section decides " +
			"it: the last bytes moved between B and A before both /status agree that B holds all of A's folder and A's " +
			"folder equals the tree (files and bytes). " +
			"Syncthing: two `syncthing serve` on 127.0.0.1, each with its own --home, --no-default-folder, " +
			"--no-restart, --no-upgrade, GUI and REST API on a free loopback port with an API key, and STMONITORED=1 " +
			"(Syncthing's own process without its monitor process, which only restarts it, so that the CPU time and " +
			"RSS measured are those of the process that syncs); configured only " +
			"through the REST API: GET /rest/config and the defaults for a new device and folder " +
			"(/rest/config/defaults/device, …/folder), then PUT /rest/config, which Syncthing applies without a restart " +
			"(the runner checks /rest/config/restart-required); the options are set first and each instance is " +
			"restarted once, untimed, because setLowPriority takes effect only at startup. Options changed from the defaults: listenAddresses one " +
			"tcp://127.0.0.1:PORT, globalAnnounceEnabled, localAnnounceEnabled, relaysEnabled, natEnabled, " +
			"crashReportingEnabled, startBrowser false, urAccepted -1, autoUpgradeIntervalH 0, and setLowPriority false " +
			"(its default lowers its CPU priority, which on a shared machine would hand its CPU time to other " +
			"processes); every folder and device setting is the default except id, path, type and devices. " +
			"Instance 1 gets instance 2's device (address dynamic, so it never dials) and the folder `data` on the " +
			"source, type sendonly, shared with instance 2; it scans the source (untimed: the scan row, until " +
			"/rest/db/status says idle with the tree's files, directories, symlinks and bytes). Then instance 2 gets " +
			"instance 1's device and the folder `data` on the empty directory, type receiveonly, shared with instance 1, " +
			"in one PUT /rest/config; the initial mirror runs from that PUT's return until the receiver's " +
			"/rest/db/status (polled every 50 ms; each answer costs it ~1 ms of CPU) says idle with nothing needed, its local counts equal to its global " +
			"ones, the source's whole index received (its remoteSequence for instance 1 equal to instance 1's sequence) " +
			"and the global counts equal to the source's, while the source's status still says idle with the tree's " +
			"counts; the time is that of the receiver's answer. Both tools connect through the same kind of counting " +
			"TCP proxy (internal/faultproxy, in the runner): B dials A, instance 2 dials instance 1. " +
			"The mutation round (mkdata.py --mutate --round 1, the mirror section's) is applied to the source while " +
			"both nodes of the tool under test run, after a `sync`; each tool's round runs from the end of the " +
			"mutation command to the replica complete by the same tests against the mutated tree (ours from the " +
			"mutation's end straight into the mirror section's wait, no pause). The replica is compared with the " +
			"source after the initial mirror and after the round (untimed; as in the mirror section: paths, types, " +
			"permission bits, files' size, mtime in ns and bytes, symlink targets; Syncthing's own .stfolder marker, " +
			"which each instance makes and never syncs, is left out of its comparison). `sync` runs before each timed " +
			"start. CPU times are both nodes' (/proc/PID/stat) over the timed interval; the proxy's copy runs in the " +
			"runner and is not in them.",
	}
}

// syncthingMetricIDs are the ids of syncthingMetricDefs.
func syncthingMetricIDs() []string {
	ids := make([]string, len(syncthingMetricDefs))
	for i, m := range syncthingMetricDefs {
		ids[i] = m.id
	}
	return ids
}

// syncthingSection runs the syncthing section and writes it, as
// runBackend does for the others: the Syncthing binary is copied once
// from c.bin, like the others, so every pair uses the same one.
func (s *suite) syncthingSection(ctx context.Context, c *config, env *envInfo, work string) error {
	src := filepath.Join(c.bin, "syncthing")
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("the syncthing section needs Syncthing: %v (run `make bin/syncthing`)", err)
	}
	bin := filepath.Join(work, "bin", "syncthing")
	h := sha256.New()
	if err := copyFile(src, bin, h); err != nil {
		return err
	}
	ver := "syncthing (version unknown)"
	if out, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		ver = strings.TrimSpace(string(out))
	}
	fi, _ := os.Stat(src)
	ver = fmt.Sprintf("%s (%s, file time %s, sha256 %x)", ver, binaryVersion(src), fi.ModTime().UTC().Format("2006-01-02 15:04:05"), h.Sum(nil)[:6])
	s.backend = syncthingBackend(ver)
	if !s.any() {
		return nil
	}
	s.selectMetrics()
	if err := os.MkdirAll(s.work, 0o755); err != nil {
		return err
	}
	progress("anchor: %s", ver)
	for p := 1; p <= s.pairs; p++ {
		if err := s.pairSyncthing(ctx, p, bin); err != nil {
			return err
		}
	}
	return s.publish(env, c.out)
}

// pairSyncthing runs one pair: ours, then Syncthing, each on a fresh copy
// of the data set at the same path.
func (s *suite) pairSyncthing(ctx context.Context, p int, bin string) error {
	pdir := filepath.Join(s.work, fmt.Sprintf("p%d", p))
	src := filepath.Join(s.work, "src", "data")
	defer os.RemoveAll(pdir)
	defer os.RemoveAll(filepath.Dir(src))
	if err := s.freshSource(ctx, p, src, pdir); err != nil {
		return err
	}
	if err := s.syncthingOurs(ctx, p, src, filepath.Join(pdir, "ours")); err != nil {
		return err
	}
	if err := s.freshSource(ctx, p, src, pdir); err != nil {
		return err
	}
	return s.syncthingTheirs(ctx, p, bin, src, filepath.Join(pdir, "syncthing"))
}

// freshSource removes the previous source and pair directory and copies
// the data set to src.
func (s *suite) freshSource(ctx context.Context, p int, src, pdir string) error {
	for _, d := range []string{filepath.Dir(src), pdir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return err
	}
	s.say(p, "copying the data set to %s", src)
	return s.data.copyTo(ctx, s.run, src)
}

// syncthingOurs runs ours' side of a pair in dir: two `syncd run` nodes set
// up as the mirror section sets them up, the initial mirror of src, then
// the mutation round.
func (s *suite) syncthingOurs(ctx context.Context, p int, src, dir string) error {
	dst := filepath.Join(dir, "b", "data")
	want, err := countTree(src)
	if err != nil {
		return err
	}
	a, err := newMirrorNode("a", filepath.Join(dir, "a"), src)
	if err != nil {
		return err
	}
	b, err := newMirrorNode("b", filepath.Join(dir, "b"), dst)
	if err != nil {
		return err
	}
	if s.nodeLogs != "" {
		a.keepLog = filepath.Join(s.nodeLogs, fmt.Sprintf("syncthing-p%d-a.log", p))
		b.keepLog = filepath.Join(s.nodeLogs, fmt.Sprintf("syncthing-p%d-b.log", p))
	}
	defer b.stop()
	defer a.stop()
	for _, n := range []*mirrorNode{a, b} {
		if err := n.makeIdentity(ctx, s.run, s.ours.syncd); err != nil {
			return err
		}
	}
	proxy, err := faultproxy.New(a.listen)
	if err != nil {
		return err
	}
	defer proxy.Close()

	syscall.Sync()
	startA := time.Now()
	if err := a.start(ctx, s.run, s.ours.syncd, a.config("send-only", b, b.listen)); err != nil {
		return err
	}
	indexed, err := a.proc.waitReady(ctx, startA, 15*time.Minute)
	if err != nil {
		return err
	}
	s.record("scan", 0, indexed.Seconds())
	s.say(p, "scan      ours       A indexed the source in %.2f s (untimed)", indexed.Seconds())
	syscall.Sync()
	if err := b.start(ctx, s.run, s.ours.syncd, b.config("receive-only", a, proxy.Addr())); err != nil {
		return err
	}
	up := time.Now()
	cpu0 := a.cpu() + b.cpu()
	done, err := waitMirrored(ctx, a, b, proxy, want)
	if err != nil {
		return err
	}
	cpu := (a.cpu() + b.cpu() - cpu0).Seconds()
	wire := proxy.BytesUp() + proxy.BytesDown()
	s.recordMirror("initial", 0, done.Sub(up).Seconds(), cpu)
	s.record("initial-bytes", 0, float64(wire))
	s.say(p, "initial   ours      %7.2f s (cpu %6.2f s, both nodes); wire %s", done.Sub(up).Seconds(), cpu, iec(wire))
	s.checkReplica(ctx, p, 0, "replica equals the source after the initial mirror", src, dst)

	// The mutation round, applied while both nodes run.
	syscall.Sync()
	wire0 := proxy.BytesUp() + proxy.BytesDown()
	if err := s.data.mutate(ctx, s.run, src, 1); err != nil {
		return err
	}
	end := time.Now()
	cpu0 = a.cpu() + b.cpu()
	mwant, err := countTree(src)
	if err != nil {
		return err
	}
	if done, err = waitMirrored(ctx, a, b, proxy, mwant); err != nil {
		return err
	}
	cpu = (a.cpu() + b.cpu() - cpu0).Seconds()
	wire = proxy.BytesUp() + proxy.BytesDown() - wire0
	s.recordMirror("round", 0, done.Sub(end).Seconds(), cpu)
	s.record("round-first", 0, done.Sub(end).Seconds())
	s.record("round-bytes", 0, float64(wire))
	s.say(p, "round     ours      %7.2f s (cpu %6.2f s, both nodes) from the end of the mutation; wire %s", done.Sub(end).Seconds(), cpu, iec(wire))
	s.checkReplica(ctx, p, 0, "replica equals the source after the mutation round", src, dst)
	return nil
}

// syncthingTheirs runs Syncthing's side of a pair in dir: two instances,
// the initial mirror of src, then the mutation round.
func (s *suite) syncthingTheirs(ctx context.Context, p int, bin, src, dir string) error {
	dst := filepath.Join(dir, "replica")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	var sts [2]*stInstance
	for i, name := range []string{"1", "2"} {
		st, err := newSTInstance(name, filepath.Join(dir, "home"+name))
		if err != nil {
			return err
		}
		sts[i] = st
		defer st.stop()
		if err := st.start(ctx, s.run, bin); err != nil {
			return err
		}
		// The options, then a restart, so that all of them hold from the
		// start (setLowPriority only takes effect at startup).
		if err := st.configure(ctx, s.run, nil, nil); err != nil {
			return err
		}
		if err := st.restart(ctx, s.run, bin); err != nil {
			return err
		}
	}
	s1, s2 := sts[0], sts[1]
	proxy, err := faultproxy.New(s1.listen)
	if err != nil {
		return err
	}
	defer proxy.Close()

	// Instance 1 serves the source; instance 2 has only the options yet.
	want, err := countSTTree(src)
	if err != nil {
		return err
	}
	shared := time.Now()
	if err := s1.configure(ctx, s.run, []stDevice{{id: s2.id, name: "st2", addresses: []string{"dynamic"}}},
		[]stFolder{{id: stFolderID, path: src, kind: "sendonly", devices: []string{s1.id, s2.id}}}); err != nil {
		return err
	}
	if err := s.stWaitScanned(ctx, p, s1, want); err != nil {
		return err
	}
	scanned := time.Since(shared)
	s.record("scan", 1, scanned.Seconds())
	s.say(p, "scan      Syncthing  instance 1 scanned the source in %.2f s (untimed)", scanned.Seconds())

	// The initial mirror: instance 2 joins.
	syscall.Sync()
	if err := s2.configure(ctx, s.run, []stDevice{{id: s1.id, name: "st1", addresses: []string{"tcp://" + proxy.Addr()}}},
		[]stFolder{{id: stFolderID, path: dst, kind: "receiveonly", devices: []string{s2.id, s1.id}}}); err != nil {
		return err
	}
	up := time.Now()
	cpu0 := s1.cpu() + s2.cpu()
	done, _, err := s.stWait(ctx, p, s1, s2, want, -1)
	if err != nil {
		return err
	}
	cpu := (s1.cpu() + s2.cpu() - cpu0).Seconds()
	wire := proxy.BytesUp() + proxy.BytesDown()
	s.recordMirror("initial", 1, done.Sub(up).Seconds(), cpu)
	s.record("initial-bytes", 1, float64(wire))
	s.say(p, "initial   Syncthing %7.2f s (cpu %6.2f s, both instances); wire %s", done.Sub(up).Seconds(), cpu, iec(wire))
	s.stCheckReplica(p, "replica equals the source after the initial mirror", src, dst)

	// The mutation round, applied while both instances run.
	st0, err := s1.folderStatus(ctx, stFolderID)
	if err != nil {
		return err
	}
	syscall.Sync()
	wire0 := proxy.BytesUp() + proxy.BytesDown()
	if err := s.data.mutate(ctx, s.run, src, 1); err != nil {
		return err
	}
	end := time.Now()
	cpu0 = s1.cpu() + s2.cpu()
	mwant, err := countSTTree(src)
	if err != nil {
		return err
	}
	var first time.Time
	if done, first, err = s.stWait(ctx, p, s1, s2, mwant, st0.Sequence); err != nil {
		return err
	}
	s.record("round-first", 1, first.Sub(end).Seconds())
	cpu = (s1.cpu() + s2.cpu() - cpu0).Seconds()
	wire = proxy.BytesUp() + proxy.BytesDown() - wire0
	s.recordMirror("round", 1, done.Sub(end).Seconds(), cpu)
	s.record("round-bytes", 1, float64(wire))
	s.say(p, "round     Syncthing %7.2f s (cpu %6.2f s, both instances) from the end of the mutation, its first scan applied after %.2f s; wire %s",
		done.Sub(end).Seconds(), cpu, first.Sub(end).Seconds(), iec(wire))
	s.stCheckReplica(p, "replica equals the source after the mutation round", src, dst)
	return nil
}

// stWaitScanned polls the source instance until its folder is scanned
// with want (stScanned).
func (s *suite) stWaitScanned(ctx context.Context, p int, src *stInstance, want stTree) error {
	deadline := time.Now().Add(stComplete)
	lastSay := time.Now()
	for {
		if err := src.alive(); err != nil {
			return err
		}
		st, err := src.folderStatus(ctx, stFolderID)
		if err != nil {
			return err
		}
		ok, why := stScanned(st, want)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("syncthing: source not scanned after %v: %s", stComplete, why)
		}
		if time.Since(lastSay) > stSay {
			s.say(p, "Syncthing scanning: %s", why)
			lastSay = time.Now()
		}
		if err := sleepCtx(ctx, stPoll); err != nil {
			return err
		}
	}
}

// stWait polls until the replica is complete (stDone) and returns the time
// of the receiver's answer that said so. The source is asked only when
// the receiver's own status says it has everything it knows of. With
// seq0 ≥ 0 (the source's sequence before a change), first is the time of
// the first answer after which the receiver had applied a newer index of
// the source (stFirstApplied).
func (s *suite) stWait(ctx context.Context, p int, src, dst *stInstance, want stTree, seq0 int64) (done, first time.Time, err error) {
	deadline := time.Now().Add(stComplete)
	lastSay := time.Now()
	var why string
	for {
		for _, st := range []*stInstance{src, dst} {
			if err := st.alive(); err != nil {
				return done, first, err
			}
		}
		ds, err := dst.folderStatus(ctx, stFolderID)
		if err != nil {
			return done, first, err
		}
		at := time.Now()
		ok, w := stReceived(ds)
		if ok {
			ss, err := src.folderStatus(ctx, stFolderID)
			if err != nil {
				return done, first, err
			}
			if first.IsZero() && seq0 >= 0 && stFirstApplied(ss, ds, src.id, seq0) {
				first = at
			}
			if ok, w = stDone(ss, ds, src.id, want); ok {
				return at, first, nil
			}
		}
		why = w
		if time.Now().After(deadline) {
			return done, first, fmt.Errorf("syncthing: replica not complete after %v: %s", stComplete, why)
		}
		if time.Since(lastSay) > stSay {
			s.say(p, "Syncthing not complete yet: %s", why)
			lastSay = time.Now()
		}
		if err := sleepCtx(ctx, stPoll); err != nil {
			return done, first, err
		}
	}
}

// stCheckReplica compares Syncthing's replica with the source
// (compareMirror, as checkReplica does for ours) and notes the result in
// the anchor's column; the table keeps the first failure's details.
func (s *suite) stCheckReplica(p int, title, src, dst string) {
	problems := withoutSTInternal(compareMirror(src, dst))
	result := "pass"
	if len(problems) > 0 {
		s.say(p, "WARNING: Syncthing: %s: %d differences", title, len(problems))
		for _, pr := range summarizeList(problems, 20) {
			s.say(p, "  Syncthing: %s", pr)
		}
		result = fmt.Sprintf("FAIL (pair %d: %d): %s", p, len(problems), summarize(problems, 3))
	}
	s.say(p, "Syncthing: %s: %s", title, result)
	if c := s.findCheck(title); c != nil && strings.HasPrefix(c.result[1], "FAIL") {
		if result != "pass" {
			result = c.result[1] + "; " + result
		} else {
			result = c.result[1]
		}
	}
	s.note(title, 1, result)
}
