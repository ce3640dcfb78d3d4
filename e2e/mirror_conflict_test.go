package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/syncd/syncd/internal/faultproxy"
)

// contents returns the contents of every regular file of n's folder
// whose name starts with prefix (the file and its conflict copies).
func (n *mnode) contents(prefix string) map[string]string {
	out := map[string]string{}
	m, _ := filepath.Glob(n.path(prefix) + "*")
	for _, p := range m {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			out[filepath.Base(p)] = string(b)
		}
	}
	return out
}

// hasContent reports whether one of the files of cs holds want.
func hasContent(cs map[string]string, want string) bool {
	for _, c := range cs {
		if c == want {
			return true
		}
	}
	return false
}

// TestMirrorConflictCopiesSameSecond has B lose two conflicts on the same
// file, with two versions whose modification times fall in the same
// second: both losers must be kept. The conflict copy's name has only the
// second and the node, so both get the same name, and the second rename
// must not replace the first copy.
func TestMirrorConflictCopiesSameSecond(t *testing.T) {
	t.Parallel()
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]
	a.write("doc.txt", []byte("v0\n"))
	a.start()
	b.start()
	waitSame(t, a, b)

	base := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, v := range []string{"1", "22"} { // each version of B a size of its own: waitIndexed sees it
		a.stop(false)
		mine := "b's version " + v + "\n"
		// made beside the folder and renamed in, so that B's watcher
		// sees it once, with its mtime
		tmp := filepath.Join(b.dir, "doc.txt.new")
		if err := os.WriteFile(tmp, []byte(mine), 0o644); err != nil {
			t.Fatal(err)
		}
		at := base.Add(time.Duration(i+1) * 100 * time.Millisecond) // the same second each time
		if err := os.Chtimes(tmp, at, at); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, b.path("doc.txt")); err != nil {
			t.Fatal(err)
		}
		b.waitIndexed()
		a.write("doc.txt", []byte("a's version "+v+"\n")) // later: A's wins
		a.start()
		waitSame(t, a, b)
		if got := b.contents("doc"); !hasContent(got, mine) {
			t.Errorf("round %d: B's losing version %q is not kept: %v", i+1, mine, got)
		}
	}
	got := b.contents("doc")
	for _, v := range []string{"b's version 1\n", "b's version 22\n"} {
		if !hasContent(got, v) {
			t.Errorf("B's losing version %q is lost; the folder has %v", v, got)
		}
	}
}

// TestMirrorLocalWriteDuringFetch edits a file on B while B fetches A's
// new version of it (the proxy from B to A is blackholed meanwhile, so the
// fetch is under way): B's edit is a local change made before A's version
// is in place, so it must be kept, as the winner or as a conflict copy,
// not silently replaced.
func TestMirrorLocalWriteDuringFetch(t *testing.T) {
	t.Parallel()
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]
	toA := proxyTo(t, a)
	// B's watcher reports the edit late, so that B's receiver itself must
	// notice it (the edit would otherwise travel to A before the fetch
	// ends, and be kept there whatever B's receiver does)
	b.debounce = "5s"
	b.setPeers(mpeer{a.name, a.id, toA.Addr()})
	randomFile(t, a.path("doc.bin"), 1<<20, 3)
	a.start()
	b.start()
	waitSame(t, a, b)

	before := toA.BytesDown()
	// The proxy stalls itself 4 MiB into the new version, so the edit
	// below lands while B's fetch is under way however the test is
	// scheduled.
	stall := before + 4<<20
	toA.AtDown(stall, toA.Blackhole)
	randomFile(t, a.path("doc.bin"), 32<<20, 4)
	if !waitFor(converge, func() bool { return toA.BytesDown() >= stall }) {
		t.Fatalf("the transfer did not start; log of b:\n%s", b.logTail())
	}
	if !waitFor(converge, func() bool { m, _ := filepath.Glob(b.path(".syncd-tmp-*")); return len(m) > 0 }) {
		t.Fatalf("no temporary file on B while the fetch is stalled; log of b:\n%s", b.logTail())
	}
	edit := "edited on B while it fetched A's version\n"
	b.write("doc.bin", []byte(edit))
	toA.Heal() // the fetch ends while B's watcher still holds the edit back
	waitSame(t, a, b)
	if got := b.contents("doc"); !hasContent(got, edit) {
		names := make([]string, 0, len(got))
		for n := range got {
			names = append(names, n)
		}
		t.Errorf("B's local edit, made before A's version was in place, is lost; B has %v; log of b:\n%s",
			names, strings.Join(b.logLines("doc"), "\n"))
	}
}

// TestMirrorSymlinkRetargetedLocally points a link elsewhere on B, which
// B has not indexed yet (its watcher waits 5 s), while A points it
// elsewhere too: B's change must be kept, as the winner or as a conflict
// copy, not replaced by A's as if B had not changed the link.
func TestMirrorSymlinkRetargetedLocally(t *testing.T) {
	t.Parallel()
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]
	b.debounce = "5s"
	b.writeConfig()
	if err := os.Symlink("v1", a.path("current")); err != nil {
		t.Fatal(err)
	}
	a.start()
	b.start()
	waitSame(t, a, b)

	os.Remove(b.path("current"))
	if err := os.Symlink("v-from-b", b.path("current")); err != nil {
		t.Fatal(err)
	}
	os.Remove(a.path("current"))
	if err := os.Symlink("v-from-a", a.path("current")); err != nil {
		t.Fatal(err)
	}
	// B meets A's version before its watcher reports its own change: it
	// holds A's version back (lag), or, wrongly, puts it in place
	var p mpeerStatus
	met := func() bool {
		st, err := b.httpStatus()
		p, _ = st.peer("a")
		target, _ := os.Readlink(b.path("current"))
		return err == nil && (p.LagFiles > 0 || target == "v-from-a")
	}
	if !waitFor(converge, met) {
		t.Fatalf("B never met A's version of the link: its status of A %+v; log of b:\n%s", p, b.logTail())
	}
	b.waitReady()
	final := waitSame(t, a, b)
	kept := false
	for rel, e := range final {
		if strings.HasPrefix(rel, "current") && e.Target == "v-from-b" {
			kept = true
		}
	}
	if !kept {
		t.Errorf("B's change of the link (to v-from-b) is lost: %v; log of b:\n%s", final, strings.Join(b.logLines("current"), "\n"))
	}
}

// TestMirrorSymlinkConflictRelayed: A and B point the link "cur"
// elsewhere while cut off from each other and from C. C, started
// afterwards, takes A's version and announces it with the time C made the
// link. Every node must end with the same link, and the loser kept as a
// conflict copy.
func TestMirrorSymlinkConflictRelayed(t *testing.T) {
	t.Parallel()
	ns := mesh(t, "send-receive", "a", "b", "c")
	// Every pull goes through its own proxy: via[x][y] is x's way to y.
	via := map[string]map[string]*faultproxy.Proxy{}
	for _, n := range ns {
		via[n.name] = map[string]*faultproxy.Proxy{}
		var ps []mpeer
		for _, o := range ns {
			if o != n {
				p := proxyTo(t, o)
				via[n.name][o.name] = p
				ps = append(ps, mpeer{o.name, o.id, p.Addr()})
			}
		}
		n.setPeers(ps...)
	}
	all := func(f func(p *faultproxy.Proxy)) {
		for _, m := range via {
			for _, p := range m {
				f(p)
			}
		}
	}
	a, b, c := ns[0], ns[1], ns[2]
	if err := os.Symlink("v0", a.path("cur")); err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		n.start()
	}
	waitSame(t, ns...)
	target := func(n *mnode) string { s, _ := os.Readlink(n.path("cur")); return s }
	step := func(what string, from, to *mnode, want string) {
		t.Helper()
		via[from.name][to.name].Heal()
		if !waitFor(converge, func() bool { return target(from) == want }) {
			t.Fatalf("%s: %s's link points to %q, want %q; log:\n%s", what, from.name, target(from), want, from.logTail())
		}
		via[from.name][to.name].Cut()
	}

	all((*faultproxy.Proxy).Cut)
	c.stop(false)
	// B's link is a second later than A's, and C's, made when C takes A's
	// version, later than both
	made := time.Now().Add(-3 * time.Second)
	for i, n := range []*mnode{a, b} {
		os.Remove(n.path("cur"))
		if err := os.Symlink("from-"+n.name, n.path("cur")); err != nil {
			t.Fatal(err)
		}
		ts := unix.NsecToTimespec(made.Add(time.Duration(i) * time.Second).UnixNano())
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, n.path("cur"), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		n.waitReady()
	}
	c.start()
	step("C takes A's version", c, a, "from-a")
	// Then B hears of A's version first through C, whose copy of the link
	// was made later than B's: a link's mtime is local to each node and
	// must not decide (it used to, and A and B each kept a different
	// winner under one merged vector).
	via["b"]["c"].Heal()
	via["c"]["b"].Heal()
	all((*faultproxy.Proxy).Heal)
	waitSame(t, ns...)
	// the loser is kept beside the winner on every node
	copies, _ := filepath.Glob(a.path("cur.sync-conflict-*"))
	if len(copies) != 1 {
		t.Errorf("conflict copies on a: %v, want one", copies)
	}
}
