package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/syncd/syncd/internal/faultproxy"
)

// meshSendRate is node.max_send_rate of the fleet's four nodes during the
// timed joins: a web node's uplink, 8 MB/s (64 Mbit/s) for all its peers
// together, low enough that a source's link, not the two cores, bounds
// what one source can give a new node. (At 20 MB/s a join from one peer
// averaged 13 MB/s on the wire on a loaded 2-core machine: the cores
// bounded it, and four links could not be faster than one.)
const meshSendRate = "8MB/s"

// meshFleet is the number of nodes that hold the data set.
const meshFleet = 4

// meshMetricDefs are the rows of the mesh section: issue 14's bar for a
// new node of a 5-node mesh. The "ours" side is the join from four
// peers, the anchor side the join from one.
var meshMetricDefs = []metric{
	{id: "join", title: "new empty node complete, from four peers (ours column) vs from one peer (anchor column): wall time from its /healthz", unit: seconds, bar: 0.7},
	{id: "bytes", title: "bytes the peers sent to the new node, all together, from four vs from one (informational)", unit: byteCount},
	{id: "bytes-p1", title: "from four peers: bytes p1 sent to the new node (informational)", unit: byteCount, anchorless: true},
	{id: "bytes-p2", title: "from four peers: bytes p2 sent to the new node (informational)", unit: byteCount, anchorless: true},
	{id: "bytes-p3", title: "from four peers: bytes p3 sent to the new node (informational)", unit: byteCount, anchorless: true},
	{id: "bytes-p4", title: "from four peers: bytes p4 sent to the new node (informational)", unit: byteCount, anchorless: true},
	{id: "bytes-back", title: "bytes the new node sent to its peers, all together (informational)", unit: byteCount},
}

// meshBackend is the mesh section.
func meshBackend() Backend {
	return Backend{
		Name:  "mesh",
		Title: "5-node mesh: a new empty node from four peers against the same from one peer",
		Note: "Anchor column: ours, the same new node joining from one peer (p1) instead of four. The bar is issue " +
			"14's: from four peers in ≤ 0.7× the time from one. The per-peer rows say which peers served the " +
			"four-peer join (before e37b53a, \"a node pulls from every peer at once\", a new node adopting its " +
			"peers' versions pulled from one peer at a time, and one peer served nearly all of it).",
		Anchor: "from one peer",
		AnchorVersion: "ours from one peer: the same binary, the same fleet and limits, the new node listing only p1 " +
			"(and p1 listing it)",
		Procedure: "Each pair sets up a fleet, untimed: node p1 has a fresh copy of the data set (cp -a) as folder " +
			"`data`, p2, p3 and p4 start with an empty one; all four run `syncd run` on 127.0.0.1 with fresh state " +
			"(identities made by `syncd id`) and the folder in mode send-receive; p1 lists p2..p4 as peers, each of " +
			"them p1 only (direct connections); p1 starts first and indexes its folder (/readyz), then p2..p4 start and " +
			"mirror it, until every node's /status says: folder scanned, nothing pending, its files and bytes equal " +
			"to the data set's, every peer connected with lag 0, behind 0 and nothing left to ask (send_files " +
			"0). (A full mesh of empty nodes from the start took today's syncd over six minutes more of setup, " +
			"checking each node's entries against the others'.) Then two joins, timed, in the order one peer, four peers in odd pairs and the reverse in even " +
			"ones. Before each, every fleet node gets a new configuration by SIGHUP (`syncd run` reloads it: it " +
			"stops its daemon and starts one with the new peers and rates; the same process, identity and index) " +
			"listing every other fleet node as a peer (the full mesh, direct connections), with `node.max_send_rate: " + meshSendRate + "` (" + meshSendRate + " = 64 Mbit/s: a web node's " +
			"uplink, for all its peers together; at 20 MB/s the cores, not the links, bounded a join from one peer), and the sources of the join (p1; or p1..p4) list the new node as " +
			"a peer; the fleet is let settle (the same /status test). The new node starts empty, with fresh state, " +
			"the folder in mode send-receive, no rate limit of its own, and lists its sources as peers: only p1, " +
			"or p1..p4. Every connection between the new node and a source goes through a counting TCP proxy " +
			"(internal/faultproxy, in the runner; one per direction of dialing per source), which gives the bytes " +
			"each source sent to the new node (TLS included). The timed interval runs from the new node's /healthz " +
			"answering until it is complete: the last time bytes moved through any of its proxies (read every " +
			"2 ms) before a quiet spell in which the new node's /status says its folder is scanned with nothing " +
			"pending, its files and bytes equal to the data set's, each source connected with lag 0, behind 0 and " +
			"send_files 0, and each source's /status says the same of the new node (/status is asked only after " +
			"100 ms without traffic and at most every 2 s, as in the mirror section). The new node is then stopped, " +
			"its replica compared with p1's folder (untimed), and it and its state removed. `sync` runs before each " +
			"timed start. CPU time is that of the new node and the four fleet nodes over the join. Replica " +
			"comparison as in the mirror section.",
		Defs:    meshMetricDefs,
		Metrics: []string{"join", "bytes", "bytes-p1", "bytes-p2", "bytes-p3", "bytes-p4", "bytes-back"},
	}
}

// meshSection runs the mesh section and writes it.
func (s *suite) meshSection(ctx context.Context, c *config, env *envInfo) error {
	s.backend = meshBackend()
	if !s.any() {
		return nil
	}
	s.selectMetrics()
	if err := os.MkdirAll(s.work, 0o755); err != nil {
		return err
	}
	if err := s.eachPair(ctx, s.pairMesh); err != nil {
		return err
	}
	return s.publish(env, c.out)
}

// pairMesh runs one pair: the fleet, then a join from one peer and one
// from four (in the reverse order in even pairs).
func (s *suite) pairMesh(ctx context.Context, p int) error {
	pdir := filepath.Join(s.work, fmt.Sprintf("p%d", p))
	if err := os.RemoveAll(pdir); err != nil {
		return err
	}
	defer os.RemoveAll(pdir)
	want := treeCount{int64(s.data.Files), s.data.Bytes}
	src := filepath.Join(pdir, "p1", "data")
	s.say(p, "copying the data set to %s (p1's folder)", src)
	if err := s.data.copyTo(ctx, s.run, src); err != nil {
		return err
	}
	fleet := make([]*mirrorNode, meshFleet)
	for i := range fleet {
		name := fmt.Sprintf("p%d", i+1)
		n, err := newMirrorNode(name, filepath.Join(pdir, name), filepath.Join(pdir, name, "data"))
		if err != nil {
			return err
		}
		fleet[i] = n
		defer n.stop()
		if s.nodeLogs != "" {
			n.keepLog = filepath.Join(s.nodeLogs, fmt.Sprintf("mesh-p%d-%s.log", p, name))
		}
		if err := n.makeIdentity(ctx, s.run, s.ours.syncd); err != nil {
			return err
		}
	}
	if err := s.meshStartFleet(ctx, p, fleet, want); err != nil {
		return err
	}
	order := []int{1, meshFleet}
	if p%2 == 0 {
		order = []int{meshFleet, 1}
	}
	for _, k := range order {
		if err := s.meshJoin(ctx, p, pdir, fleet, k, src, want); err != nil {
			return err
		}
	}
	return nil
}

// fleetPeers are the other nodes of the fleet, dialed directly.
func fleetPeers(self *mirrorNode, fleet []*mirrorNode) []meshPeer {
	var peers []meshPeer
	for _, f := range fleet {
		if f != self {
			peers = append(peers, meshPeer{node: f, address: f.listen})
		}
	}
	return peers
}

// peerNames are the names of peers' nodes.
func peerNames(peers []meshPeer) []string {
	names := make([]string, len(peers))
	for i, p := range peers {
		names[i] = p.node.name
	}
	return names
}

// meshStartFleet starts the four fleet nodes, p1 (the data set) first,
// and waits until all four hold the data set, untimed. p2..p4 list only
// p1 here; the first join's reload makes the full mesh. (Started as a
// full mesh of empty nodes, today's syncd took over six minutes after
// the data had arrived to check each node's entries against the other
// empty nodes' at ~15 files/s, "peer's version waits for a local change
// to be indexed", on a loaded machine: setup time, not what is measured.)
func (s *suite) meshStartFleet(ctx context.Context, p int, fleet []*mirrorNode, want treeCount) error {
	start := time.Now()
	expect := make([]meshExpect, len(fleet))
	for i, n := range fleet {
		peers := fleetPeers(n, fleet)
		if i > 0 {
			peers = peers[:1] // p1 only: see meshStartFleet's doc comment
		}
		expect[i] = meshExpect{node: n, peers: peerNames(peers), up: peerNames(peers)}
		if err := n.start(ctx, s.run, s.ours.syncd, meshConfig(n, peers, "")); err != nil {
			return err
		}
		if i == 0 {
			indexed, err := n.proc.waitReady(ctx, start, 15*time.Minute)
			if err != nil {
				return err
			}
			s.say(p, "fleet: p1 indexed the data set in %.2f s (untimed)", indexed.Seconds())
		}
	}
	took, err := meshSettle(ctx, expect, want, mirrorCompleted)
	if err != nil {
		return err
	}
	s.say(p, "fleet: p2..p%d mirrored p1 in %.2f s from their start, no rate limit (untimed)", len(fleet), took.Seconds())
	return nil
}

// meshJoin times a new empty node joining the fleet from its first k
// nodes and records it: side 0 (ours) for k > 1, side 1 (the anchor,
// from one peer) for k == 1.
func (s *suite) meshJoin(ctx context.Context, p int, pdir string, fleet []*mirrorNode, k int, src string, want treeCount) error {
	side, what := 0, fmt.Sprintf("from %d peers", k)
	if k == 1 {
		side, what = 1, "from one peer"
	}
	name := fmt.Sprintf("n%d", k)
	n, err := newMirrorNode(name, filepath.Join(pdir, name), filepath.Join(pdir, name, "data"))
	if err != nil {
		return err
	}
	defer os.RemoveAll(n.dir)
	defer n.stop()
	if s.nodeLogs != "" {
		n.keepLog = filepath.Join(s.nodeLogs, fmt.Sprintf("mesh-p%d-%s.log", p, name))
	}
	if err := n.makeIdentity(ctx, s.run, s.ours.syncd); err != nil {
		return err
	}
	srcs := fleet[:k]
	// to[i]: the new node dials source i; from[i]: source i dials it.
	to, from := make([]*faultproxy.Proxy, k), make([]*faultproxy.Proxy, k)
	var proxies []*faultproxy.Proxy
	defer func() {
		for _, px := range proxies {
			px.Close()
		}
	}()
	for i, f := range srcs {
		if to[i], err = faultproxy.New(f.listen); err != nil {
			return err
		}
		proxies = append(proxies, to[i])
		if from[i], err = faultproxy.New(n.listen); err != nil {
			return err
		}
		proxies = append(proxies, from[i])
	}

	// The fleet: the rate limit, and the sources list the new node.
	expect := make([]meshExpect, len(fleet))
	for i, f := range fleet {
		peers := fleetPeers(f, fleet)
		up := peerNames(peers)
		if i < k {
			peers = append(peers, meshPeer{node: n, address: from[i].Addr()})
		}
		expect[i] = meshExpect{node: f, peers: peerNames(peers), up: up}
		if err := meshReload(ctx, s.run, f, meshConfig(f, peers, meshSendRate)); err != nil {
			return err
		}
	}
	settled, err := meshSettle(ctx, expect, want, 10*time.Minute)
	if err != nil {
		return err
	}
	s.say(p, "join %-13s fleet reloaded with max_send_rate %s, %s listing %s; settled in %.2f s (untimed)",
		what, meshSendRate, strings.Join(peerNames(fleetPeers(nil, srcs)), ", "), name, settled.Seconds())

	// The new node, timed from its /healthz.
	peers := make([]meshPeer, k)
	for i, f := range srcs {
		peers[i] = meshPeer{node: f, address: to[i].Addr()}
	}
	names := peerNames(peers)
	syscall.Sync()
	if err := n.start(ctx, s.run, s.ours.syncd, meshConfig(n, peers, "")); err != nil {
		return err
	}
	up := time.Now()
	cpu := func() time.Duration {
		t := n.cpu()
		for _, f := range fleet {
			t += f.cpu()
		}
		return t
	}
	cpu0 := cpu()
	done := []meshExpect{{node: n, peers: names, up: names}}
	for _, f := range srcs {
		done = append(done, meshExpect{node: f, up: []string{name}})
	}
	end, err := waitJoined(ctx, done, proxies, want)
	if err != nil {
		return err
	}
	used := (cpu() - cpu0).Seconds()
	wall := end.Sub(up).Seconds()
	s.recordMirror("join", side, wall, used)
	var total, back int64
	var per []string
	for i, f := range srcs {
		sent := to[i].BytesDown() + from[i].BytesUp()
		total += sent
		back += to[i].BytesUp() + from[i].BytesDown()
		if k > 1 {
			s.record("bytes-"+f.name, 0, float64(sent))
		}
		per = append(per, fmt.Sprintf("%s %s", f.name, iec(sent)))
	}
	s.record("bytes", side, float64(total))
	s.record("bytes-back", side, float64(back))
	s.say(p, "join %-13s %7.2f s (cpu %6.2f s, the new node and the fleet), %.1f MB/s of data, %.1f MB/s on the wire; sources sent %s (%s); the new node sent %s",
		what, wall, used, float64(want.bytes)/wall/1e6, float64(total)/wall/1e6, iec(total), strings.Join(per, ", "), iec(back))

	n.stop()
	title := "the new node's replica equals p1's folder"
	problems := compareMirror(src, n.folder)
	result := "pass"
	if len(problems) > 0 {
		for _, pr := range summarizeList(problems, 20) {
			s.say(p, "  %s: %s", what, pr)
		}
		result = fmt.Sprintf("FAIL (pair %d: %d): %s", p, len(problems), summarize(problems, 3))
	}
	s.say(p, "join %-13s %s: %s", what, title, result)
	if c := s.findCheck(title); c != nil && strings.HasPrefix(c.result[side], "FAIL") {
		result = c.result[side]
	}
	s.note(title, side, result)
	return nil
}
