package e2e

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReplaceNodeFromSnapshot replaces a node the way docs/RECOVERY.md
// tells an operator to: A and B mirror a folder, a snapshot of A's folder
// is taken, A changes some files (edits, new files, deletes, renames),
// and a new node C gets the snapshot restored into its folder with the
// restore binary, a new state_dir, and A and B as peers (A and B get C
// and a SIGHUP). C must end equal to A and B with no conflict copy
// anywhere, the files deleted after the snapshot must stay deleted (not
// come back from C's restored copy), a file changed after the snapshot
// must be A's version on every node, and C must fetch no more than about
// what changed after the snapshot.
func TestReplaceNodeFromSnapshot(t *testing.T) {
	t.Parallel()
	testReplace(t, true)
}

// TestReplaceNodeOfNewFleet is TestReplaceNodeFromSnapshot where A is a
// new fleet's first node: it starts with the files and a new state_dir,
// its only peer C not up yet, and changes files after the snapshot while
// alone; then C joins from the snapshot. A's deletes and edits made
// alone must win over C's restored copy as well.
func TestReplaceNodeOfNewFleet(t *testing.T) {
	t.Parallel()
	testReplace(t, false)
}

// testReplace runs the replacement with a fleet of A and B (withB), or of
// A alone, C configured as its peer from the start.
func testReplace(t *testing.T, withB bool) {
	r := newRepo(t)
	var a, b, c *mnode
	var fleet []*mnode
	if withB {
		ns := mesh(t, "send-receive", "a", "b")
		a, b = ns[0], ns[1]
		fleet = []*mnode{a, b}
	} else {
		a, c = newMNode(t, "a", "send-receive"), newMNode(t, "c", "send-receive")
		a.setPeers(c.asPeer())
		fleet = []*mnode{a}
	}
	rng := rand.New(rand.NewPCG(13, 13))
	blob := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return p
	}
	// 40 files of 24-56 KiB in four directories, a script, a link.
	old := time.Now().Add(-48 * time.Hour)
	for i := range 40 {
		rel := fmt.Sprintf("d%d/f%02d.bin", i%4, i)
		a.write(rel, blob(24<<10+rng.IntN(32<<10)))
		os.Chtimes(a.path(rel), old, old.Add(time.Duration(i)*time.Minute))
	}
	a.write("bin/run.sh", []byte("#!/bin/sh\necho run\n"))
	os.Chmod(a.path("bin/run.sh"), 0o755)
	os.Symlink("d0/f00.bin", a.path("current"))
	for _, n := range fleet {
		n.start()
	}
	waitSame(t, fleet...)

	ok(t, nil, "syncd", append(append([]string{"snapshot"}, r.flags("--host", "a")...), a.folder)...)

	// The mutation round, on A only: what C must fetch.
	var roundBytes int64
	changed := []string{"d0/f04.bin", "d1/f05.bin", "d2/f06.bin"}
	for _, rel := range changed {
		p := blob(32 << 10)
		roundBytes += int64(len(p))
		a.write(rel, p)
	}
	for i := range 3 {
		p := blob(40 << 10)
		roundBytes += int64(len(p))
		a.write(fmt.Sprintf("new/n%d.bin", i), p)
	}
	deleted := []string{"d3/f07.bin", "d0/f08.bin", "d1/f09.bin"}
	for _, rel := range deleted {
		if err := os.Remove(a.path(rel)); err != nil {
			t.Fatal(err)
		}
	}
	renamed := map[string]string{"d2/f10.bin": "moved/f10.bin", "d3/f11.bin": "d3/f11-renamed.bin"}
	for from, to := range renamed {
		os.MkdirAll(filepath.Dir(a.path(to)), 0o755)
		if err := os.Rename(a.path(from), a.path(to)); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(a.path("d0/f12.bin"), 0o600)
	waitSame(t, fleet...)

	// C: the snapshot restored as an operator would, then moved into place.
	if c == nil {
		c = newMNode(t, "c", "send-receive")
	}
	target := filepath.Join(t.TempDir(), "restore")
	ok(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", target)...)...)
	if err := os.Remove(c.folder); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(target, a.folder), c.folder); err != nil {
		t.Fatal(err)
	}
	for _, rel := range deleted {
		if _, err := os.Lstat(c.path(rel)); err != nil {
			t.Fatalf("the snapshot restored on C lacks %s, deleted after it: %v", rel, err)
		}
	}
	c.setPeers(a.asPeer())
	if withB {
		c.setPeers(a.asPeer(), b.asPeer())
		a.setPeers(b.asPeer(), c.asPeer())
		b.setPeers(a.asPeer(), c.asPeer())
		for _, n := range fleet {
			n.cmd.Process.Signal(syscall.SIGHUP)
		}
		for _, n := range fleet {
			if !waitFor(converge, func() bool { st, err := n.httpStatus(); _, ok := st.peer("c"); return err == nil && ok }) {
				t.Fatalf("%s did not take C as a peer after SIGHUP; log:\n%s", n.name, n.logTail())
			}
		}
	}
	c.start()
	all := append(fleet, c)
	tree := waitSame(t, all...)

	for _, n := range all {
		for rel := range tree {
			if strings.Contains(rel, ".sync-conflict-") {
				t.Errorf("%s has a conflict copy %s", n.name, rel)
			}
		}
		if got := metricSum(t, n, "syncd_peer_conflicts_total"); got != 0 {
			t.Errorf("%s counts %d conflicts", n.name, got)
		}
	}
	for _, rel := range deleted {
		if _, ok := tree[rel]; ok {
			t.Errorf("%s, deleted on A after the snapshot, is back on every node", rel)
		}
	}
	for from := range renamed {
		if _, ok := tree[from]; ok {
			t.Errorf("%s, renamed on A after the snapshot, is back under its old name", from)
		}
	}
	for _, rel := range changed {
		want, _ := fileSum(a.path(rel))
		if got := tree[rel].Sum; got != want {
			t.Errorf("%s is not A's version after the snapshot on every node", rel)
		}
	}
	if m := tree["d0/f12.bin"].Mode.Perm(); m != 0o600 {
		t.Errorf("d0/f12.bin has mode %v, want A's chmod 0600", m)
	}
	fetched := metricSum(t, c, "syncd_peer_fetched_bytes_total")
	t.Logf("C fetched %d bytes from its peers; the round after the snapshot wrote %d", fetched, roundBytes)
	if limit := roundBytes * 11 / 10; fetched > limit {
		t.Errorf("C fetched %d bytes from its peers, over 1.1 × the %d bytes changed after the snapshot", fetched, roundBytes)
	}
	if fetched == 0 {
		t.Errorf("C fetched nothing: the metric does not count (want about %d bytes)", roundBytes)
	}
	var sent int64
	for _, n := range fleet {
		sent += metricSum(t, n, `syncd_peer_sent_bytes_total{folder="data",peer="c"}`)
	}
	if limit := roundBytes * 11 / 10; sent > limit {
		t.Errorf("the fleet sent C %d bytes, over 1.1 × the %d bytes changed after the snapshot", sent, roundBytes)
	}
}

// metricSum adds up the values of the samples of n's /metrics whose line
// begins with prefix (a metric name, or a name and its labels).
func metricSum(t *testing.T, n *mnode, prefix string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + n.http + "/metrics")
	if err != nil {
		t.Fatalf("%s: /metrics: %v", n.name, err)
	}
	defer resp.Body.Close()
	var sum int64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		rest := line[len(prefix):]
		if rest == "" || rest[0] != ' ' && (rest[0] != '{' || strings.HasSuffix(prefix, "}")) {
			continue // a longer metric name
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("%s: /metrics line %q: %v", n.name, line, err)
		}
		sum += int64(v)
	}
	return sum
}
