package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/syncd/syncd/internal/faultproxy"
)

// The link of the wan section: 100 Mbit/s each way, 10 ms one way (a
// 20 ms round trip), emulated by internal/faultproxy in the runner.
const (
	wanRate  = 100_000_000 / 8 // bytes per second, each direction
	wanDelay = 10 * time.Millisecond
)

// wanMetricDefs are the rows of the wan section: issue 14's bar for a
// 100 Mbit/s, 20 ms link, against rsync and rsync -z over the same link.
var wanMetricDefs = []metric{
	{id: "initial", title: "initial mirror over the link vs `rsync -a` (wall time)", unit: seconds, bar: 0.5},
	{id: "initial-z", title: "initial mirror over the link vs `rsync -a -z --compress-choice=zstd` (wall time)", unit: seconds, bar: 0.9},
	{id: "bytes", title: "bytes on the wire, both directions, vs `rsync -a` (informational)", unit: byteCount},
	{id: "bytes-z", title: "bytes on the wire, both directions, vs `rsync -a -z --compress-choice=zstd` (informational)", unit: byteCount},
	{id: "switch", title: "ours: from B's /healthz to compression auto's first switch to compressed blocks (informational)", unit: seconds, anchorless: true},
}

// wanBackend is the wan section; the anchor is rsync (version ver).
func wanBackend(ver string) Backend {
	return Backend{
		Name:  "wan",
		Title: "Mirroring over a 100 Mbit/s link with a 20 ms round trip, against rsync and `rsync -z`",
		Note: "`tc qdisc … netem` is not available on these machines (the kernel has no netem: \"Specified qdisc " +
			"kind is unknown\"), so the link is the runner's own TCP proxy. The switch row says when syncd's " +
			"`compression: auto` (PROTOCOL.md, \"Compression\") first asked for compressed blocks, from node B's log; " +
			"n/a if it never did.",
		Anchor:        "rsync",
		AnchorVersion: ver + ", to `rsync --daemon` on 127.0.0.1 (as in the mirror section), through the same kind of shaped proxy",
		Procedure: "The link: internal/faultproxy in the runner with `Shape(12,500,000 bytes/s, 10 ms)`: each direction " +
			"is a link of its own of 100 Mbit/s shared by every connection through that proxy in that direction, and " +
			"every byte arrives 10 ms after its serialization onto the link ends (real latency, with up to the " +
			"bandwidth-delay product in flight, not a pause per write); the proxy counts the bytes it delivers. Each " +
			"pair starts from a fresh copy of the data set (cp -a) as the source, and runs ours, then `rsync -a`, then " +
			"`rsync -a -z --compress-choice=zstd`. Ours: two `syncd run` on 127.0.0.1 set up as in the mirror section " +
			"(fresh state, identities made by `syncd id`, untimed; A send-only with the source, B receive-only with an " +
			"empty directory; default settings, so `compression: auto`; no repository); B dials A through one shaped " +
			"proxy and A dials B through another, so every byte between them crosses the link. A starts first and " +
			"indexes the source (untimed); once A is ready (/readyz) B starts; the timed interval runs from B's /healthz " +
			"answering until the replica is complete: the last time bytes moved through B's proxy before a quiet spell " +
			"in which both /status say so (the mirror section's test: A's folder scanned, nothing pending or left to " +
			"send, B connected with lag 0 and behind 0, B's files and bytes equal to A's). Ours' bytes are both " +
			"proxies' counts, both directions, TLS included, from B's start to that moment. The nodes are then stopped " +
			"and the replica compared with the source (untimed). Anchors: `rsync -a --delete --stats SRC/ " +
			"rsync://PROXY/bench/DST/` into an empty directory, timed as a command, through a second shaped proxy (the " +
			"same link) to the rsync daemon; its bytes are that proxy's count both ways; then the same with " +
			"`-z --compress-choice=zstd` into an emptied directory. Each replica is compared with the source. `sync` " +
			"runs before each timed start. Replica comparison as in the mirror section.",
		Defs:    wanMetricDefs,
		Metrics: []string{"initial", "initial-z", "bytes", "bytes-z", "switch"},
	}
}

// measureWan runs the wan section: one rsync daemon behind one shaped
// proxy for the section, then s.pairs pairs.
func (s *suite) measureWan(ctx context.Context) error {
	rdir := filepath.Join(s.work, "rsyncd")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return err
	}
	rd, err := startRsyncd(ctx, s.run, rdir, filepath.Join(s.work, "rsync-dst"))
	if err != nil {
		return err
	}
	defer rd.stop()
	rp, err := shapedProxy(rd.addr)
	if err != nil {
		return err
	}
	defer rp.Close()
	progress("rsync daemon on %s (pid %d), through the shaped proxy %s (%d bytes/s, %v each way); module path %s",
		rd.addr, rd.cmd.Process.Pid, rp.Addr(), wanRate, wanDelay, rd.dst)
	for p := 1; p <= s.pairs; p++ {
		if err := s.pairWan(ctx, p, rd, rp); err != nil {
			return err
		}
	}
	return nil
}

// shapedProxy starts a proxy to target shaped as the wan section's link.
func shapedProxy(target string) (*faultproxy.Proxy, error) {
	p, err := faultproxy.New(target)
	if err != nil {
		return nil, err
	}
	p.Shape(wanRate, wanDelay)
	return p, nil
}

// pairWan runs one pair of the wan section: ours, rsync, rsync -z.
func (s *suite) pairWan(ctx context.Context, p int, rd *rsyncDaemon, rp *faultproxy.Proxy) error {
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
	if err := s.wanOurs(ctx, p, pdir, src); err != nil {
		return err
	}
	for _, z := range []bool{false, true} {
		timeID, bytesID, title, extra := "initial", "bytes", "replica equals the source after the initial mirror", []string(nil)
		if z {
			timeID, bytesID, title = "initial-z", "bytes-z", "replica equals the source after the initial mirror (rsync: with -z --compress-choice=zstd)"
			extra = []string{"-z", "--compress-choice=zstd"}
		}
		if !s.want(timeID) && !s.want(bytesID) {
			continue
		}
		if err := emptyDir(rd.dst); err != nil {
			return err
		}
		syscall.Sync()
		if _, err := s.rsyncRun(ctx, p, rd, rp, src, timeID, bytesID, "", extra...); err != nil {
			return err
		}
		s.checkReplica(ctx, p, 1, title, src, rd.dst)
	}
	return emptyDir(rd.dst)
}

// wanOurs mirrors src to a new replica with two syncd nodes whose
// connections cross the shaped link, and records the time, the bytes
// and when compression auto first switched to compressed blocks.
func (s *suite) wanOurs(ctx context.Context, p int, pdir, src string) error {
	dst := filepath.Join(pdir, "b", "data")
	a, err := newMirrorNode("a", filepath.Join(pdir, "a"), src)
	if err != nil {
		return err
	}
	b, err := newMirrorNode("b", filepath.Join(pdir, "b"), dst)
	if err != nil {
		return err
	}
	if s.nodeLogs != "" {
		a.keepLog = filepath.Join(s.nodeLogs, fmt.Sprintf("wan-p%d-a.log", p))
		b.keepLog = filepath.Join(s.nodeLogs, fmt.Sprintf("wan-p%d-b.log", p))
	}
	defer b.stop()
	defer a.stop()
	for _, n := range []*mirrorNode{a, b} {
		if err := n.makeIdentity(ctx, s.run, s.ours.syncd); err != nil {
			return err
		}
	}
	toA, err := shapedProxy(a.listen)
	if err != nil {
		return err
	}
	defer toA.Close()
	toB, err := shapedProxy(b.listen)
	if err != nil {
		return err
	}
	defer toB.Close()
	wire := func() int64 { return toA.BytesUp() + toA.BytesDown() + toB.BytesUp() + toB.BytesDown() }

	syscall.Sync()
	startA := time.Now()
	if err := a.start(ctx, s.run, s.ours.syncd, a.config("send-only", b, toB.Addr())); err != nil {
		return err
	}
	indexed, err := a.proc.waitReady(ctx, startA, 15*time.Minute)
	if err != nil {
		return err
	}
	s.say(p, "initial   ours   A indexed the source in %.2f s (untimed)", indexed.Seconds())
	syscall.Sync()
	wire0 := wire()
	if err := b.start(ctx, s.run, s.ours.syncd, b.config("receive-only", a, toA.Addr())); err != nil {
		return err
	}
	up := time.Now()
	cpu0 := a.cpu() + b.cpu()
	done, err := waitMirrored(ctx, a, b, toA, treeCount{int64(s.data.Files), s.data.Bytes})
	if err != nil {
		return err
	}
	cpu := (a.cpu() + b.cpu() - cpu0).Seconds()
	wall := done.Sub(up).Seconds()
	bytes := wire() - wire0
	s.recordMirror("initial", 0, wall, cpu)
	s.recordMirror("initial-z", 0, wall, cpu)
	s.record("bytes", 0, float64(bytes))
	s.record("bytes-z", 0, float64(bytes))
	s.say(p, "initial   ours   %7.2f s (cpu %6.2f s, both daemons); wire %s both ways (B→A %s, A→B %s on B's connections; %s on A's)",
		wall, cpu, iec(bytes), iec(toA.BytesUp()), iec(toA.BytesDown()), iec(toB.BytesUp()+toB.BytesDown()))
	switches, err := compressionSwitches(b.proc.logPath, up)
	if err != nil {
		return err
	}
	if len(switches) == 0 {
		s.say(p, "initial   ours   compression auto never switched to compressed blocks")
	}
	for i, sw := range switches {
		if i == 0 && sw.zstd {
			s.record("switch", 0, sw.at.Seconds())
		}
		s.say(p, "initial   ours   %.2f s after B's start: %s", sw.at.Seconds(), sw.line)
	}
	a.stop()
	b.stop()
	s.checkReplica(ctx, p, 0, "replica equals the source after the initial mirror", src, dst)
	return nil
}

// compressionSwitch is one switch of compression auto in a node's log.
type compressionSwitch struct {
	at   time.Duration // after the start given to compressionSwitches
	zstd bool          // to compressed blocks (false: back to raw)
	line string        // the message and the rates it compared
}

// compressionSwitches reads the switches of compression auto from the
// log of `syncd run` at path (slog text: time=… level=INFO msg="compression
// auto: asking for …"), with their times after start.
func compressionSwitches(path string, start time.Time) ([]compressionSwitch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []compressionSwitch
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		i := strings.Index(l, "compression auto: asking for ")
		if i < 0 {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, fmt.Errorf("%s: a switch without a time: %q", path, l)
		}
		msg := strings.Replace(strings.TrimPrefix(l[i:], "compression auto: "), `"`, "", 1) // the end of msg="…"
		out = append(out, compressionSwitch{
			at:   t.Sub(start),
			zstd: strings.HasPrefix(msg, "asking for compressed"),
			line: msg,
		})
	}
	return out, sc.Err()
}
