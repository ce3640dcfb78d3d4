package transfer

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/syncd/syncd/config"
)

// A new node with two peers that hold the same files pulls from both at
// once, different files from each: both peers send it a share, and it
// fetches the data about once, not once per peer. The peers' uplinks are
// limited, as on web nodes, so that neither puller finishes before the
// other has started. The claims are all dropped at the end.
func TestNewNodePullsFromEveryPeer(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	c := newTestNode(t, "c", config.SendReceive)
	connect(a, b)
	connect(a, c)
	connect(b, c)
	const files, size = 2500, 8 << 10 // three index batches
	for _, n := range []*testNode{a, b} {
		n.cfg.Peers[1].MaxSendRate = 6 << 20 // to c
	}
	buf := make([]byte, size)
	for i := range files {
		rand.Read(buf)
		p := filepath.Join(a.dir, fmt.Sprintf("d%02d", i%30), fmt.Sprintf("f%04d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a.index(t)
	a.start(t)
	b.start(t)
	converge(t, a, b)
	c.start(t)
	converge(t, a, c)
	eventually(t, "c settled with a and b", func() bool { return settled(a, c) && settled(b, c) })

	var total uint64
	for _, m := range c.node.PeerMetrics() {
		t.Logf("c fetched %d bytes from %s", m.FetchedBytes, m.Peer)
		if m.FetchedBytes < files*size/10 {
			t.Errorf("c fetched %d bytes from %s, want a share of the %d", m.FetchedBytes, m.Peer, files*size)
		}
		total += m.FetchedBytes
	}
	if total > files*size*11/10 {
		t.Errorf("c fetched %d bytes in all for %d bytes of files: the same files from both peers", total, files*size)
	}
	if n := c.f.recv.Claimed(); n != 0 {
		t.Errorf("%d paths still claimed", n)
	}
}
