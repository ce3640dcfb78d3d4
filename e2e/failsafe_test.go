package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncd/syncd/daemon"
	"github.com/syncd/syncd/internal/miniotest"
)

// runDaemon writes a configuration in dir (node web1 on free loopback
// ports, then rest: folders, repository, alerts) and starts syncd run
// with env added to its environment, its log in dir/syncd.log; it returns
// the configuration's path. The daemon is killed at the test's end.
func runDaemon(t *testing.T, dir string, env []string, rest string) string {
	t.Helper()
	cfg := filepath.Join(dir, "syncd.yaml")
	yaml := fmt.Sprintf("node:\n  name: web1\n  state_dir: %s\n  listen: %s\n  http: %s\n%s",
		filepath.Join(dir, "state"), miniotest.FreeAddr(t), miniotest.FreeAddr(t), rest)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "syncd"), "run", "--config", cfg)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(dir, "syncd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cfg
}

// folderStatus is a folder in `syncd status --json`, with its reason.
type folderStatus struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Error string `json:"error"`
	Files int64  `json:"files"`
}

// folderStatuses returns the folders of the daemon of config cfg by ID, or
// nil while the daemon does not answer.
func folderStatuses(t *testing.T, cfg string) map[string]folderStatus {
	t.Helper()
	res := run(t, nil, "syncd", "status", "--config", cfg, "--json")
	if res.code != 0 {
		return nil
	}
	var st struct{ Folders []folderStatus }
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("status --json: %v: %s", err, res.stdout)
	}
	m := map[string]folderStatus{}
	for _, f := range st.Folders {
		m[f.ID] = f
	}
	return m
}

// waitFolder waits until folder id of the daemon of cfg is in state with
// a reason holding every one of subs, and returns it.
func waitFolder(t *testing.T, cfg, id, state string, subs ...string) folderStatus {
	t.Helper()
	var last folderStatus
	match := func() bool {
		f, ok := folderStatuses(t, cfg)[id]
		last = f
		if !ok || f.State != state {
			return false
		}
		for _, s := range subs {
			if !strings.Contains(f.Error, s) {
				return false
			}
		}
		return true
	}
	if !waitFor(converge, match) {
		t.Fatalf("folder %s: want state %s with %q, last status %+v", id, state, subs, last)
	}
	return last
}

func umountLazy(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
		t.Fatalf("umount -l %s: %v: %s", dir, err, out)
	}
}

func countFiles(t *testing.T, n *mnode) int {
	t.Helper()
	tree, err := mscan(n.folder)
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, e := range tree {
		if e.Type == "file" {
			files++
		}
	}
	return files
}

// The content disk of a node goes away, under the running daemon or
// while it is down: the folder stops (failed, with the reason), sends no
// delete, and resumes once the disk is back. The peer keeps every file.
func TestUnmountedFolderSendsNothing(t *testing.T) {
	requireRoot(t, "an unmounted folder")
	t.Parallel()
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]

	// A's content lives on a tmpfs of its own, bind-mounted at its folder
	// path; beneath the mount point, a stale marker of a folder that was
	// set up before the disk was mounted.
	disk := filepath.Join(t.TempDir(), "disk")
	os.Mkdir(disk, 0o755)
	mount(t, "-t", "tmpfs", "-o", "size=64m", "tmpfs", disk)
	t.Cleanup(func() { exec.Command("umount", "-l", disk).Run() })
	os.WriteFile(filepath.Join(a.folder, daemon.MarkerName), nil, 0o644)
	mount(t, "--bind", disk, a.folder)
	t.Cleanup(func() { exec.Command("umount", "-l", a.folder).Run() })
	for i := range 100 {
		a.write(fmt.Sprintf("site/f%03d.html", i), []byte(strings.Repeat("page ", i+1)))
	}
	a.start()
	b.start()
	waitSame(t, a, b)
	if _, err := os.Stat(filepath.Join(disk, daemon.MarkerName)); err != nil {
		t.Fatalf("no folder marker on A's disk after its first scan: %v", err)
	}

	// 1. Unmounted under the running daemon: the stale marker below is
	// there, but the folder is on another device now.
	umountLazy(t, a.folder)
	f := waitFolder(t, a.cfg, "data", "failed", "device")
	if f.Files != 100 {
		t.Errorf("A's status counts %d files while its disk is gone, want its index kept (100)", f.Files)
	}
	if n := countFiles(t, b); n != 100 {
		t.Fatalf("B has %d files after A's disk went away, want 100", n)
	}
	mount(t, "--bind", disk, a.folder)
	waitFolder(t, a.cfg, "data", "ok")
	a.write("after-remount.txt", []byte("back"))
	waitSame(t, a, b)

	// 2. Down, unmounted, started again: no marker at all now.
	a.stop(false)
	umountLazy(t, a.folder)
	os.Remove(filepath.Join(a.folder, daemon.MarkerName))
	a.launch()
	f = waitFolder(t, a.cfg, "data", "failed", "marker", daemon.MarkerName, "mounted")
	if f.Files != 101 {
		t.Errorf("A's status counts %d files with no disk, want its index kept (101)", f.Files)
	}
	if n := countFiles(t, b); n != 101 {
		t.Fatalf("B has %d files after A restarted without its disk, want 101", n)
	}
	if names, _ := os.ReadDir(a.folder); len(names) != 0 {
		t.Errorf("A wrote into the empty mount point: %v", names)
	}
	mount(t, "--bind", disk, a.folder)
	waitFolder(t, a.cfg, "data", "ok")
	b.write("from-b.txt", []byte("b"))
	waitSame(t, a, b)
	if n := countFiles(t, b); n != 102 {
		t.Fatalf("B has %d files at the end, want 102", n)
	}
}

// A batch that deletes more than max_delete of the folder's files is held
// back until confirm-deletes; the peer keeps its copies meanwhile.
func TestMaxDeleteNeedsConfirmation(t *testing.T) {
	t.Parallel()
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]
	for i := range 40 {
		name := fmt.Sprintf("f%02d.txt", i)
		if i < 30 {
			name = "old/" + name
		}
		a.write(name, []byte(fmt.Sprint("file ", i)))
	}
	a.start()
	b.start()
	waitSame(t, a, b)

	res := run(t, nil, "syncd", "confirm-deletes", "--config", a.cfg, "data")
	oneLine(t, "confirm-deletes with nothing held", res, 1, "confirm-deletes data", "holds no deletes back")
	res = run(t, nil, "syncd", "confirm-deletes", "--config", a.cfg, "nosuch")
	oneLine(t, "confirm-deletes of an unknown folder", res, 1, `no folder "nosuch"`)

	// moved out of the folder: one event, one batch
	if err := os.Rename(a.path("old"), filepath.Join(t.TempDir(), "old")); err != nil {
		t.Fatal(err)
	}
	f := waitFolder(t, a.cfg, "data", "failed", "deletes 30 of its 40 files", "syncd confirm-deletes data")
	if f.Files != 40 {
		t.Errorf("A's index has %d files while the deletes are held, want 40", f.Files)
	}
	if n := countFiles(t, b); n != 40 {
		t.Fatalf("B has %d files while A's deletes are held, want 40", n)
	}
	ok(t, nil, "syncd", "confirm-deletes", "--config", a.cfg, "data")
	waitFolder(t, a.cfg, "data", "ok")
	waitSame(t, a, b)
	if n := countFiles(t, b); n != 10 {
		t.Fatalf("B has %d files after the confirmation, want 10", n)
	}
}

// A folder missing at start fails alone: the daemon runs the others, and
// takes the folder up once it appears. A folder path that is a symlink
// to a directory works like the directory.
func TestMissingAndSymlinkedFolders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	here, later, real := filepath.Join(dir, "here"), filepath.Join(dir, "later"), filepath.Join(dir, "real")
	link := filepath.Join(dir, "link")
	os.Mkdir(here, 0o755)
	os.Mkdir(real, 0o755)
	os.Symlink(real, link)
	os.WriteFile(filepath.Join(here, "h.txt"), []byte("h"), 0o644)
	os.WriteFile(filepath.Join(real, "r.txt"), []byte("r"), 0o644)
	cfg := runDaemon(t, dir, nil, fmt.Sprintf("folders:\n  - {id: here, path: %s}\n  - {id: later, path: %s}\n  - {id: linked, path: %s}\n",
		here, later, link))

	waitFolder(t, cfg, "later", "failed", later, "no such file or directory")
	if f := waitFolder(t, cfg, "here", "ok"); f.Files != 1 {
		t.Errorf("folder here: %d files, want 1", f.Files)
	}
	if f := waitFolder(t, cfg, "linked", "ok"); f.Files != 1 {
		t.Errorf("folder linked (a symlink): %d files, want 1", f.Files)
	}
	os.Mkdir(later, 0o755)
	os.WriteFile(filepath.Join(later, "l.txt"), []byte("l"), 0o644)
	if f := waitFolder(t, cfg, "later", "ok"); f.Files != 1 {
		t.Errorf("folder later once made: %d files, want 1", f.Files)
	}
	if _, err := os.Stat(filepath.Join(later, daemon.MarkerName)); err != nil {
		t.Errorf("no marker in the folder made after the start: %v", err)
	}
}

// A snapshot while a folder is stopped by its guard saves the folder's
// last indexed state and says so: partial, with the folder's reason.
func TestSnapshotOfStoppedFolder(t *testing.T) {
	n := newNode(t)
	n.write("a.txt", "a")
	n.start()
	if err := os.Remove(filepath.Join(n.folder, daemon.MarkerName)); err != nil {
		t.Fatalf("no marker after the first scan: %v", err)
	}
	waitFolder(t, n.cfg, "www", "failed", "marker")
	res := run(t, nil, "syncd", "snapshot", "--config", n.cfg)
	if res.code == 0 && !strings.Contains(res.stdout+res.stderr, "partial") {
		t.Errorf("snapshot of a stopped folder: %s", res)
	}
	var last struct {
		Folders []struct {
			LastSnapshot struct{ Result, Error string } `json:"last_snapshot"`
		}
	}
	json.Unmarshal([]byte(ok(t, nil, "syncd", "status", "--config", n.cfg, "--json")), &last)
	if got := last.Folders[0].LastSnapshot; got.Result != "partial" || !strings.Contains(got.Error, "folder www is failed") || !strings.Contains(got.Error, "marker") {
		t.Errorf("last snapshot %+v, want partial naming the stopped folder", got)
	}
	n.restoreEquals() // a.txt, as indexed
}
