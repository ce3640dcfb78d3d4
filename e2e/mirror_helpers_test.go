package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/daemon"
	"github.com/syncd/syncd/internal/miniotest"
	"github.com/syncd/syncd/state"
)

// The mirror tests run real `syncd run` processes, one per node, on
// 127.0.0.1, each with one folder "data" and no repository (so every node
// chunks files the same way).

// converge is how long the mirror tests wait for nodes to agree: a
// generous deadline, not a speed requirement.
const converge = 90 * time.Second

// mnode is one mirroring node: its directories, ports, ID and process.
type mnode struct {
	t      *testing.T
	name   string
	dir    string // everything of the node: config, state, log, folder
	cfg    string
	state  string
	folder string
	listen string // peer protocol
	http   string // status
	id     string
	mode   string
	// debounce is the watcher's debounce (watch.debounce); "" is 50ms.
	debounce string
	// nodeYAML is added to the node: section ("  max_lag: 1s\n"), and
	// extraYAML at the end of the file (an alerts: section).
	nodeYAML, extraYAML string
	// fid is the folder's ID; "" is "data".
	fid string
	// env is added to the daemon's environment (a repository's credentials).
	env []string

	peers []mpeer // what the config lists
	cmd   *exec.Cmd
	logf  string
}

// mpeer is one entry of a node's peers: section.
type mpeer struct {
	name, id, address string
}

// newMNode makes a node named name with an empty folder and its TLS
// identity (syncd id); the configuration is written by setPeers.
func newMNode(t *testing.T, name, mode string) *mnode {
	t.Helper()
	dir := keptDir(t, t.Name()+"-"+name+"-")
	n := &mnode{t: t, name: name, dir: dir, cfg: filepath.Join(dir, "syncd.yaml"), state: filepath.Join(dir, "state"),
		folder: filepath.Join(dir, "data"), listen: miniotest.FreeAddr(t), http: miniotest.FreeAddr(t), mode: mode,
		logf: filepath.Join(dir, "syncd.log")}
	if err := os.Mkdir(n.folder, 0o755); err != nil {
		t.Fatal(err)
	}
	n.writeConfig()
	n.id = strings.TrimSpace(ok(t, nil, "syncd", "id", "--config", n.cfg))
	return n
}

// keptDir returns a new directory for a test: its own temporary one, or,
// with SYNCD_E2E_KEEP set, one named pattern (as os.MkdirTemp) in that
// directory, kept to look at a failure's nodes afterwards.
func keptDir(t *testing.T, pattern string) string {
	t.Helper()
	keep := os.Getenv("SYNCD_E2E_KEEP")
	if keep == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(keep, pattern)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// mesh makes nodes named names in mode, each a peer of every other.
func mesh(t *testing.T, mode string, names ...string) []*mnode {
	t.Helper()
	ns := make([]*mnode, len(names))
	for i, name := range names {
		ns[i] = newMNode(t, name, mode)
	}
	for _, n := range ns {
		var ps []mpeer
		for _, o := range ns {
			if o != n {
				ps = append(ps, o.asPeer())
			}
		}
		n.setPeers(ps...)
	}
	return ns
}

// asPeer is n as another node's config lists it, at its real address.
func (n *mnode) asPeer() mpeer { return mpeer{n.name, n.id, n.listen} }

// setPeers rewrites n's configuration with peers ps, all sharing the folder.
func (n *mnode) setPeers(ps ...mpeer) {
	n.peers = ps
	n.writeConfig()
}

func (n *mnode) writeConfig() {
	var b strings.Builder
	fmt.Fprintf(&b, "node:\n  name: %s\n  state_dir: %s\n  listen: %s\n  http: %s\n%s", n.name, n.state, n.listen, n.http, n.nodeYAML)
	var names []string
	if len(n.peers) > 0 {
		b.WriteString("peers:\n")
		for _, p := range n.peers {
			fmt.Fprintf(&b, "  - name: %s\n    id: %s\n    address: %s\n", p.name, p.id, p.address)
			names = append(names, p.name)
		}
	}
	fid := n.fid
	if fid == "" {
		fid = "data"
	}
	fmt.Fprintf(&b, "folders:\n  - id: %s\n    path: %s\n    mode: %s\n    peers: [%s]\n", fid, n.folder, n.mode, strings.Join(names, ", "))
	d := n.debounce
	if d == "" {
		d = "50ms"
	}
	fmt.Fprintf(&b, "watch:\n  debounce: %s\n%s", d, n.extraYAML)
	if err := os.WriteFile(n.cfg, []byte(b.String()), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// start runs syncd run for n and waits until its folder is indexed. The
// log accumulates over restarts in n.logf.
func (n *mnode) start() {
	n.t.Helper()
	n.launch()
	n.waitReady()
}

// launch runs syncd run for n and returns at once.
func (n *mnode) launch() {
	n.t.Helper()
	n.launchFor(n.t)
}

// launchFor is launch with the process killed at the end of owner's test.
func (n *mnode) launchFor(owner *testing.T) {
	logf, err := os.OpenFile(n.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	fmt.Fprintf(logf, "---- start %s\n", time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(filepath.Join(binDir, "syncd"), "run", "--config", n.cfg)
	cmd.Env = append(os.Environ(), n.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	logf.Close()
	n.cmd = cmd
	owner.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// stop ends n's daemon with SIGTERM, or SIGKILL when kill is set.
func (n *mnode) stop(kill bool) {
	n.t.Helper()
	if n.cmd == nil {
		return
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	n.cmd.Process.Signal(sig)
	err := n.cmd.Wait()
	if !kill && err != nil {
		n.t.Errorf("%s: syncd run after SIGTERM: %v\n%s", n.name, err, n.logTail())
	}
	n.cmd = nil
}

// alive reports whether n's daemon still runs (it has not exited).
func (n *mnode) alive() bool {
	if n.cmd == nil {
		return false
	}
	resp, err := http.Get("http://" + n.http + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (n *mnode) waitReady() {
	n.t.Helper()
	deadline := time.Now().Add(converge)
	for time.Now().Before(deadline) {
		if readyAndIdle(n.http) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("%s: syncd run not ready within %v; log:\n%s", n.name, converge, n.logTail())
}

// readyAndIdle reports whether the daemon on addr answers /readyz with
// 200 and its /status shows nothing pending in any folder: its folders are
// scanned and every change it has been told of is indexed. (/readyz alone
// does not wait for a batch being indexed.)
func readyAndIdle(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	resp, err = http.Get("http://" + addr + "/status")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct{ Folders []struct{ Pending int64 } }
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return false
	}
	for _, f := range st.Folders {
		if f.Pending != 0 {
			return false
		}
	}
	return true
}

// log returns n's whole log.
func (n *mnode) log() string {
	b, _ := os.ReadFile(n.logf)
	return string(b)
}

// logTail returns the end of n's log, for failure messages.
func (n *mnode) logTail() string {
	s := n.log()
	if len(s) > 6000 {
		s = "…" + s[len(s)-6000:]
	}
	return s
}

// mstatus is `syncd status --json` as the mirror tests read it.
type mstatus struct {
	Node    string `json:"node"`
	Folders []struct {
		ID      string `json:"id"`
		State   string `json:"state"`
		Files   int64  `json:"files"`
		Bytes   int64  `json:"bytes"`
		Pending int64  `json:"pending"`
	} `json:"folders"`
	Peers []mpeerStatus `json:"peers"`
}

type mpeerStatus struct {
	Name      string     `json:"name"`
	ID        string     `json:"id"`
	Connected bool       `json:"connected"`
	LastSeen  *time.Time `json:"last_seen"`
	LagFiles  int64      `json:"lag_files"`
	LagBytes  int64      `json:"lag_bytes"`
	Behind    uint64     `json:"behind"`
	SendFiles int64      `json:"send_files"`
	Error     string     `json:"error"`
}

// status runs syncd status --json for n.
func (n *mnode) status() mstatus {
	n.t.Helper()
	var st mstatus
	out := ok(n.t, nil, "syncd", "status", "--config", n.cfg, "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		n.t.Fatalf("%s: status --json: %v: %s", n.name, err, out)
	}
	return st
}

// httpStatus reads n's /status, as syncd status --json shows it, without
// starting a process for it: for the tests that poll it.
func (n *mnode) httpStatus() (mstatus, error) {
	var st mstatus
	return st, getStatus(n.http, &st)
}

// getStatus decodes the /status of the daemon at addr into st.
func getStatus(addr string, st any) error {
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /status: %s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(st)
}

// quiet returns "" when the running nodes of ns have nothing left to do
// between them, by their status: no path waits to be indexed, and every
// running peer in ns is connected, nothing of it is being applied or waits
// for a retry,
// nothing is left to ask for, and it has asked for everything changed
// here. Otherwise it says what is still going on.
func quiet(ns ...*mnode) string {
	in := map[string]bool{} // the nodes that run
	for _, n := range ns {
		in[n.name] = n.cmd != nil
	}
	for _, n := range ns {
		if n.cmd == nil {
			continue // stopped: its folder is all there is of it
		}
		st, err := n.httpStatus()
		if err != nil {
			return fmt.Sprintf("%s: %v", n.name, err)
		}
		for _, f := range st.Folders {
			if f.Pending != 0 {
				return fmt.Sprintf("%s: folder %s: %d paths pending (-1: scanning)", n.name, f.ID, f.Pending)
			}
		}
		for _, p := range st.Peers {
			if in[p.Name] && (!p.Connected || p.LagFiles != 0 || p.Behind != 0 || p.SendFiles != 0) {
				return fmt.Sprintf("%s: peer %s: connected %v, lag %d files, behind %d, %d files it has yet to ask for",
					n.name, p.Name, p.Connected, p.LagFiles, p.Behind, p.SendFiles)
			}
		}
	}
	return ""
}

// waitIndexed waits until n's status counts the files and bytes its
// folder holds (its marker aside) and nothing is pending. An edit that
// keeps a file's size is not seen: make edits change sizes.
func (n *mnode) waitIndexed() {
	n.t.Helper()
	var files, bytes int64
	filepath.WalkDir(n.folder, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() != daemon.MarkerName {
			if fi, err := d.Info(); err == nil {
				files, bytes = files+1, bytes+fi.Size()
			}
		}
		return nil
	})
	var st mstatus
	var err error
	if !waitFor(converge, func() bool {
		st, err = n.httpStatus()
		return err == nil && len(st.Folders) == 1 && st.Folders[0].Files == files && st.Folders[0].Bytes == bytes && st.Folders[0].Pending == 0
	}) {
		n.t.Fatalf("%s: not indexed with %d files, %d bytes within %v: %+v (%v); log:\n%s", n.name, files, bytes, converge, st, err, n.logTail())
	}
}

// peer returns n's status of the peer named name.
func (st mstatus) peer(name string) (mpeerStatus, bool) {
	for _, p := range st.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return mpeerStatus{}, false
}

// path returns the absolute path of rel in n's folder.
func (n *mnode) path(rel string) string { return filepath.Join(n.folder, filepath.FromSlash(rel)) }

// write writes content to rel in n's folder, making its directories.
func (n *mnode) write(rel string, content []byte) {
	n.t.Helper()
	p := n.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// waitSame waits until the nodes are quiet (see quiet) and every node's
// folder holds the same tree, on two looks in a row, and returns that
// tree; it fails the test with the differences after the deadline.
func waitSame(t *testing.T, ns ...*mnode) map[string]mentry {
	t.Helper()
	return waitSameOr(t, nil, ns...)
}

// waitSameOr is waitSame that calls explain, if not nil, with the paths
// that differ before it fails the test.
func waitSameOr(t *testing.T, explain func(paths []string), ns ...*mnode) map[string]mentry {
	t.Helper()
	deadline := time.Now().Add(converge)
	var last map[string]mentry
	var diff, busy string
	compare := func() []map[string]mentry {
		diff = ""
		trees := make([]map[string]mentry, len(ns))
		for i, n := range ns {
			tr, err := mscan(n.folder)
			if err != nil {
				diff = err.Error()
				return nil
			}
			trees[i] = tr
		}
		for i := 1; diff == "" && i < len(ns); i++ {
			diff = treeDiff(trees[0], trees[i], ns[0].name, ns[i].name, 40)
		}
		return trees
	}
	for ; ; time.Sleep(250 * time.Millisecond) { // a poll: each look hashes every file
		if time.Now().After(deadline) {
			compare()
			break
		}
		if busy = quiet(ns...); busy != "" {
			last = nil
			continue
		}
		trees := compare()
		if diff == "" {
			if last != nil && treeDiff(last, trees[0], "before", "now", 1) == "" {
				return trees[0]
			}
			last = trees[0]
		} else {
			last = nil
		}
	}
	for _, n := range ns {
		t.Logf("log of %s:\n%s", n.name, n.logTail())
	}
	// What each node logged of the first paths that differ.
	var paths []string
	for i, line := range strings.Split(diff, "\n") {
		rel, _, _ := strings.Cut(line, ": ")
		if i == 5 || rel == "" {
			break
		}
		paths = append(paths, rel)
		for _, n := range ns {
			t.Logf("%s logged of %s:\n%s", n.name, rel, strings.Join(n.logLines("path="+rel), "\n"))
		}
	}
	if explain != nil {
		explain(paths)
	}
	for _, n := range ns {
		n.stop(false)
		t.Logf("index entries of %s (%s):\n%s", n.name, n.id[:7], n.indexEntries(paths...))
	}
	if busy != "" {
		t.Fatalf("nodes did not settle within %v: %s\ntree differences:\n%s", converge, busy, diff)
	}
	t.Fatalf("nodes did not converge within %v:\n%s", converge, diff)
	return nil
}

// waitFor polls cond every 100 ms until it holds or the deadline passes;
// it reports whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logLines returns the lines of n's log that contain every one of subs.
func (n *mnode) logLines(subs ...string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(n.log()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		all := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				all = false
				break
			}
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

// indexEntries describes the index entries of paths in n's state
// database, for failure messages; the daemon must be stopped.
func (n *mnode) indexEntries(paths ...string) string {
	db, err := state.Open(filepath.Join(n.state, "state.db"))
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	f := db.Folder("data")
	var b strings.Builder
	for _, p := range paths {
		e, ok, err := f.Get(p)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "  %s: %v\n", p, err)
		case !ok:
			fmt.Fprintf(&b, "  %s: no entry\n", p)
		default:
			fmt.Fprintf(&b, "  %s: deleted=%v type=%s target=%q size=%d mtime=%s version=%d vector=%v\n", p, e.Deleted, e.Type,
				e.Target, e.Size, time.Unix(0, e.ModTime).UTC().Format("15:04:05.000000000"), e.Version, e.Vector)
		}
	}
	return b.String()
}
