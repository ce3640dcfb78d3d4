package main

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/syncd/syncd/internal/faultproxy"
)

// replaceMetricDefs are the rows of the replace section (issue 13): a
// node replaced by restoring the latest snapshot and letting it catch up.
var replaceMetricDefs = []metric{
	{id: "fetched", title: "bytes of blocks the replacement node fetched from its peer (its /metrics) vs the bytes the mutation round changed and added (goal ≤ 1.1)", unit: byteCount, bar: 1.1},
	{id: "sent", title: "bytes of blocks the peer served the replacement node (the peer's /metrics) vs the same round's bytes (goal ≤ 1.1)", unit: byteCount, bar: 1.1},
	{id: "time", title: "replacement node: from its start to equal with the fleet, vs a full initial mirror of the tree onto an empty node (wall)", unit: seconds},
	{id: "wire", title: "bytes on the wire between the replacement node and its peer, both ways (TCP proxy), vs the full initial mirror's (informational)", unit: byteCount},
	{id: "restore", title: "`restore latest` of the snapshot for the replacement node (operator's step before it starts; informational)", unit: seconds, anchorless: true},
}

// Check rows of the replace section.
const (
	replaceEqual     = "replacement node equals the fleet (peer's folder) after catching up"
	replaceConflicts = "conflict copies on any node (goal 0)"
	replaceFleet     = "the fleet's tree unchanged by the replacement (nothing deleted after the snapshot came back)"
	replaceFullEqual = "empty node equals the fleet after the full initial mirror"
)

// replaceBackend is the replace section: local repositories below root.
func replaceBackend(root string) Backend {
	b := localBackend(root)
	b.Name = "replace"
	b.Title = "Replacing a node (issue 13): restore the latest snapshot, then catch up from the peer"
	b.Defs = replaceMetricDefs
	b.Anchor = "reference"
	b.AnchorVersion = "the byte rows against the mutation round's changed and added bytes; the time and wire rows " +
		"against a full initial mirror of the tree onto an empty node with a new state_dir"
	b.Procedure = "Each pair starts from a fresh copy of the data set (cp -a) as node A's folder `data` " +
		"(send-receive, peer C); A starts (`syncd run`, no repository, default settings) and indexes it (untimed). " +
		"C (send-receive, peer A, dialled through a counting TCP proxy) starts with an empty folder and a new " +
		"state_dir: the full initial mirror of the tree, the reference of the time and wire rows, timed from C's " +
		"/healthz answering until C is complete (the same test as the mirror section: the last bytes through " +
		"the proxy before both /status agree: files and bytes equal, nothing to send or lagging). " +
		"`syncd snapshot` of A's folder goes into a fresh local repository (untimed). The mutation round " +
		"(mkdata.py --mutate --round 1) is applied to A's folder while both run, and C follows it. Its bytes: " +
		"every file that is new or whose size or mtime changed, at its size, except renamed files (a new path " +
		"with the size and mtime of a vanished one) and big/db.sql, which counts the 1 MiB overwritten in its " +
		"middle (a file changed in place travels by chunks). Then C is lost and replaced as the runbook says: " +
		"stopped, its folder and state database removed (its identity kept, so A's config stays), `restore " +
		"latest --target T` (timed, informational), T/<A's folder> renamed to C's folder, and `syncd run` " +
		"started; the time row runs from its /healthz to complete as above. C's fetched bytes and A's served " +
		"bytes are the syncd_peer_fetched_bytes_total (since C's start) and syncd_peer_sent_bytes_total (its " +
		"increase over the replacement) counters. After each step C's folder is compared with A's, both are " +
		"searched for `*.sync-conflict-*`, and A's file count and bytes must be what they were before C started."
	return b
}

// pairReplace runs one pair of the replace section (see its Procedure).
func (s *suite) pairReplace(ctx context.Context, p int) error {
	pdir := filepath.Join(s.work, fmt.Sprintf("p%d", p))
	src := filepath.Join(s.work, "src", "data")
	for _, d := range []string{filepath.Dir(src), pdir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	defer os.RemoveAll(pdir)
	defer os.RemoveAll(filepath.Dir(src))
	s.say(p, "copying the data set to %s", src)
	if err := s.data.copyTo(ctx, s.run, src); err != nil {
		return err
	}
	repo, err := s.backend.Repo(ctx, "ours", fmt.Sprintf("p%d-replace", p))
	if err != nil {
		return err
	}
	defer repo.Remove(context.Background())
	if err := s.ours.init(ctx, repo); err != nil {
		return err
	}

	a, err := newMirrorNode("a", filepath.Join(pdir, "a"), src)
	if err != nil {
		return err
	}
	cFolder := filepath.Join(pdir, "c", "data")
	c, err := newMirrorNode("c", filepath.Join(pdir, "c"), cFolder)
	if err != nil {
		return err
	}
	if s.nodeLogs != "" {
		a.keepLog = filepath.Join(s.nodeLogs, fmt.Sprintf("replace-p%d-a.log", p))
		c.keepLog = filepath.Join(s.nodeLogs, fmt.Sprintf("replace-p%d-c.log", p))
	}
	defer c.stop()
	defer a.stop()
	for _, n := range []*mirrorNode{a, c} {
		if err := n.makeIdentity(ctx, s.run, s.ours.syncd); err != nil {
			return err
		}
	}
	proxy, err := faultproxy.New(a.listen)
	if err != nil {
		return err
	}
	defer proxy.Close()
	startA := time.Now()
	if err := a.start(ctx, s.run, s.ours.syncd, a.config("send-receive", c, c.listen)); err != nil {
		return err
	}
	indexed, err := a.proc.waitReady(ctx, startA, 15*time.Minute)
	if err != nil {
		return err
	}
	s.say(p, "A indexed the data set in %.2f s (untimed)", indexed.Seconds())
	want, err := countTree(src)
	if err != nil {
		return err
	}

	// The reference, and the fleet's history: the full initial mirror of
	// the tree onto C, empty.
	wall, wire, err := s.replaceRun(ctx, p, a, c, proxy, want, "full mirror")
	if err != nil {
		return err
	}
	s.record("time", 1, wall)
	s.record("wire", 1, float64(wire))
	s.replaceChecks(p, src, cFolder, want, replaceFullEqual)

	res, err := s.ours.backup(ctx, repo, src)
	if err != nil {
		return err
	}
	s.say(p, "snapshot of A's folder in %.2f s (untimed): %s", res.Wall.Seconds(), s.ours.summary(res))

	// The mutation round, on A, followed by C; and its bytes.
	before, err := fileTable(src)
	if err != nil {
		return err
	}
	if err := s.data.mutate(ctx, s.run, src, 1); err != nil {
		return err
	}
	after, err := fileTable(src)
	if err != nil {
		return err
	}
	round := roundBytes(before, after)
	if want, err = countTree(src); err != nil {
		return err
	}
	if err := sleepCtx(ctx, mirrorSettle); err != nil {
		return err
	}
	if _, err := waitMirrored(ctx, a, c, proxy, want); err != nil {
		return err
	}
	s.say(p, "mutation round on A, followed by C: %s changed and added (%d files, %s in the tree)", iec(round), want.files, iec(want.bytes))

	// C is lost. The operator's steps: restore the snapshot, move it into
	// place as C's folder, a new state database, start.
	c.stop()
	if err := os.RemoveAll(cFolder); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(c.dir, "state", "state.db")); err != nil {
		return err
	}
	target := filepath.Join(pdir, "restore")
	res, err = s.ours.restore(ctx, repo, target)
	if err != nil {
		return err
	}
	s.record("restore", 0, res.Wall.Seconds())
	s.say(p, "restore   ours   %7.2f s (cpu %6.2f s)", res.Wall.Seconds(), res.CPU.Seconds())
	if err := os.Rename(filepath.Join(target, src), cFolder); err != nil {
		return err
	}
	os.RemoveAll(target)
	sent0, err := metricValue(ctx, a, `syncd_peer_sent_bytes_total{folder="data",peer="c"}`)
	if err != nil {
		return err
	}
	if wall, wire, err = s.replaceRun(ctx, p, a, c, proxy, want, "replacement"); err != nil {
		return err
	}
	fetched, err := metricValue(ctx, c, "syncd_peer_fetched_bytes_total")
	if err != nil {
		return err
	}
	sent, err := metricValue(ctx, a, `syncd_peer_sent_bytes_total{folder="data",peer="c"}`)
	if err != nil {
		return err
	}
	sent -= sent0
	s.record("time", 0, wall)
	s.record("wire", 0, float64(wire))
	s.record("fetched", 0, float64(fetched))
	s.record("fetched", 1, float64(round))
	s.record("sent", 0, float64(sent))
	s.record("sent", 1, float64(round))
	s.say(p, "replacement: C fetched %s, A served %s; the round changed and added %s (%.3f×, %.3f×)",
		iec(fetched), iec(sent), iec(round), float64(fetched)/float64(round), float64(sent)/float64(round))
	s.replaceChecks(p, src, cFolder, want, replaceEqual)
	return nil
}

// replaceRun starts c (A its peer through proxy) and waits until it is
// complete; it returns the wall time from its /healthz and the bytes that
// went through the proxy meanwhile.
func (s *suite) replaceRun(ctx context.Context, p int, a, c *mirrorNode, proxy *faultproxy.Proxy, want treeCount, what string) (float64, int64, error) {
	syscall.Sync()
	w0 := proxy.BytesUp() + proxy.BytesDown()
	if err := c.start(ctx, s.run, s.ours.syncd, c.config("send-receive", a, proxy.Addr())); err != nil {
		return 0, 0, err
	}
	up := time.Now()
	done, err := waitMirrored(ctx, a, c, proxy, want)
	if err != nil {
		return 0, 0, err
	}
	wall := done.Sub(up).Seconds()
	wire := proxy.BytesUp() + proxy.BytesDown() - w0
	s.say(p, "%-11s %7.2f s from C's start to complete; wire %s both ways", what, wall, iec(wire))
	return wall, wire, nil
}

// replaceChecks compares C's folder with A's, looks for conflict copies
// on both and checks that A's tree is what it was before C started.
func (s *suite) replaceChecks(p int, src, cFolder string, want treeCount, equalTitle string) {
	result := "pass"
	if problems := compareMirror(src, cFolder); len(problems) > 0 {
		result = fmt.Sprintf("FAIL (pair %d, %d): %s", p, len(problems), summarize(problems, 3))
	}
	s.note(equalTitle, 0, result)
	var copies []string
	for _, dir := range []string{src, cFolder} {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && strings.Contains(d.Name(), ".sync-conflict-") {
				copies = append(copies, path)
			}
			return nil
		})
	}
	result = "0"
	if len(copies) > 0 {
		result = fmt.Sprintf("FAIL (pair %d): %d: %s", p, len(copies), summarize(copies, 3))
	}
	s.note(replaceConflicts, 0, result)
	result = "pass"
	if got, err := countTree(src); err != nil || got != want {
		result = fmt.Sprintf("FAIL (pair %d): %d files %d bytes, want %d %d (%v)", p, got.files, got.bytes, want.files, want.bytes, err)
	}
	s.note(replaceFleet, 0, result)
	s.say(p, "checks: %s", result)
}

// fileInfo is a regular file's size and mtime.
type fileInfo struct{ size, mtime int64 }

// fileTable lists the regular files below dir by relative path.
func fileTable(dir string) (map[string]fileInfo, error) {
	out := map[string]fileInfo{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = fileInfo{fi.Size(), fi.ModTime().UnixNano()}
		return nil
	})
	return out, err
}

// roundBytes is what a mutation round changed and added between the
// listings before and after (see replaceBackend's Procedure).
func roundBytes(before, after map[string]fileInfo) int64 {
	vanished := map[fileInfo]int{}
	for rel, fi := range before {
		if _, ok := after[rel]; !ok {
			vanished[fi]++
		}
	}
	var n int64
	for rel, fi := range after {
		old, had := before[rel]
		switch {
		case had && old == fi:
		case !had && vanished[fi] > 0:
			vanished[fi]-- // renamed
		case had && rel == filepath.Join("big", "db.sql"):
			n += 1 << 20
		default:
			n += fi.size
		}
	}
	return n
}

// metricValue adds up the samples of n's /metrics whose line begins with
// prefix followed by a space or, for a bare name, its labels.
func metricValue(ctx context.Context, n *mirrorNode, prefix string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", n.proc.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := n.proc.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("node %s: /metrics: %v", n.name, err)
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok || rest == "" || rest[0] != ' ' && (rest[0] != '{' || strings.HasSuffix(prefix, "}")) {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("node %s: /metrics %s: %v", n.name, prefix, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("node %s: /metrics has no %s", n.name, prefix)
	}
	return int64(sum), sc.Err()
}
