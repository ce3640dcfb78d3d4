package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/syncd/syncd/internal/faultproxy"
)

// meshPeer is one entry of a mesh node's peers: the node and the address
// this node dials it at (its listen address, or a proxy to it).
type meshPeer struct {
	node    *mirrorNode
	address string
}

// meshConfig is the configuration of node n in a mesh: one folder, data,
// in mode send-receive, shared with every peer in peers. sendRate, when
// not "", is node.max_send_rate: what n sends to all its peers together.
// A peer whose ID is not known yet is written as "unknown", as
// [mirrorNode.config] does.
func meshConfig(n *mirrorNode, peers []meshPeer, sendRate string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node:\n  name: %s\n  state_dir: %s\n  listen: %s\n  http: %s\n",
		n.name, filepath.Join(n.dir, "state"), n.listen, n.http)
	if sendRate != "" {
		fmt.Fprintf(&b, "  max_send_rate: %s\n", sendRate)
	}
	names := make([]string, len(peers))
	if len(peers) > 0 {
		b.WriteString("peers:\n")
	}
	for i, p := range peers {
		id := p.node.id
		if id == "" {
			id = "unknown"
		}
		names[i] = p.node.name
		fmt.Fprintf(&b, "  - name: %s\n    id: %s\n    address: %s\n", p.node.name, id, p.address)
	}
	fmt.Fprintf(&b, "folders:\n  - id: data\n    path: %s\n    mode: send-receive\n    peers: [%s]\n",
		n.folder, strings.Join(names, ", "))
	return b.String()
}

// meshStatus is the part of a mesh node's GET /status the mesh section
// reads: unlike [nodeStatus], any number of peers, each with its name.
type meshStatus struct {
	Node    string           `json:"node"`
	Folders []nodeFolder     `json:"folders"`
	Peers   []meshPeerStatus `json:"peers"`
}

// meshPeerStatus is a peer in meshStatus.
type meshPeerStatus struct {
	Name string `json:"name"`
	nodePeer
}

// meshStatusOf fetches n's /status.
func meshStatusOf(ctx context.Context, n *mirrorNode) (*meshStatus, error) {
	if err := n.proc.alive(); err != nil {
		return nil, fmt.Errorf("node %s: %v", n.name, err)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", n.proc.base+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.proc.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("node %s: GET /status: %s", n.name, resp.Status)
	}
	var st meshStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("node %s: GET /status: %v", n.name, err)
	}
	if len(st.Folders) != 1 {
		return nil, fmt.Errorf("node %s: GET /status: %d folders, want 1", n.name, len(st.Folders))
	}
	return &st, nil
}

// meshCheck reports whether st, a node's /status, says the node is
// complete and settled, and if not, why not: its folder scanned (not
// failed, nothing pending) with files and bytes equal to want's; its
// peers exactly those named in peers, in any order (nil: not checked);
// and each peer named in up connected, with nothing left for this node
// to apply or ask for (lag 0, behind 0) and nothing left for the peer to
// ask of this node (send_files 0).
func meshCheck(st *meshStatus, want treeCount, peers, up []string) (bool, string) {
	f := st.Folders[0]
	switch {
	case f.State == "failed":
		return false, fmt.Sprintf("%s: folder failed: %s", st.Node, f.Error)
	case f.State == "scanning" || f.Pending != 0:
		return false, fmt.Sprintf("%s: folder %s, %d pending", st.Node, f.State, f.Pending)
	case f.Files != want.files || f.Bytes != want.bytes:
		return false, fmt.Sprintf("%s: %d files %d bytes of %d %d", st.Node, f.Files, f.Bytes, want.files, want.bytes)
	}
	if peers != nil {
		got := make([]string, len(st.Peers))
		for i, p := range st.Peers {
			got[i] = p.Name
		}
		w := slices.Clone(peers)
		slices.Sort(got)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			return false, fmt.Sprintf("%s: peers %v, want %v", st.Node, got, w)
		}
	}
	for _, name := range up {
		i := slices.IndexFunc(st.Peers, func(p meshPeerStatus) bool { return p.Name == name })
		switch {
		case i < 0:
			return false, fmt.Sprintf("%s: no peer %s", st.Node, name)
		case !st.Peers[i].Connected:
			return false, fmt.Sprintf("%s: %s not connected: %s", st.Node, name, st.Peers[i].Error)
		case st.Peers[i].LagFiles != 0 || st.Peers[i].Behind != 0 || st.Peers[i].SendFiles != 0:
			return false, fmt.Sprintf("%s: lags %s by %d files, behind %d; %s has %d to ask for",
				st.Node, name, st.Peers[i].LagFiles, st.Peers[i].Behind, name, st.Peers[i].SendFiles)
		}
	}
	return true, ""
}

// meshExpect is what one node of the mesh should report: see meshCheck.
type meshExpect struct {
	node      *mirrorNode
	peers, up []string
}

// meshAllDone asks each node's /status and reports whether meshCheck
// holds for every one, and if not, why the first one fails.
func meshAllDone(ctx context.Context, nodes []meshExpect, want treeCount) (bool, string, error) {
	for _, e := range nodes {
		st, err := meshStatusOf(ctx, e.node)
		if err != nil {
			return false, "", err
		}
		if ok, why := meshCheck(st, want, e.peers, e.up); !ok {
			return false, why, nil
		}
	}
	return true, "", nil
}

// meshSettle polls meshAllDone every mirrorCheck until it holds (for the
// untimed steps: the fleet mirrored, or settled after a reload) and
// returns how long that took. /status may fail for a moment while a node
// reloads; that counts as not settled, unless its process has exited.
func meshSettle(ctx context.Context, nodes []meshExpect, want treeCount, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var why string
	for {
		ok, w, err := meshAllDone(ctx, nodes, want)
		if err != nil {
			for _, e := range nodes {
				if aerr := e.node.proc.alive(); aerr != nil {
					return 0, fmt.Errorf("node %s: %v", e.node.name, aerr)
				}
			}
			w = err.Error()
		}
		if ok {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("mesh not settled after %v: %s", limit, w)
		}
		if w != why {
			progress("mesh: not settled yet after %.1f s: %s", time.Since(start).Seconds(), w)
			why = w
		}
		if err := sleepCtx(ctx, mirrorCheck); err != nil {
			return 0, err
		}
	}
}

// meshReload writes conf as the configuration of the running node n and
// sends it SIGHUP, which makes `syncd run` stop its daemon and start a
// new one with the file's configuration, peers and rates included (the
// process, its identity and its index stay). It returns once the node's
// log says the new daemon runs; the caller waits for it to settle.
func meshReload(ctx context.Context, rn *runner, n *mirrorNode, conf string) error {
	const running, refused = `msg="syncd running"`, "reload: configuration not applied"
	before, err := countInFile(n.proc.logPath, running)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(rn.log, "$ kill -HUP %d  (node %s reloads %s)\n%s\n", n.proc.cmd.Process.Pid, n.name, n.conf, conf)
	if err := n.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("node %s: SIGHUP: %v", n.name, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if err := n.proc.alive(); err != nil {
			return fmt.Errorf("node %s: %v", n.name, err)
		}
		if c, err := countInFile(n.proc.logPath, refused); err != nil || c > 0 {
			return fmt.Errorf("node %s: the reload was refused (%v): %s", n.name, err, logTail(n.proc.logPath))
		}
		c, err := countInFile(n.proc.logPath, running)
		if err != nil {
			return err
		}
		if c > before {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: no new daemon within a minute of SIGHUP: %s", n.name, logTail(n.proc.logPath))
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// countInFile counts the lines of the file at path that contain s.
func countInFile(path, s string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n, nil
}

// waitJoined waits until the new node and its sources say the new node is
// complete (meshAllDone on nodes) and returns the time it was: the last
// time bytes moved through any of the proxies (every connection between
// the new node and its sources) before the quiet in which every /status
// said so. The polling is waitMirrored's: the counters every mirrorTick,
// /status only after mirrorQuiet without traffic and at most every
// mirrorCheck.
func waitJoined(ctx context.Context, nodes []meshExpect, proxies []*faultproxy.Proxy, want treeCount) (time.Time, error) {
	wire := func() int64 {
		var n int64
		for _, p := range proxies {
			n += p.BytesUp() + p.BytesDown()
		}
		return n
	}
	deadline := time.Now().Add(mirrorCompleted)
	moved := wire()
	lastMove, lastCheck := time.Now(), time.Time{}
	var why string
	for {
		if err := sleepCtx(ctx, mirrorTick); err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		if now.After(deadline) {
			return time.Time{}, fmt.Errorf("new node not complete after %v: %s", mirrorCompleted, why)
		}
		if n := wire(); n != moved {
			moved, lastMove = n, now
			continue
		}
		if now.Sub(lastMove) < mirrorQuiet || now.Sub(lastCheck) < mirrorCheck {
			continue
		}
		lastCheck = now
		done, w, err := meshAllDone(ctx, nodes, want)
		if err != nil {
			return time.Time{}, err
		}
		if wire() != moved {
			continue // something moved meanwhile: not quiet after all
		}
		if done {
			return lastMove, nil
		}
		if w != why {
			progress("new node not complete yet, %.1f s after the last bytes moved: %s", now.Sub(lastMove).Seconds(), w)
		}
		why = w
	}
}
