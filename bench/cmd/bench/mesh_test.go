package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	syncdconfig "github.com/syncd/syncd/config"
)

// Node IDs of the shape `syncd id` prints.
const (
	meshIDa = "AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHH"
	meshIDb = "BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH-AAA"
)

// meshConfig writes a file the daemon's own parser accepts, with every
// peer, its address, the folder shared with all of them in mode
// send-receive, and the rate on the node when one is given.
func TestMeshConfig(t *testing.T) {
	dir := t.TempDir()
	n := &mirrorNode{name: "n4", dir: dir, folder: filepath.Join(dir, "data"), listen: "127.0.0.1:4001", http: "127.0.0.1:4002"}
	p1 := &mirrorNode{name: "p1", id: meshIDa}
	p2 := &mirrorNode{name: "p2", id: meshIDb}
	peers := []meshPeer{{node: p1, address: "127.0.0.1:5001"}, {node: p2, address: "127.0.0.1:5002"}}

	c, err := syncdconfig.Parse([]byte(meshConfig(n, peers, meshSendRate)), "mesh.yaml")
	if err != nil {
		t.Fatalf("meshConfig with a rate: %v", err)
	}
	if c.Node.Name != "n4" || c.Node.Listen != n.listen || c.Node.HTTP != n.http || c.Node.StateDir != filepath.Join(dir, "state") {
		t.Errorf("node = %+v", c.Node)
	}
	if want := int64(8e6); c.Node.MaxSendRate != want || c.Node.MaxRecvRate != 0 {
		t.Errorf("node rates: send %d, recv %d; want %d, 0", c.Node.MaxSendRate, c.Node.MaxRecvRate, want)
	}
	if len(c.Peers) != 2 {
		t.Fatalf("%d peers, want 2", len(c.Peers))
	}
	for i, p := range c.Peers {
		if p.Name != peers[i].node.name || p.ID != peers[i].node.id || p.Address != peers[i].address || p.MaxSendRate != 0 {
			t.Errorf("peer %d = %+v, want %s %s at %s, no rate of its own", i, p, peers[i].node.name, peers[i].node.id, peers[i].address)
		}
	}
	if len(c.Folders) != 1 {
		t.Fatalf("%d folders, want 1", len(c.Folders))
	}
	f := c.Folders[0]
	if f.ID != "data" || f.Path != n.folder || f.Mode != syncdconfig.SendReceive || !slices.Equal(f.Peers, []string{"p1", "p2"}) {
		t.Errorf("folder = %+v", f)
	}

	c, err = syncdconfig.Parse([]byte(meshConfig(n, peers[:1], "")), "mesh.yaml")
	if err != nil {
		t.Fatalf("meshConfig without a rate: %v", err)
	}
	if c.Node.MaxSendRate != 0 || len(c.Peers) != 1 || !slices.Equal(c.Folders[0].Peers, []string{"p1"}) {
		t.Errorf("without a rate, one peer: rate %d, peers %+v, folder peers %v", c.Node.MaxSendRate, c.Peers, c.Folders[0].Peers)
	}

	// A peer whose ID is not known yet: the file is for `syncd id`
	// only, which does not check peers.
	if s := meshConfig(n, []meshPeer{{node: &mirrorNode{name: "x"}, address: "127.0.0.1:1"}}, ""); !strings.Contains(s, "id: unknown\n") {
		t.Errorf("a peer without an ID:\n%s", s)
	}
}

// meshSendRate is a rate the configuration accepts.
func TestMeshSendRate(t *testing.T) {
	if r, err := syncdconfig.ParseRate(meshSendRate); err != nil || r != 8e6 {
		t.Errorf("ParseRate(%q) = %d, %v; want 8000000 (the Procedure text says 64 Mbit/s)", meshSendRate, r, err)
	}
}

func TestMeshCheck(t *testing.T) {
	want := treeCount{files: 10, bytes: 100}
	good := func() *meshStatus {
		return &meshStatus{
			Node:    "n4",
			Folders: []nodeFolder{{State: "ok", Files: 10, Bytes: 100}},
			Peers: []meshPeerStatus{
				{Name: "p1", nodePeer: nodePeer{Connected: true}},
				{Name: "p2", nodePeer: nodePeer{Connected: true}},
			},
		}
	}
	for _, tc := range []struct {
		name      string
		edit      func(*meshStatus)
		peers, up []string
		why       string // "": done
	}{
		{name: "complete", peers: []string{"p2", "p1"}, up: []string{"p1", "p2"}},
		{name: "peers not checked", up: []string{"p1"}},
		{name: "degraded but complete", edit: func(s *meshStatus) { s.Folders[0].State = "degraded" }, up: []string{"p1"}},
		{name: "failed", edit: func(s *meshStatus) { s.Folders[0].State, s.Folders[0].Error = "failed", "disk" }, why: "folder failed: disk"},
		{name: "scanning", edit: func(s *meshStatus) { s.Folders[0].State = "scanning" }, why: "folder scanning"},
		{name: "pending", edit: func(s *meshStatus) { s.Folders[0].Pending = 3 }, why: "3 pending"},
		{name: "files short", edit: func(s *meshStatus) { s.Folders[0].Files = 9 }, why: "9 files 100 bytes of 10 100"},
		{name: "bytes short", edit: func(s *meshStatus) { s.Folders[0].Bytes = 99 }, why: "10 files 99 bytes of 10 100"},
		{name: "old peers", peers: []string{"p1", "p2", "n1"}, why: "peers [p1 p2], want [n1 p1 p2]"},
		{name: "missing peer", up: []string{"p3"}, why: "no peer p3"},
		{name: "down", edit: func(s *meshStatus) { s.Peers[1].Connected, s.Peers[1].Error = false, "refused" }, up: []string{"p1", "p2"}, why: "p2 not connected: refused"},
		{name: "down but not asked", edit: func(s *meshStatus) { s.Peers[1].Connected = false }, up: []string{"p1"}},
		{name: "lag", edit: func(s *meshStatus) { s.Peers[0].LagFiles = 2 }, up: []string{"p1"}, why: "lags p1 by 2 files"},
		{name: "behind", edit: func(s *meshStatus) { s.Peers[0].Behind = 1 }, up: []string{"p1"}, why: "behind 1"},
		{name: "to send", edit: func(s *meshStatus) { s.Peers[0].SendFiles = 5 }, up: []string{"p1"}, why: "p1 has 5 to ask for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := good()
			if tc.edit != nil {
				tc.edit(st)
			}
			done, why := meshCheck(st, want, tc.peers, tc.up)
			switch {
			case tc.why == "" && !done:
				t.Errorf("meshCheck = false, %q; want true", why)
			case tc.why != "" && done:
				t.Errorf("meshCheck = true; want false, %q", tc.why)
			case tc.why != "" && !strings.Contains(why, tc.why):
				t.Errorf("meshCheck says %q; want it to say %q", why, tc.why)
			}
		})
	}
}

func TestCountInFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "daemon.log")
	log := `time=1 level=INFO msg="syncd running" node=p1
time=2 level=INFO msg="reloading configuration" file=x
time=3 level=INFO msg="syncd running" node=p1
time=4 level=INFO msg="syncd running, folder"
`
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := countInFile(p, `msg="syncd running"`); err != nil || n != 2 {
		t.Errorf("countInFile = %d, %v; want 2", n, err)
	}
	if _, err := countInFile(filepath.Join(t.TempDir(), "none"), "x"); err == nil {
		t.Error("countInFile of a missing file: no error")
	}
}

// Every row of the mesh section is measured (a row left out of Metrics
// would print n/a), and the bar row is the join with issue 14's 0.7.
func TestMeshBackend(t *testing.T) {
	b := meshBackend()
	var ids []string
	for _, d := range b.Defs {
		ids = append(ids, d.id)
		if d.id == "join" && (d.bar != 0.7 || d.anchorless || d.unit != seconds) {
			t.Errorf("join row: bar %g, anchorless %v, unit %v; want 0.7, false, seconds", d.bar, d.anchorless, d.unit)
		}
	}
	if !slices.Equal(ids, b.Metrics) {
		t.Errorf("Metrics %v, want every row of Defs: %v", b.Metrics, ids)
	}
	for i := 1; i <= meshFleet; i++ {
		if id := fmt.Sprintf("bytes-p%d", i); !slices.Contains(ids, id) {
			t.Errorf("no row %s for fleet node p%d", id, i)
		}
	}
	if !strings.Contains(b.Procedure, meshSendRate) || !strings.Contains(b.Note, "Anchor column") {
		t.Error("the Procedure does not state the rate, or the Note does not say what the anchor column is")
	}
}
