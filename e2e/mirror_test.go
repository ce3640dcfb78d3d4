package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
	// own changes indexed; A (send-only) must still not have them. Nothing
	// tells when a change that should not travel would have arrived; what
	// keeps it from travelling is that A never asks B for anything: its
	// log has nothing of a puller for B (and B, receive-only, announces
	// nothing).
	b.waitReady()
	a.write("barrier.txt", []byte("barrier\n"))
	if !waitFor(converge, func() bool { _, err := os.Stat(b.path("barrier.txt")); return err == nil }) {
		t.Fatalf("barrier file did not arrive at B; log of b:\n%s", b.logTail())
	}
	if l := a.logLines(" peer=b folder=data "); len(l) > 0 { // what A's puller for B would log
		t.Errorf("A (send-only) pulls from B: %s", l[0])
	}
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

	// syncd revert throws B's local changes away: B equals A again.
	res := run(t, nil, "syncd", "revert", "--config", b.cfg, "nosuch")
	oneLine(t, "revert of an unknown folder", res, 1, "revert nosuch")
	out := ok(t, nil, "syncd", "revert", "--config", b.cfg, "data")
	if !strings.Contains(out, `reverted "new-on-b.txt"`) || !strings.Contains(out, "local changes reverted in data") {
		t.Errorf("syncd revert printed %q, want new-on-b.txt named and the count", out)
	}
	waitSame(t, a, b)
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

// TestMirrorRandom runs a seeded random workload on the three nodes of a
// full mesh at once: file creates and edits (in place, with modes), deletes,
// renames, mkdir and rmdir, symlinks. Once quiet, the three trees must be
// identical (contents, modes, file mtimes, link targets), and every write
// that completed must be present, as the winner at its path or as a
// conflict copy beside it.
//
// Which writes must be present, precisely. The workers' operations are
// serialized by one mutex (the daemons are not), so they have one order,
// and every operation knows exactly which content it removes from a path:
// it reads that content through the same inode it then overwrites,
// renames away or moves out of the folder (the receiver never writes a
// file in place, it renames a new inode over the path, so an inode's
// content changes only by the worker of its node). Each write's content
// is unique ("W node counter" and random bytes), so a content names its
// write. Then, in that order:
//
//   - a completed write of W at P requires (W, P);
//   - an overwrite, delete or rename away of P, on any node, that removed
//     W's content from P ends (W, P): that node had seen W, so its
//     version of P legitimately replaces W;
//   - a rename of P to Q that moved W's content also requires (W, Q).
//
// A write is completed when the inode written is still linked once the
// write is done; if the receiver renamed a peer's version over it while
// the worker wrote, the write went to a file no longer in the folder and
// is not required (no sync tool can keep it). Renames refuse to replace
// an existing target (RENAME_NOREPLACE). A rename whose source inode was
// replaced during the rename moved unknown content: the writes at its
// source path are then not required (logged; rare).
//
// (W, P) is satisfied by a file at P, or at a conflict copy of P
// (P's name with .sync-conflict-<time>-<node> before its extension), with
// W's exact content.
func TestMirrorRandom(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SYNCD_MIRROR_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SYNCD_MIRROR_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (set SYNCD_MIRROR_SEED to run this workload again)", seed)
	ns := mesh(t, "send-receive", "a", "b", "c")
	for _, n := range ns {
		n.write("d0/seed.txt", []byte("the same on every node\n"))
		os.Chtimes(n.path("d0/seed.txt"), time.Unix(1700000000, 0), time.Unix(1700000000, 0))
		n.start()
	}
	waitSame(t, ns...)

	w := newWorkload()
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Go(func() { w.run(t, n, rand.New(rand.NewPCG(seed, uint64(i))), 300) })
	}
	wg.Wait()
	t.Logf("operations: %v", w.stats)

	final := waitSameOr(t, func(paths []string) {
		for _, p := range paths {
			t.Logf("what the workers did at %s:\n  %s", p, strings.Join(w.hist[p], "\n  "))
		}
	}, ns...)
	w.check(t, final)
	for _, n := range ns {
		if !n.alive() {
			t.Errorf("%s: the daemon is gone; log:\n%s", n.name, n.logTail())
		}
	}
}

// workload is the state the workers of TestMirrorRandom share; mu
// serializes their operations, so that the obligations below follow one
// order (see TestMirrorRandom).
type workload struct {
	mu    sync.Mutex
	sums  map[string]string   // write ID ("a#17") → SHA-256 of its content
	need  map[obligation]bool // what must be present at the end
	hist  map[string][]string // path → the operations on it, for failures
	stats map[string]int      // operation kind → how many were done
	loose map[string]bool     // paths whose writes are not required (ambiguous renames)
}

// obligation is a write whose content must be at a path (or a conflict
// copy of it) at the end.
type obligation struct{ write, path string }

func newWorkload() *workload {
	return &workload{sums: map[string]string{}, need: map[obligation]bool{}, hist: map[string][]string{},
		stats: map[string]int{}, loose: map[string]bool{}}
}

// The names the workers use: few, so that nodes often touch the same
// paths at once. Files, directories and links have disjoint names.
var (
	wlDirs  = []string{"d0", "d1", "d2"}
	wlFiles = []string{"f0.txt", "f1.txt", "f2.txt", "f3.bin", "f4", ".f5"}
	wlLinks = []string{"l0", "l1"}
	wlModes = []os.FileMode{0o644, 0o600, 0o755}
)

func wlPick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// wlPlace returns a random file or link path: at the top or in a directory.
func wlPlace(r *rand.Rand, names []string) string {
	if r.IntN(3) == 0 {
		return wlPick(r, names)
	}
	return wlPick(r, wlDirs) + "/" + wlPick(r, names)
}

// run does ops random operations on n's folder, a few milliseconds apart.
func (w *workload) run(t *testing.T, n *mnode, r *rand.Rand, ops int) {
	trash := filepath.Join(n.dir, "trash")
	os.Mkdir(trash, 0o755)
	for i := range ops {
		// the workload's pace, part of what is tested: the daemons see
		// changes arrive spread out, some within one debounce, some not
		time.Sleep(time.Duration(r.IntN(12)) * time.Millisecond)
		id := fmt.Sprintf("%s#%d", n.name, i)
		w.mu.Lock()
		var kind string
		switch k := r.IntN(100); {
		case k < 45:
			kind = w.write(n, r, id, wlPlace(r, wlFiles))
		case k < 57:
			kind = w.remove(n, filepath.Join(trash, id), id, wlPlace(r, wlFiles))
		case k < 72:
			kind = w.rename(n, id, wlPlace(r, wlFiles), wlPlace(r, wlFiles))
		case k < 79:
			kind = "mkdir"
			d := wlPick(r, wlDirs)
			if os.Mkdir(n.path(d), 0o755) == nil {
				w.note(d, "%s: mkdir (op %s)", n.name, id)
			}
		case k < 86:
			kind = "rmdir"
			d := wlPick(r, wlDirs)
			if fi, err := os.Lstat(n.path(d)); err == nil && fi.IsDir() && os.Remove(n.path(d)) == nil {
				w.note(d, "%s: rmdir (op %s)", n.name, id)
			}
		case k < 94:
			kind = "symlink"
			rel := wlPlace(r, wlLinks)
			p := n.path(rel)
			old, _ := os.Readlink(p)
			if old != "" {
				os.Remove(p)
			}
			if os.Symlink("target-"+id, p) == nil {
				w.note(rel, "%s: symlink to target-%s over %q", n.name, id, old)
			}
		default:
			kind = "chmod"
			rel := wlPlace(r, wlFiles)
			if fi, err := os.Lstat(n.path(rel)); err == nil && fi.Mode().IsRegular() {
				m := wlPick(r, wlModes)
				os.Chmod(n.path(rel), m)
				w.note(rel, "%s: chmod %v (op %s)", n.name, m, id)
			}
		}
		w.stats[kind]++
		w.mu.Unlock()
	}
}

// content makes the unique content of write id.
func (w *workload) content(r *rand.Rand, id string) []byte {
	size := r.IntN(3000)
	if r.IntN(10) == 0 {
		size = 100_000 + r.IntN(300_000)
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b = append([]byte("W "+id+"\n"), b...)
	sum := sha256.Sum256(b)
	w.sums[id] = hex.EncodeToString(sum[:])
	return b
}

// which returns the ID of the write whose content data is, or "".
func (w *workload) which(data []byte) string {
	line, _, ok := strings.Cut(string(data[:min(len(data), 40)]), "\n")
	id, found := strings.CutPrefix(line, "W ")
	if !ok || !found {
		return ""
	}
	sum := sha256.Sum256(data)
	if w.sums[id] != hex.EncodeToString(sum[:]) {
		return "" // a partial version, seen while it was written
	}
	return id
}

func (w *workload) note(rel, format string, args ...any) {
	w.hist[rel] = append(w.hist[rel], time.Now().UTC().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

// write overwrites (or creates) rel in place with write id's content.
func (w *workload) write(n *mnode, r *rand.Rand, id, rel string) string {
	p := n.path(rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, wlPick(r, wlModes))
	if err != nil {
		return "write-failed"
	}
	defer f.Close()
	data := w.content(r, id)
	old, err := io.ReadAll(f)
	if err != nil {
		return "write-failed"
	}
	if err := f.Truncate(0); err != nil {
		return "write-failed"
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return "write-failed"
	}
	if r.IntN(5) == 0 {
		f.Chmod(wlPick(r, wlModes))
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Nlink == 0 {
		w.note(rel, "%s: write %s: the file was replaced while it was written", n.name, id)
		return "write-replaced"
	}
	prev := w.which(old)
	delete(w.need, obligation{prev, rel})
	w.need[obligation{id, rel}] = true
	w.note(rel, "%s: write %s over %q", n.name, id, prev)
	return "write"
}

// remove deletes rel, if it is a file, by moving it out of the folder to
// trash: what was deleted is then exactly what is in trash.
func (w *workload) remove(n *mnode, trash, id, rel string) string {
	if fi, err := os.Lstat(n.path(rel)); err != nil || !fi.Mode().IsRegular() {
		return "delete-nothing"
	}
	if err := os.Rename(n.path(rel), trash); err != nil {
		return "delete-failed"
	}
	data, _ := os.ReadFile(trash)
	prev := w.which(data)
	delete(w.need, obligation{prev, rel})
	w.note(rel, "%s: delete %q (op %s)", n.name, prev, id)
	return "delete"
}

// rename moves the file from to to, which must not exist.
func (w *workload) rename(n *mnode, id, from, to string) string {
	if from == to {
		return "rename-nothing"
	}
	f, err := os.OpenFile(n.path(from), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "rename-nothing"
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return "rename-nothing"
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return "rename-failed"
	}
	os.MkdirAll(filepath.Dir(n.path(to)), 0o755)
	if err := unix.Renameat2(unix.AT_FDCWD, n.path(from), unix.AT_FDCWD, n.path(to), unix.RENAME_NOREPLACE); err != nil {
		return "rename-failed"
	}
	moved := w.which(data)
	if after, err := os.Lstat(n.path(to)); err != nil || !os.SameFile(fi, after) {
		w.loose[from] = true
		w.note(from, "%s: rename to %s (op %s) moved unknown content: writes here not required", n.name, to, id)
		return "rename-ambiguous"
	}
	delete(w.need, obligation{moved, from})
	if moved != "" {
		w.need[obligation{moved, to}] = true
	}
	w.note(from, "%s: rename %q to %s (op %s)", n.name, moved, to, id)
	w.note(to, "%s: rename %q from %s (op %s)", n.name, moved, from, id)
	return "rename"
}

// conflictCopy matches a conflict copy's name; its groups are the name
// before, the number of a second copy of that name, and the extension.
var conflictCopy = regexp.MustCompile(`^(.+)\.sync-conflict-\d{8}-\d{6}-[A-Z2-7]+(-\d+)?(\.[^./]*)?$`)

// check fails the test for every obligation the final tree does not
// satisfy.
func (w *workload) check(t *testing.T, final map[string]mentry) {
	t.Helper()
	// Where each content is: at a path or at a conflict copy of it.
	at := map[string]map[string]bool{} // path → SHA-256 sums
	for rel, e := range final {
		if e.Type != "file" {
			continue
		}
		orig := rel
		dir, name := path.Split(rel)
		for {
			m := conflictCopy.FindStringSubmatch(name)
			if m == nil {
				break
			}
			name = m[1] + m[3]
			orig = dir + name
		}
		if at[orig] == nil {
			at[orig] = map[string]bool{}
		}
		at[orig][e.Sum] = true
	}
	copies := 0
	for rel := range final {
		if strings.Contains(rel, ".sync-conflict-") {
			copies++
		}
	}
	t.Logf("final tree: %d entries, %d conflict copies; %d writes required", len(final), copies, len(w.need))
	lost := 0
	for o := range w.need {
		if w.loose[o.path] || at[o.path][w.sums[o.write]] {
			continue
		}
		lost++
		if lost <= 10 {
			t.Errorf("write %s is lost: not at %s nor in a conflict copy of it; what happened there:\n  %s",
				o.write, o.path, strings.Join(w.hist[o.path], "\n  "))
		}
	}
	if lost > 10 {
		t.Errorf("… %d lost writes in all", lost)
	}
}
