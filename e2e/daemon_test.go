package e2e

import (
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
)

// node is a syncd run process with its configuration.
type node struct {
	t      *testing.T
	cfg    string
	http   string
	r      *repo
	folder string
	cmd    *exec.Cmd
	log    *os.File
}

// newNode writes a configuration for one folder and a local repository.
func newNode(t *testing.T) *node {
	t.Helper()
	r := newRepo(t)
	dir := t.TempDir()
	n := &node{t: t, r: r, folder: filepath.Join(dir, "www"), http: miniotest.FreeAddr(t), cfg: filepath.Join(dir, "syncd.yaml")}
	os.MkdirAll(n.folder, 0o755)
	yaml := fmt.Sprintf(`node:
  name: web1
  state_dir: %s
  listen: %s
  http: %s
folders:
  - id: www
    path: %s
    ignore: ["*.tmp"]
repository:
  url: %s
  index_key: %s
  data_recipients: []
`, filepath.Join(dir, "state"), miniotest.FreeAddr(t), n.http, n.folder, r.url, r.indexKey)
	if err := os.WriteFile(n.cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *node) start() { n.startAs(-1) }

// startAs starts the daemon, as user uid when uid >= 0.
func (n *node) startAs(uid int) {
	n.t.Helper()
	log, err := os.CreateTemp(n.t.TempDir(), "syncd-run-*.log")
	if err != nil {
		n.t.Fatal(err)
	}
	n.log = log
	n.cmd = exec.Command(filepath.Join(binDir, "syncd"), "run", "--config", n.cfg)
	n.cmd.Stdout, n.cmd.Stderr = log, log
	if uid >= 0 {
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { n.cmd.Process.Kill(); n.cmd.Wait() })
	n.waitReady()
}

// waitReady waits until /readyz answers 200: the folder is indexed.
func (n *node) waitReady() {
	n.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if readyAndIdle(n.http) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := os.ReadFile(n.log.Name())
	n.t.Fatalf("syncd run not ready within 30 s; log:\n%s", out)
}

// settle waits for the watcher's debounce and the indexer, then readiness.
// Nothing tells when the watcher has seen a change: prefer waitIndexed or
// waitStatus, which wait for what the change does to the status.
func (n *node) settle() {
	n.t.Helper()
	time.Sleep(400 * time.Millisecond)
	n.waitReady()
}

// httpStatus reads the daemon's /status (syncd status --json) without
// starting a process, for the tests that poll it; folders by ID.
func (n *node) httpStatus() (map[string]map[string]any, error) {
	resp, err := http.Get("http://" + n.http + "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct{ Folders []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	m := map[string]map[string]any{}
	for _, f := range st.Folders {
		m[f["id"].(string)] = f
	}
	return m, nil
}

// waitStatus polls the daemon's status until cond holds of it, and fails
// the test naming what after 30 s.
func (n *node) waitStatus(what string, cond func(st map[string]map[string]any) bool) {
	n.t.Helper()
	var st map[string]map[string]any
	var err error
	if !waitFor(30*time.Second, func() bool { st, err = n.httpStatus(); return err == nil && cond(st) }) {
		out, _ := os.ReadFile(n.log.Name())
		n.t.Fatalf("%s: not within 30 s; status %v (%v); log:\n%s", what, st, err, out)
	}
}

// waitIndexed waits until the status of folder www counts the files and
// bytes its directory holds (the ignored *.tmp and the folder marker
// aside) and nothing is pending. An edit that keeps a file's size is not
// seen: make edits change sizes.
func (n *node) waitIndexed() {
	n.t.Helper()
	var files, bytes float64
	filepath.WalkDir(n.folder, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || strings.HasSuffix(p, ".tmp") || d.Name() == daemon.MarkerName {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			files, bytes = files+1, bytes+float64(fi.Size())
		}
		return nil
	})
	n.waitStatus(fmt.Sprintf("www indexed with %v files, %v bytes", files, bytes), func(st map[string]map[string]any) bool {
		www := st["www"]
		return www["files"] == files && www["bytes"] == bytes && www["pending"] == float64(0)
	})
}

func (n *node) status() map[string]any {
	n.t.Helper()
	var st struct{ Folders []map[string]any }
	out := ok(n.t, nil, "syncd", "status", "--config", n.cfg, "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Folders) != 1 {
		n.t.Fatalf("status --json: %v: %s", err, out)
	}
	return st.Folders[0]
}

func (n *node) write(rel, content string) {
	n.t.Helper()
	p := filepath.Join(n.folder, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// restoreEquals restores the latest snapshot and compares it with the folder.
func (n *node) restoreEquals() {
	n.t.Helper()
	target := n.t.TempDir()
	ok(n.t, nil, "restore", append([]string{"latest"}, n.r.flags("--identity", n.r.dataKey, "--target", target)...)...)
	sameTree(n.t, n.folder, filepath.Join(target, n.folder))
}

func TestDaemonSnapshotsFromIndex(t *testing.T) {
	n := newNode(t)
	n.write("index.php", "<?php echo 1;")
	n.write("wp-content/uploads/a.jpg", strings.Repeat("jpeg", 100000))
	n.write("cache.tmp", "ignored")
	n.start()
	out := ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	if !strings.Contains(out, "read 2 files") {
		t.Errorf("first snapshot from the index: %s", out)
	}
	st := n.status()
	if st["files"].(float64) != 2 || st["pending"].(float64) != 0 || st["state"] != "ok" {
		t.Errorf("status = %v", st)
	}
	last, _ := st["last_snapshot"].(map[string]any)
	if last == nil || last["result"] != "ok" || last["id"] == "" {
		t.Errorf("status last_snapshot = %v", st["last_snapshot"])
	}
	n.write("index.php", "<?php echo 22;") // a size of its own: waitIndexed sees it
	n.write("new/dir/file.txt", "new")
	os.Remove(filepath.Join(n.folder, "wp-content/uploads/a.jpg"))
	n.waitIndexed()
	out = ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	if !strings.Contains(out, "read 2 files") {
		t.Errorf("snapshot after two writes and a delete: %s", out)
	}
	os.Remove(filepath.Join(n.folder, "cache.tmp")) // ignored: not in any snapshot
	n.restoreEquals()
	out = ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	if !strings.Contains(out, "read 0 files") {
		t.Errorf("snapshot with nothing changed: %s", out)
	}
}

// TestDaemonKilledAndRestarted kills the daemon with SIGKILL while it
// indexes, changes the folder while it is down, and restarts it: the
// index is consistent and the next snapshot equals the folder.
func TestDaemonKilledAndRestarted(t *testing.T) {
	n := newNode(t)
	for i := range 300 {
		n.write(fmt.Sprintf("d%02d/f%03d.txt", i%10, i), strings.Repeat(fmt.Sprint(i), 5000))
	}
	n.start()
	for i := range 200 { // a burst: the daemon is indexing when it dies
		n.write(fmt.Sprintf("burst/g%03d.txt", i), strings.Repeat("x", 20000+i))
	}
	// killed as soon as the status shows it indexing the burst
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := n.httpStatus()
		if err == nil && st["www"]["pending"] != float64(0) {
			break
		}
		if err == nil && st["www"]["files"] == float64(500) || time.Now().After(deadline) {
			t.Logf("the burst was indexed before the kill: %v", st)
			break
		}
		time.Sleep(2 * time.Millisecond) // a poll
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	n.cmd.Wait()
	// changes while it is down
	n.write("while-down.txt", "changed while stopped")
	os.RemoveAll(filepath.Join(n.folder, "d03"))
	n.start()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.restoreEquals()
	// a graceful stop, a restart, and nothing to read
	n.cmd.Process.Signal(syscall.SIGTERM)
	if err := n.cmd.Wait(); err != nil {
		t.Errorf("syncd run after SIGTERM: %v", err)
	}
	n.start()
	out := ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	if !strings.Contains(out, "read 0 files") {
		t.Errorf("snapshot after a clean restart: %s", out)
	}
}

func TestDaemonBadConfigAndFolders(t *testing.T) {
	n := newNode(t)
	data, _ := os.ReadFile(n.cfg)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(string(data), "  http:", "  htp:", 1)), 0o644)
	res := run(t, nil, "syncd", "run", "--config", bad)
	oneLine(t, "an unknown key", res, 1, bad+":5", `"htp"`)

	res = run(t, nil, "syncd", "run", "--config", n.cfg, "--log-level", "loud")
	oneLine(t, "an unknown log level", res, 2, "--log-level", `"loud"`)

	res = run(t, nil, "syncd", "status", "--config", n.cfg)
	oneLine(t, "status without a daemon", res, 1, "cannot reach the daemon", n.http)
}
