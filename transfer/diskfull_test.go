package transfer

import (
	"bytes"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/internal/clock/clocktest"
	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/internal/ownname"
	"github.com/syncd/syncd/transfer/receive"
	"github.com/syncd/syncd/transfer/wire"
)

// An entry that fails for lack of space is tried again after 2 s, 4 s,
// 8 s … at most 5 min; once applied, its next failure starts again from
// 2 s. The folder is degraded "disk-full" from the first failure to the
// success, which is logged once each (and reminded every 10 minutes), not
// on every try.
func TestRetryBackoff(t *testing.T) {
	clk := clocktest.New(time.Unix(1_000_000, 0))
	var logs bytes.Buffer
	f := &Folder{Config: config.Folder{ID: "www", Path: "/srv/www"}, Health: health.NewConditions(clk.Now)}
	p := &puller{n: &Node{clk: clk}, f: f, peer: config.Peer{Name: "a"},
		retry: map[string]failure{}, r: receive.New(&receive.Folder{}, receive.Options{}), rep: new(reporters),
		log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	e := wire.Entry{Path: "big.bin", Type: "file", Seq: 7, Size: 60 << 20}
	full := receive.Failure{Entry: e, Err: &fs.PathError{Op: "write", Path: "big.bin", Err: syscall.ENOSPC}}

	want := []time.Duration{2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300, 300, 300}
	for i, w := range want {
		w *= time.Second
		now := clk.Now()
		p.settle([]wire.Entry{e}, []receive.Failure{full})
		if got := p.retry[e.Path].due.Sub(now); got != w {
			t.Fatalf("failure %d: next try in %v, want %v", i+1, got, w)
		}
		if due, next := p.due(now.Add(w - time.Millisecond)); len(due) != 0 || next.Sub(now) != w {
			t.Fatalf("failure %d: %d due a moment early (next %v), want none until %v", i+1, len(due), next.Sub(now), w)
		}
		clk.Advance(w)
		if due, _ := p.due(clk.Now()); len(due) != 1 || due[0].e.Path != e.Path {
			t.Fatalf("failure %d: due after %v: %v, want big.bin", i+1, w, due)
		}
		if c, ok := f.Health.Get(receive.CondDiskFull); !ok || c.Severity != health.Degraded ||
			!strings.Contains(c.Reason, "big.bin") || !strings.Contains(c.Reason, "no space left") {
			t.Fatalf("failure %d: condition %+v (set %v), want degraded disk-full naming big.bin", i+1, c, ok)
		}
	}
	// 13 failures over half an hour: one warning when it started, a
	// reminder at the first try 10 minutes after the last (at 13 min 30 s
	// and 23 min 30 s), no line per try.
	if n := strings.Count(logs.String(), "level=WARN"); n != 3 {
		t.Errorf("%d warnings, want 3 (started, two reminders):\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), `msg="folder degraded" condition=disk-full`); n != 1 {
		t.Errorf("%d 'folder degraded' lines, want 1:\n%s", n, logs.String())
	}

	// applied: the condition ends, and the next failure waits 2 s again
	p.settle([]wire.Entry{e}, nil)
	if _, ok := f.Health.Get(receive.CondDiskFull); ok || len(p.retry) != 0 {
		t.Fatalf("after success: condition still set (%v) or %d retries", ok, len(p.retry))
	}
	if !strings.Contains(logs.String(), `msg="folder condition resolved" condition=disk-full`) {
		t.Errorf("the end of the condition is not logged:\n%s", logs.String())
	}
	p.settle([]wire.Entry{e}, []receive.Failure{full})
	if got := p.retry[e.Path].due.Sub(clk.Now()); got != retryMin {
		t.Errorf("after a success, next try in %v, want %v", got, retryMin)
	}

	// a local change not yet indexed costs no transfer: every 2 s
	lc := wire.Entry{Path: "local.txt", Type: "file", Seq: 8}
	for range 5 {
		p.settle([]wire.Entry{lc}, []receive.Failure{{Entry: lc, Err: receive.ErrLocalChange}})
	}
	if got := p.retry[lc.Path].due.Sub(clk.Now()); got != retryEvery {
		t.Errorf("local change: next try in %v, want %v", got, retryEvery)
	}
}

// requireRoot skips a test that must mount a tmpfs unless it runs as
// root; under CI=true (which runs as root) not being root is a failure.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (to mount a tmpfs); CI runs as root")
		}
		t.Skip("this test needs root (to mount a tmpfs): run `go test ./transfer/` as root to cover it")
	}
}

func mountTmpfs(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// A receiver whose folder is a 4 MiB tmpfs gets a 6 MiB file: the folder
// shows degraded "disk-full" with the reason, the retries back off and
// fetch nothing more than the file once (what arrived is kept, and a try
// that cannot reserve the space asks for nothing), one warning is logged
// however many tries; once the tmpfs grows the file arrives whole, only
// its missing blocks fetched, and the condition clears. The retries come
// as the test moves the nodes' clock.
func TestDiskFullReceiver(t *testing.T) {
	requireRoot(t)
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	connect(a, b)
	mountTmpfs(t, "-t", "tmpfs", "-o", "size=4m", "tmpfs", b.dir)
	t.Cleanup(func() { // after b stopped (cleanups run last first)
		if out, err := exec.Command("umount", b.dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", b.dir, err, out)
		}
	})
	clk := onFakeClock(a, b)

	const size = 6 << 20
	big := make([]byte, size)
	// the same chunks every run: what fits in 4 MiB does not vary
	mrand.NewChaCha8([32]byte{11, 9}).Read(big)
	if err := os.WriteFile(filepath.Join(a.dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	a.start(t)
	b.start(t)

	tries := func() int {
		return strings.Count(b.log.String(), `msg="could not apply peer's version; will retry" peer=a folder=www path=big.bin`)
	}
	waited := drive(t, clk, "six tries of big.bin", func() bool { return tries() >= 6 })
	// 2+4+8+16+32 s between them, and a long poll before the first
	if want := 62 * time.Second; waited < want || waited > want+pollWait {
		t.Errorf("six tries took %v of the clock, want %v and at most a long poll more: the backoff", waited, want)
	}
	c, ok := b.f.Health.Get(receive.CondDiskFull)
	if !ok || b.f.Health.Worst() != health.Degraded || !strings.Contains(c.Reason, "big.bin") ||
		!strings.Contains(c.Reason, "no space left on device") {
		t.Errorf("folder condition %+v (set %v), want degraded disk-full naming big.bin and the error", c, ok)
	}
	full := a.node.blocksServed.Load()
	if full > size*3/2 {
		t.Errorf("%d tries fetched %d bytes of a %d-byte file: want the file's worth at most, not one per try", tries(), full, size)
	}
	var warns []string
	for _, l := range strings.Split(b.log.String(), "\n") {
		if strings.Contains(l, "level=WARN") {
			warns = append(warns, l)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "disk-full") {
		t.Errorf("%d tries logged %d warnings, want one for the condition:\n%s", tries(), len(warns), strings.Join(warns, "\n"))
	}

	t.Logf("%d tries while the disk was full fetched %d bytes of a %d-byte file", tries(), full, size)
	// What the kept temporary file holds whole: the chunks that were
	// written before the disk filled (three requests write at once, so
	// which ones, and how much of the 4 MiB, varies from run to run).
	held := heldChunks(t, a, b, big)
	if held == 0 {
		t.Fatal("the kept temporary file holds no whole chunk of big.bin")
	}
	mountTmpfs(t, "-o", "remount,size=64m", b.dir)
	drive(t, clk, "big.bin on b", func() bool {
		got, err := os.ReadFile(filepath.Join(b.dir, "big.bin"))
		return err == nil && bytes.Equal(got, big)
	})
	drive(t, clk, "the condition cleared", func() bool {
		_, ok := b.f.Health.Get(receive.CondDiskFull)
		return !ok && strings.Contains(b.log.String(), `msg="folder condition resolved" peer=a folder=www condition=disk-full`)
	})
	// what the kept file held is not asked for again
	if rest := a.node.blocksServed.Load() - full; rest > size-held {
		t.Errorf("%d bytes fetched once there was space, %d held whole: what arrived before was fetched again", rest, held)
	} else {
		t.Logf("%d bytes fetched once there was space, %d held whole", rest, held)
	}
	if temps := tempFiles(t, b.dir); len(temps) > 0 {
		t.Errorf("temporary files left: %v", temps)
	}
}

// tempFiles lists the receiver's temporary files anywhere under dir.
// heldChunks returns how many bytes of big, a's big.bin, b's one
// temporary file holds as whole chunks at their offsets.
func heldChunks(t *testing.T, a, b *testNode, big []byte) int64 {
	t.Helper()
	temps := tempFiles(t, b.dir)
	if len(temps) != 1 {
		t.Fatalf("%d temporary files kept, want big.bin's: %v", len(temps), temps)
	}
	got, err := os.ReadFile(temps[0])
	if err != nil {
		t.Fatal(err)
	}
	e, ok, err := a.f.Local.Index().Get("big.bin")
	if err != nil || !ok {
		t.Fatalf("a's index entry of big.bin: %v, %v", ok, err)
	}
	var off, held int64
	for _, n := range e.Lengths {
		end := off + int64(n)
		if end <= int64(len(got)) && bytes.Equal(got[off:end], big[off:end]) {
			held += int64(n)
		}
		off = end
	}
	return held
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ownname.IsTemp(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// What a file too large for the disk keeps for its next try does not
// keep smaller files out: a 6 MiB file and small ones sent in one batch
// to a 4 MiB tmpfs, the small ones arrive (the large one gives up what it
// held for them), and the large one once the tmpfs grows.
func TestDiskFullSmallFilesGoThrough(t *testing.T) {
	requireRoot(t)
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	connect(a, b)
	mountTmpfs(t, "-t", "tmpfs", "-o", "size=4m", "tmpfs", b.dir)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", b.dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", b.dir, err, out)
		}
	})
	clk := onFakeClock(a, b)
	big := make([]byte, 6<<20)
	mrand.NewChaCha8([32]byte{3}).Read(big)
	if err := os.WriteFile(filepath.Join(a.dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	a.index(t) // big.bin first: the small files come after it, in one batch
	small := []string{"s/1.txt", "s/2.txt", "s/3.txt"}
	for _, rel := range small {
		a.write(t, rel, strings.Repeat(rel, 20000))
	}
	a.index(t)
	a.start(t)
	b.start(t)

	drive(t, clk, "the small files on b", func() bool {
		for _, rel := range small {
			if got, err := os.ReadFile(filepath.Join(b.dir, rel)); err != nil || string(got) != strings.Repeat(rel, 20000) {
				return false
			}
		}
		return true
	})
	// waited for, not looked at once: the small files appear at their
	// renames, and the condition is set once the commit they are in has
	// returned (1 run in 30 looked in between: b's log had no batch
	// applied yet)
	drive(t, clk, "a disk-full condition while big.bin does not fit", func() bool {
		_, ok := b.f.Health.Get(receive.CondDiskFull)
		return ok
	})
	mountTmpfs(t, "-o", "remount,size=64m", b.dir)
	drive(t, clk, "big.bin on b", func() bool {
		got, err := os.ReadFile(filepath.Join(b.dir, "big.bin"))
		return err == nil && bytes.Equal(got, big)
	})
}

// A folder condition lasts while any of its pullers meets it: one peer's
// entries applied do not clear what another peer's still meet. EROFS and
// EIO are "disk-error", ENOSPC and EDQUOT "disk-full"; other errors none.
func TestConditionsSharedByPullers(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{syscall.ENOSPC, receive.CondDiskFull}, {syscall.EDQUOT, receive.CondDiskFull},
		{syscall.EROFS, receive.CondDiskError}, {syscall.EIO, receive.CondDiskError},
		{syscall.EACCES, ""}, {receive.ErrUnavailable, ""}, {receive.ErrLocalChange, ""},
	} {
		if got := receive.FailClass(&fs.PathError{Op: "write", Path: "x", Err: tc.err}); got != tc.want {
			t.Errorf("receive.FailClass(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}

	f := &Folder{Config: config.Folder{ID: "www", Path: "/srv/www"}, Health: health.NewConditions(nil)}
	n := &Node{clk: clock.System}
	rep := new(reporters)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	p1 := &puller{n: n, f: f, peer: config.Peer{Name: "a"}, retry: map[string]failure{}, r: receive.New(&receive.Folder{}, receive.Options{}), rep: rep, log: log}
	p2 := &puller{n: n, f: f, peer: config.Peer{Name: "c"}, retry: map[string]failure{}, r: receive.New(&receive.Folder{}, receive.Options{}), rep: rep, log: log}
	e := wire.Entry{Path: "x", Type: "file", Seq: 1, Size: 10}
	ro := receive.Failure{Entry: e, Err: &fs.PathError{Op: "open", Path: "x", Err: syscall.EROFS}}
	p1.settle([]wire.Entry{e}, []receive.Failure{ro})
	p2.settle([]wire.Entry{e}, []receive.Failure{ro})
	p1.settle([]wire.Entry{e}, nil)
	if c, ok := f.Health.Get(receive.CondDiskError); !ok || !strings.Contains(c.Reason, "read-only file system") {
		t.Fatalf("after one of two pullers recovered: condition %+v (set %v), want disk-error still", c, ok)
	}
	p2.settle([]wire.Entry{e}, nil)
	if _, ok := f.Health.Get(receive.CondDiskError); ok {
		t.Fatal("both pullers recovered: disk-error still set")
	}
	if w, r := strings.Count(logs.String(), `msg="folder degraded"`), strings.Count(logs.String(), `msg="folder condition resolved"`); w != 1 || r != 1 {
		t.Errorf("%d 'degraded' and %d 'resolved' lines, want one each:\n%s", w, r, logs.String())
	}
}
