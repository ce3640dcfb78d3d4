package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/daemon"
	"github.com/syncd/syncd/internal/faultproxy"
	"github.com/syncd/syncd/internal/miniotest"
)

// The failover suite (failover_test.go) runs the scenarios operators
// rehearse on one fleet, one after the other: fleet is its setup and what
// the scenarios share.

// snapshotEvery is the fleet's repository.schedule: often, so that a
// scheduled snapshot falls soon after a fault and after its healing.
const snapshotEvery = "@every 3s"

// alertWait bounds every wait for a webhook message: a generous
// deadline, not a speed requirement (peer down takes up to 13 s after a
// silent cut: 10 s of unanswered pings, 3 s of peerDownAfter).
const alertWait = 60 * time.Second

// fleet is three send-receive nodes a, b and c, a mesh in which each node
// reaches each other through a fault proxy of its own (link "a>c" is
// a's connection to c), snapshotting on a schedule into one MinIO
// repository reached through another fault proxy, and sending alerts to
// one webhook receiver. With mounts, the folders of b and c are bind
// mounts of a directory on a tmpfs of their own (disk), so that b's can
// be unmounted and c's filled.
type fleet struct {
	t      *testing.T // the test that owns the processes, proxies and mounts
	ns     []*mnode
	node   map[string]*mnode
	links  map[string]*faultproxy.Proxy
	s3     *faultproxy.Proxy
	repo   *repo
	env    []string // the daemons': MinIO through s3
	direct []string // MinIO itself, for restore
	hook   *hookReceiver
	disk   map[string]string // node → the mount point of its tmpfs
	files  *ledger           // every file the scenarios wrote and deleted
}

// newFleet starts MinIO, the repository, the proxies and the three
// daemons, and waits until they run in step.
func newFleet(t *testing.T, mounts bool) *fleet {
	t.Helper()
	srv := miniotest.Start(t)
	r, direct := newS3Repo(t, srv, "s3://backups/fleet")
	f := &fleet{t: t, node: map[string]*mnode{}, links: map[string]*faultproxy.Proxy{}, repo: r, direct: direct,
		hook: newHookReceiver(t), disk: map[string]string{}, files: newLedger()}
	var err error
	if f.s3, err = faultproxy.New(strings.TrimPrefix(srv.Endpoint, "http://")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.s3.Close() })
	f.env = append(append([]string(nil), direct...), "AWS_ENDPOINT_URL=http://"+f.s3.Addr()) // the last one wins
	f.ns = mesh(t, "send-receive", "a", "b", "c")
	for _, n := range f.ns {
		f.node[n.name] = n
	}
	for _, n := range f.ns {
		var ps []mpeer
		for _, o := range f.ns {
			if o != n {
				p := proxyTo(t, o)
				f.links[n.name+">"+o.name] = p
				ps = append(ps, mpeer{o.name, o.id, p.Addr()})
			}
		}
		// skip_unchanged off: each scheduled snapshot is written, so that
		// one taken after a fault healed is in the repository to check
		n.extraYAML = fmt.Sprintf("repository:\n  url: %s\n  index_key: %s\n  data_recipients: []\n  schedule: %q\n  skip_unchanged: false\n%s",
			r.url, r.indexKey, snapshotEvery, f.hook.yaml())
		n.setPeers(ps...)
	}
	// c's lag shows in /readyz 2 s after it could not apply a change
	f.node["c"].nodeYAML = "  max_lag: 2s\n"
	f.node["c"].writeConfig()
	if mounts {
		f.mountDisk(f.node["b"], "64m")
		f.mountDisk(f.node["c"], "32m")
	}
	for _, n := range f.ns {
		f.launch(n)
	}
	for _, n := range f.ns {
		n.waitReady()
	}
	waitSame(t, f.ns...)
	return f
}

// mountDisk puts n's folder on a tmpfs of size: the tmpfs is mounted at
// n.dir/disk and its directory data bind-mounted at n.folder.
func (f *fleet) mountDisk(n *mnode, size string) {
	disk := filepath.Join(n.dir, "disk")
	if err := os.Mkdir(disk, 0o755); err != nil {
		f.t.Fatal(err)
	}
	mount(f.t, "-t", "tmpfs", "-o", "size="+size, "tmpfs", disk)
	f.t.Cleanup(func() { exec.Command("umount", "-l", disk).Run() })
	if err := os.Mkdir(filepath.Join(disk, "data"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	mount(f.t, "--bind", filepath.Join(disk, "data"), n.folder)
	f.t.Cleanup(func() { exec.Command("umount", "-l", n.folder).Run() })
	f.disk[n.name] = disk
}

// launch runs syncd run for n with the fleet's environment and returns
// at once; the process is killed at the end of the fleet's test, not of
// the scenario that started it.
func (f *fleet) launch(n *mnode) {
	n.env = f.env
	n.launchFor(f.t)
}

// bind makes the nodes' helpers report to t, the scenario running.
func (f *fleet) bind(t *testing.T) {
	for _, n := range f.ns {
		n.t = t
	}
}

// settled waits until the fleet runs in step with nothing wrong: every
// node up, the trees the same, no alert active on any node.
func (f *fleet) settled(t *testing.T) {
	t.Helper()
	start := time.Now()
	waitSame(t, f.ns...)
	same := time.Since(start)
	var last, seen string
	if !waitFor(converge, func() bool {
		last = ""
		for _, n := range f.ns {
			st, err := nodeStatus(n)
			if err != nil || len(st.Alerts) > 0 {
				last = fmt.Sprintf("%s: %v %+v", n.name, err, st.Alerts)
				seen = last
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the fleet did not settle before the scenario: %s", last)
	}
	if seen == "" {
		seen = "none"
	}
	t.Logf("settled in %v (in step after %v); alerts waited for: %s", time.Since(start).Round(time.Millisecond), same.Round(time.Millisecond), seen)
}

// nodeStatus reads n's /status in full (alerts and last snapshot too).
func nodeStatus(n *mnode) (daemon.Status, error) {
	var st daemon.Status
	return st, getStatus(n.http, &st)
}

// lastSnapshot returns n's last snapshot as its status shows it, or nil.
func lastSnapshot(n *mnode) *daemon.SnapshotInfo {
	st, err := nodeStatus(n)
	if err != nil || len(st.Folders) == 0 {
		return nil
	}
	return st.Folders[0].LastSnapshot
}

// readyz returns the code and body of n's /readyz (0 and the error when
// it does not answer).
func readyz(n *mnode) (int, string) {
	resp, err := http.Get("http://" + n.http + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// metric returns the value of the sample of metric name on n's /metrics
// whose labels hold every one of labels (`peer="c"`), and whether there
// is one.
func metric(n *mnode, name string, labels ...string) (float64, bool) {
	resp, err := http.Get("http://" + n.http + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		series, value, found := strings.Cut(line, " ")
		if !found || strings.HasPrefix(line, "#") {
			continue
		}
		if base, _, _ := strings.Cut(series, "{"); base != name {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(series, l)
		}
		if all {
			v, err := strconv.ParseFloat(value, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// waitAlert waits for the webhook message from node with key and status
// received at or after since, and returns it; it fails t if none came
// within alertWait.
func (h *hookReceiver) waitAlert(t *testing.T, since time.Time, node, key, status string) hookMsg {
	t.Helper()
	var got hookMsg
	if !waitFor(alertWait, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, m := range h.msgs {
			if m.Node == node && m.Key == key && m.Status == status && !m.at.Before(since) {
				got = m
				return true
			}
		}
		return false
	}) {
		h.mu.Lock()
		defer h.mu.Unlock()
		t.Fatalf("no %s %s alert from %s within %v of %s; received since: %+v", key, status, node, alertWait,
			since.Format("15:04:05.000"), h.since(since))
	}
	t.Logf("%s: %s %s %.1f s after %s", node, key, status, got.at.Sub(since).Seconds(), since.Format("15:04:05.000"))
	return got
}

// sent reports whether node sent a message of key with status at or
// after since.
func (h *hookReceiver) sent(since time.Time, node, key, status string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.since(since) {
		if m.Node == node && m.Key == key && m.Status == status {
			return true
		}
	}
	return false
}

// since returns the messages received at or after t; h.mu is held.
func (h *hookReceiver) since(t time.Time) []hookMsg {
	var out []hookMsg
	for _, m := range h.msgs {
		if !m.at.Before(t) {
			out = append(out, m)
		}
	}
	return out
}

// ledger is every file the scenarios wrote, with the SHA-256 of its last
// content, and every one they deleted on purpose: at the end of each
// scenario every node must hold the former and none of the latter. Safe
// for concurrent use.
type ledger struct {
	mu    sync.Mutex
	files map[string]string // slash path → SHA-256
	gone  map[string]bool
}

func newLedger() *ledger { return &ledger{files: map[string]string{}, gone: map[string]bool{}} }

// write writes content to rel in n's folder, making its directories, and
// records it. Unlike mnode.write it returns its error: writers call it
// outside the test's goroutine.
func (l *ledger) write(n *mnode, rel string, content []byte) error {
	p := n.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		return err
	}
	sum, err := fileSum(p)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.files[rel] = sum
	delete(l.gone, rel)
	return nil
}

// remove deletes rel from n's folder and records it.
func (l *ledger) remove(n *mnode, rel string) error {
	if err := os.Remove(n.path(rel)); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.files, rel)
	l.gone[rel] = true
	return nil
}

// copy returns copies of the ledger's files and deletes.
func (l *ledger) copy() (files map[string]string, gone map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.files), maps.Clone(l.gone)
}

// count returns how many files the ledger holds.
func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.files)
}

// lost returns what is wrong with tree against the ledger, by path:
// files missing or with other content, deleted files present.
func (l *ledger) lost(tree map[string]mentry) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	bad := map[string]string{}
	for p, sum := range l.files {
		switch e, ok := tree[p]; {
		case !ok:
			bad[p] = "missing"
		case e.Sum != sum:
			bad[p] = "other content than last written"
		}
	}
	for p := range l.gone {
		if _, ok := tree[p]; ok {
			bad[p] = "deleted, but there"
		}
	}
	return bad
}

// forget drops paths from the ledger: a loss is reported by the
// scenario that caused it, not again by every later one.
func (l *ledger) forget(paths []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range paths {
		delete(l.files, p)
		delete(l.gone, p)
	}
}

// noneLost fails t for every node whose folder lacks a file of the
// ledger (or its last content) or holds one deleted on purpose.
func (f *fleet) noneLost(t *testing.T) {
	t.Helper()
	var lost []string
	for _, n := range f.ns {
		tree, err := mscan(n.folder)
		if err != nil {
			t.Errorf("%s: %v", n.name, err)
			continue
		}
		bad := f.files.lost(tree)
		if len(bad) == 0 {
			continue
		}
		var lines []string
		for p, why := range bad {
			lines = append(lines, p+": "+why)
			lost = append(lost, p)
		}
		sort.Strings(lines)
		if len(lines) > 20 {
			lines = append(lines[:20], fmt.Sprintf("… and %d more", len(lines)-20))
		}
		t.Errorf("%s lost files written during the scenarios (ledger of %d):\n%s", n.name, f.files.count(), strings.Join(lines, "\n"))
	}
	f.files.forget(lost)
}

// writers write to nodes until stopped, each into dir/<node>/ of its own
// folder every 150 ms: a new file each time, each 4th time an edit of one
// of its own earlier files (a new size), each 9th a delete of one.
type writers struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func (f *fleet) startWriters(t *testing.T, dir string, ns ...*mnode) *writers {
	w := &writers{stop: make(chan struct{})}
	for _, n := range ns {
		w.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-w.stop:
					return
				case <-time.After(150 * time.Millisecond):
				}
				rel := fmt.Sprintf("%s/%s/%03d.txt", dir, n.name, i)
				err := f.files.write(n, rel, []byte(strings.Repeat(fmt.Sprintf("%s %d ", n.name, i), 50+i)))
				switch {
				case err == nil && i%4 == 3:
					err = f.files.write(n, fmt.Sprintf("%s/%s/%03d.txt", dir, n.name, i-2), []byte(fmt.Sprint("edited at ", i)))
				case err == nil && i%9 == 8:
					err = f.files.remove(n, fmt.Sprintf("%s/%s/%03d.txt", dir, n.name, i-7))
				}
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s: writer: %v", n.name, err)
					return
				}
			}
		})
	}
	return w
}

// end stops the writers and waits for them.
func (w *writers) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// fill writes a file at p until the file system holding it is full.
func fill(t *testing.T, p string) {
	t.Helper()
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	buf := make([]byte, 256<<10)
	for {
		if _, err := fh.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// measured is what a scenario measured, printed as one FAILOVER line.
type measured struct {
	name                      string
	fault, alert              time.Time // the fault, the first alert it raised at the webhook
	heal, resolved, converged time.Time // the healing, the last resolved, the nodes in step again
}

// line is the FAILOVER line of m: seconds from the fault to the first
// alert, from the healing to the last alert resolved, and from the
// healing to convergence.
func (m measured) line() string {
	return fmt.Sprintf("FAILOVER scenario=%s alert_s=%.1f resolve_s=%.1f converge_s=%.1f",
		m.name, m.alert.Sub(m.fault).Seconds(), m.resolved.Sub(m.heal).Seconds(), m.converged.Sub(m.heal).Seconds())
}

// firstAt and lastAt return the earliest and the latest receipt of ms.
func firstAt(ms ...hookMsg) time.Time {
	at := ms[0].at
	for _, m := range ms {
		if m.at.Before(at) {
			at = m.at
		}
	}
	return at
}

func lastAt(ms ...hookMsg) time.Time {
	at := ms[0].at
	for _, m := range ms {
		if m.at.After(at) {
			at = m.at
		}
	}
	return at
}
