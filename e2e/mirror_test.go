package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMirrorModes runs A send-only and B receive-only: A's changes arrive
// at B; B's own changes (a new file, an edit) are not sent to A, and when
// A then changes the file B edited, B takes A's version and keeps its own
// as a conflict copy.
func TestMirrorModes(t *testing.T) {
	t.Parallel()
	a := newMNode(t, "a", "send-only")
	b := newMNode(t, "b", "receive-only")
	a.setPeers(b.asPeer())
	b.setPeers(a.asPeer())
	a.write("index.html", []byte("<h1>v1</h1>\n"))
	a.write("css/site.css", []byte("body{}\n"))
	a.start()
	b.start()
	waitSame(t, a, b)

	a.write("new-on-a.txt", []byte("from a\n"))
	b.write("new-on-b.txt", []byte("from b\n"))
	b.write("index.html", []byte("<h1>edited on b</h1>\n"))
	os.Remove(b.path("css/site.css"))
	if !waitFor(converge, func() bool { _, err := os.Stat(b.path("new-on-a.txt")); return err == nil }) {
		t.Fatalf("A's new file did not arrive at B; log of b:\n%s", b.logTail())
	}
	// A barrier: a later change of A has arrived at B, and B has had its
	// own changes indexed; A (send-only) must still not have them.
	b.waitReady()
	a.write("barrier.txt", []byte("barrier\n"))
	if !waitFor(converge, func() bool { _, err := os.Stat(b.path("barrier.txt")); return err == nil }) {
		t.Fatalf("barrier file did not arrive at B; log of b:\n%s", b.logTail())
	}
	time.Sleep(2 * time.Second)
	if _, err := os.Stat(a.path("new-on-b.txt")); err == nil {
		t.Errorf("B's (receive-only) new file reached A")
	}
	if got, _ := os.ReadFile(a.path("index.html")); string(got) != "<h1>v1</h1>\n" {
		t.Errorf("A's index.html = %q after B edited it, want A's own", got)
	}
	if _, err := os.Stat(a.path("css/site.css")); err != nil {
		t.Errorf("B's delete reached A: %v", err)
	}
	if got, _ := os.ReadFile(b.path("index.html")); string(got) != "<h1>edited on b</h1>\n" {
		t.Errorf("B's local edit was reverted without a request: index.html = %q", got)
	}

	// A changes the file B edited: B takes A's version, keeps its own.
	a.write("index.html", []byte("<h1>v2</h1>\n"))
	if !waitFor(converge, func() bool { got, _ := os.ReadFile(b.path("index.html")); return string(got) == "<h1>v2</h1>\n" }) {
		got, _ := os.ReadFile(b.path("index.html"))
		t.Fatalf("B's index.html = %q, want A's new version; log of b:\n%s", got, b.logTail())
	}
	copies, _ := filepath.Glob(b.path("index.sync-conflict-*.html"))
	if len(copies) != 1 {
		t.Fatalf("conflict copies on B: %v, want one with B's edit", copies)
	}
	if got, _ := os.ReadFile(copies[0]); string(got) != "<h1>edited on b</h1>\n" {
		t.Errorf("conflict copy %s = %q, want B's edit", copies[0], got)
	}
	if _, err := os.Stat(a.path("new-on-b.txt")); err == nil {
		t.Errorf("B's (receive-only) new file reached A")
	}
	if m, _ := filepath.Glob(a.path("*sync-conflict*")); len(m) > 0 {
		t.Errorf("B's conflict copy reached A: %v", m)
	}
}

// TestMirrorCatchUp stops node C of a three-node mesh, changes many files
// on A and B while it is down, and starts it again: it catches up, and it
// resumes from the sequence numbers it had applied, not from 0 (the
// "peer connected" log line says from which sequence number a puller
// asks).
func TestMirrorCatchUp(t *testing.T) {
	t.Parallel()
	ns := mesh(t, "send-receive", "a", "b", "c")
	a, b, c := ns[0], ns[1], ns[2]
	for i := range 40 {
		a.write(fmt.Sprintf("a/%02d.txt", i), []byte(strings.Repeat("a"+strconv.Itoa(i), 300)))
		b.write(fmt.Sprintf("b/%02d.txt", i), []byte(strings.Repeat("b"+strconv.Itoa(i), 300)))
	}
	for _, n := range ns {
		n.start()
	}
	waitSame(t, a, b, c)
	c.stop(false)
	if n := len(c.logLines("peer connected")); n < 2 {
		t.Fatalf("C logged %d \"peer connected\" lines before its stop, want one per peer", n)
	}
	before := strings.Count(c.log(), "\n")

	for i := range 40 {
		a.write(fmt.Sprintf("a/%02d.txt", i), []byte("edited while C was down "+strconv.Itoa(i)))
		b.write(fmt.Sprintf("b/new/%03d.txt", i), []byte(strings.Repeat("new on b ", i+1)))
		if i%4 == 0 {
			os.Remove(b.path(fmt.Sprintf("b/%02d.txt", i)))
		}
		if i%5 == 0 {
			os.Rename(a.path(fmt.Sprintf("a/%02d.txt", i)), a.path(fmt.Sprintf("a/renamed-%02d.txt", i)))
		}
	}
	waitSame(t, a, b)

	c.start()
	waitSame(t, a, b, c)
	// The puller of each peer, started again, asks from the cursor it
	// saved before the stop.
	lines := strings.Split(c.log(), "\n")[before:]
	resumed := 0
	for _, l := range lines {
		if !strings.Contains(l, "peer connected") {
			continue
		}
		i := strings.Index(l, " from=")
		if i < 0 {
			t.Fatalf("C's \"peer connected\" line does not say from which sequence number: %s", l)
		}
		from, err := strconv.ParseUint(strings.Fields(l[i+len(" from="):])[0], 10, 64)
		if err != nil {
			t.Fatalf("C's \"peer connected\" line: %v: %s", err, l)
		}
		if from == 0 {
			t.Errorf("C restarted from sequence 0 instead of its saved cursor: %s", l)
		}
		resumed++
	}
	if resumed < 2 {
		t.Errorf("C logged %d \"peer connected\" lines after its restart, want one per peer; log:\n%s", resumed, c.logTail())
	}
}
