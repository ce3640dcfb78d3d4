package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/faultproxy"
)

// randomFile writes size random (incompressible) bytes to p and returns
// their SHA-256. The file appears at p complete (written beside the
// nodes, then renamed into place): a writer that a loaded machine
// pauses mid-file for longer than the watcher's debounce has its part
// mirrored, rightly, and the tests that use it look at what the
// receiver shows, not at what a slow writer does.
func randomFile(t *testing.T, p string, size int, seed uint64) string {
	t.Helper()
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(keptDir(t, "scratch-"), filepath.Base(p)) // on the nodes' file system
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b) // as fileSum gives it, without reading the file back
	return hex.EncodeToString(sum[:])
}

// proxyTo starts a fault-injecting proxy to n's peer port, closed at the
// end of the test.
func proxyTo(t *testing.T, n *mnode) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(n.listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// watchTarget polls p until stop is closed and records every time it was
// there but not complete: a size other than size, or the right size and
// the wrong content (each inode is hashed once). It also records whether
// a receiver's temporary file (.syncd-*) was seen beside it.
type targetWatch struct {
	p, sum  string
	size    int64
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	partial []string
	temp    atomic.Bool
}

func watchTarget(p string, size int64, sum string) *targetWatch {
	w := &targetWatch{p: p, size: size, sum: sum, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *targetWatch) run() {
	defer close(w.done)
	checked := map[uint64]bool{}
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		if m, _ := filepath.Glob(filepath.Join(filepath.Dir(w.p), ".syncd-*")); len(m) > 0 {
			w.temp.Store(true)
		}
		fi, err := os.Lstat(w.p)
		switch {
		case err != nil:
		case fi.Size() != w.size:
			w.fail(fmt.Sprintf("%s is there with %d bytes of %d", w.p, fi.Size(), w.size))
		case !checked[fi.Sys().(*syscall.Stat_t).Ino]:
			checked[fi.Sys().(*syscall.Stat_t).Ino] = true
			if sum, err := fileSum(w.p); err == nil && sum != w.sum {
				w.fail(fmt.Sprintf("%s is there with its full size and other content", w.p))
			}
		}
		time.Sleep(2 * time.Millisecond) // the sampling rate: nothing to wait for, the path is looked at all along
	}
}

func (w *targetWatch) fail(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) < 5 {
		w.partial = append(w.partial, time.Now().UTC().Format("15:04:05.000 ")+msg)
	}
}

// end stops the watch and returns what it saw that was not complete.
func (w *targetWatch) end() []string {
	close(w.stop)
	<-w.done
	return w.partial
}

// TestMirrorKilledMidTransfer kills a node with SIGKILL in the middle of
// the transfer of a 64 MiB file from A to B (the proxy between them
// blackholes itself once 8 MiB have gone through, so the kill lands
// mid-transfer): first the receiver, then, in another run, the sender. At
// no time is the file visible on B at its path unless complete, and after
// a restart the transfer completes and no temporary file is left.
func TestMirrorKilledMidTransfer(t *testing.T) {
	t.Parallel()
	for _, victim := range []string{"receiver", "sender"} {
		t.Run(victim, func(t *testing.T) {
			t.Parallel()
			ns := mesh(t, "send-receive", "a", "b")
			a, b := ns[0], ns[1]
			toA := proxyTo(t, a)
			b.setPeers(mpeer{a.name, a.id, toA.Addr()})
			a.start()
			b.start()
			const size = 64 << 20
			// The proxy stalls itself 8 MiB into the file, wherever the
			// test is: a loaded machine may not schedule it before the
			// rest of the file has gone through.
			stall := toA.BytesDown() + 8<<20
			toA.AtDown(stall, toA.Blackhole)
			sum := randomFile(t, a.path("big/file.bin"), size, 1)
			w := watchTarget(b.path("big/file.bin"), size, sum)
			if !waitFor(converge, func() bool { return toA.BytesDown() >= stall }) {
				w.end()
				t.Fatalf("the transfer did not start: %d bytes from A; log of b:\n%s", toA.BytesDown(), b.logTail())
			}
			if !waitFor(converge, w.temp.Load) {
				t.Errorf("no temporary file seen on B during the transfer")
			}
			ended := func() int { return len(b.logLines(`msg="peer session ended"`, " peer=a ")) }
			before := ended()
			if victim == "receiver" {
				b.stop(true)
			} else {
				a.stop(true)
			}
			toA.Heal()
			// With one side down, nothing may appear at the path (w watches
			// until the file is complete after the restart). A killed
			// receiver writes nothing; a receiver whose sender is killed
			// must first see its transfer fail.
			if victim == "sender" && !waitFor(converge, func() bool { return ended() > before }) {
				t.Fatalf("B did not notice that A was killed mid-transfer; log of b:\n%s", b.logTail())
			}
			if victim == "receiver" {
				b.start()
			} else {
				a.start()
			}
			done := waitFor(converge, func() bool { s, _ := fileSum(b.path("big/file.bin")); return s == sum })
			partial := w.end()
			for _, p := range partial {
				t.Errorf("a partial file was visible on B: %s", p)
			}
			if len(partial) > 0 {
				t.Logf("log of a:\n%s\nlog of b:\n%s", a.log(), b.log())
			}
			if !done {
				t.Fatalf("the file did not arrive complete after the restart; log of b:\n%s", b.logTail())
			}
			if m, _ := filepath.Glob(b.path("big/.syncd-*")); len(m) > 0 {
				t.Errorf("temporary files left on B after the transfer completed: %v", m)
			}
			waitSame(t, a, b)
			if !a.alive() || !b.alive() {
				t.Errorf("a daemon is down after the transfer; log of a:\n%s\nlog of b:\n%s", a.logTail(), b.logTail())
			}
		})
	}
}

// TestMirrorNetworkCut cuts the network between A and B (a proxy on each
// direction) for 30 s while both keep writing: during the cut, each side's
// syncd status shows the other disconnected; after it heals, both
// converge.
func TestMirrorNetworkCut(t *testing.T) {
	t.Parallel()
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]
	toA, toB := proxyTo(t, a), proxyTo(t, b)
	b.setPeers(mpeer{a.name, a.id, toA.Addr()})
	a.setPeers(mpeer{b.name, b.id, toB.Addr()})
	a.write("shared.txt", []byte("before the cut\n"))
	a.start()
	b.start()
	waitSame(t, a, b)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range ns {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				n.write(fmt.Sprintf("%s/%03d.txt", n.name, i), []byte(strings.Repeat(n.name+fmt.Sprint(i)+" ", 100+i)))
				if i%7 == 3 {
					n.write(fmt.Sprintf("%s/%03d.txt", n.name, i-3), []byte("edited "+fmt.Sprint(i)))
				}
				if i%11 == 5 {
					os.Remove(n.path(fmt.Sprintf("%s/%03d.txt", n.name, i-5)))
				}
				if i%50 == 20 {
					n.write("shared.txt", []byte(fmt.Sprintf("edited on %s at %d\n", n.name, i)))
				}
			}
		})
	}
	// the cut comes once each side's writes are travelling
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	if !waitFor(converge, func() bool { return exists(b.path("a/000.txt")) && exists(a.path("b/000.txt")) }) {
		t.Fatalf("the first writes did not travel before the cut; log of a:\n%s\nlog of b:\n%s", a.logTail(), b.logTail())
	}
	toA.Cut()
	toB.Cut()
	cutAt := time.Now()
	seen := map[string]mpeerStatus{} // node → its peer's status once shown disconnected
	// The cut lasts 30 s whatever the status shows (a long cut, with the
	// pullers' backoff at its longest, is the case tested); the status is
	// read once a second meanwhile.
	for i := 0; time.Since(cutAt) < 30*time.Second; i++ {
		for _, n := range ns {
			other := map[string]string{"a": "b", "b": "a"}[n.name]
			p, ok := n.status().peer(other)
			if i%10 == 2 {
				t.Logf("%s: status of peer %s %v after the cut: %+v", n.name, other, time.Since(cutAt).Round(time.Second), p)
			}
			if ok && !p.Connected {
				if _, dup := seen[n.name]; !dup {
					seen[n.name] = p
					t.Logf("%s: peer %s shown disconnected %v after the cut: %+v", n.name, other, time.Since(cutAt).Round(time.Second), p)
				}
			}
		}
		time.Sleep(time.Second)
	}
	toA.Heal()
	toB.Heal()
	// the writers go on until each side has reconnected
	connected := func(n *mnode, other string) bool {
		st, err := n.httpStatus()
		p, _ := st.peer(other)
		return err == nil && p.Connected
	}
	if !waitFor(converge, func() bool { return connected(a, "b") && connected(b, "a") }) {
		t.Errorf("the peers did not reconnect after the cut healed")
	}
	close(stop)
	wg.Wait()
	for _, n := range ns {
		if p, ok := seen[n.name]; !ok {
			t.Errorf("%s: syncd status never showed its peer disconnected during the 30 s cut", n.name)
		} else if p.Error == "" {
			t.Errorf("%s: status of the disconnected peer has no error: %+v", n.name, p)
		}
	}
	waitSame(t, a, b)
}

// TestMirrorDiskFull puts B's folder on an 8 MiB tmpfs and has A send a
// 12 MiB file (written first) and small files: the small files arrive,
// the big one fails with "no space left on device" in B's log and in its
// status lag, B stays up; once the tmpfs is remounted with 64 MiB, the
// big file arrives (retried).
func TestMirrorDiskFull(t *testing.T) {
	requireRoot(t, "TestMirrorDiskFull")
	t.Parallel()
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]
	mount(t, "-t", "tmpfs", "-o", "size=8m", "tmpfs", b.folder)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", b.folder).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", b.folder, err, out)
		}
	})
	const size = 12 << 20
	sum := randomFile(t, a.path("big.bin"), size, 2)
	var small []string
	for i := range 5 {
		rel := fmt.Sprintf("small/%d.txt", i)
		a.write(rel, []byte(strings.Repeat(fmt.Sprint(i), 10000)))
		small = append(small, rel)
	}
	a.start()
	b.start() // after A has indexed everything: B gets the big file first, in one batch with the others

	arrived := waitFor(converge, func() bool {
		for _, rel := range small {
			if _, err := os.Stat(b.path(rel)); err != nil {
				return false
			}
		}
		return true
	})
	if !arrived {
		t.Errorf("the small files did not arrive while the big one could not be written; log of b:\n%s", b.logTail())
	}
	if !waitFor(converge, func() bool { return len(b.logLines("big.bin", "no space left on device")) > 0 }) {
		t.Errorf("B's log has no error for big.bin saying the disk is full; log of b:\n%s", b.logTail())
	}
	var lag mpeerStatus
	if !waitFor(converge, func() bool {
		lag, _ = b.status().peer("a")
		return lag.LagFiles >= 1 && lag.LagBytes >= size
	}) {
		t.Errorf("B's status does not show big.bin as lag: %+v", lag)
	}
	if !b.alive() {
		t.Fatalf("B is down after the disk filled; log:\n%s", b.logTail())
	}
	if _, err := os.Stat(b.path("big.bin")); err == nil {
		t.Errorf("big.bin is on B although it does not fit")
	}

	mount(t, "-o", "remount,size=64m", b.folder)
	if !waitFor(converge, func() bool { s, _ := fileSum(b.path("big.bin")); return s == sum }) {
		t.Fatalf("big.bin did not arrive once there was space; log of b:\n%s", b.logTail())
	}
	waitSame(t, a, b)
	if lag, _ := b.status().peer("a"); lag.LagFiles != 0 || lag.LagBytes != 0 {
		t.Errorf("B's status still shows lag once everything arrived: %+v", lag)
	}
}

// requireRoot: only root can mount a tmpfs. CI runs as root, so there a
// missing privilege fails the test; elsewhere it is skipped.
func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s needs root (to mount a tmpfs); CI runs as root", why)
		}
		t.Skipf("%s needs root (to mount a tmpfs); run the e2e tests as root to cover it (not CI)", why)
	}
}

// mount runs mount(8) with args, failing the test if it fails.
func mount(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("mount", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mount %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestMirrorUnknownPeer has C, which A's configuration does not list,
// connect to A: A refuses it and logs C's node ID, C's status shows the
// error for A, and nothing travels either way.
func TestMirrorUnknownPeer(t *testing.T) {
	t.Parallel()
	a := newMNode(t, "a", "send-receive")
	b := newMNode(t, "b", "send-receive") // A's only peer; never started
	c := newMNode(t, "c", "send-receive")
	a.setPeers(b.asPeer())
	c.setPeers(a.asPeer())
	a.write("secret.txt", []byte("for b only\n"))
	c.write("from-c.txt", []byte("c's\n"))
	a.start()
	c.start()
	if !waitFor(converge, func() bool { return len(a.logLines("refused", c.id)) > 0 }) {
		t.Errorf("A did not log a refusal naming C's ID %s; log of a:\n%s", c.id, a.logTail())
	}
	var p mpeerStatus
	if !waitFor(converge, func() bool { p, _ = c.status().peer("a"); return p.Error != "" }) {
		t.Errorf("C's status shows no error for A: %+v", p)
	} else {
		t.Logf("C's status of A: %+v", p)
	}
	if p.Connected {
		t.Errorf("C's status shows A connected: %+v", p)
	}
	if _, err := os.Stat(c.path("secret.txt")); err == nil {
		t.Errorf("A's file reached C, which A does not know")
	}
	if _, err := os.Stat(a.path("from-c.txt")); err == nil {
		t.Errorf("C's file reached A, which does not know C")
	}
	if p, _ := a.status().peer("b"); p.Connected {
		t.Errorf("A shows its peer b connected, but only C connected: %+v", p)
	}
	if !a.alive() {
		t.Errorf("A is down after refusing C; log:\n%s", a.logTail())
	}
}
