package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stop stops the daemon gracefully.
func (n *node) stop() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	if err := n.cmd.Wait(); err != nil {
		n.t.Errorf("syncd run after SIGTERM: %v", err)
	}
}

// TestDaemonAwkwardEntries indexes names with newlines and invalid UTF-8,
// symlink loops, and a path that turns from a file into a directory and
// back, and snapshots them equal to the folder.
func TestDaemonAwkwardEntries(t *testing.T) {
	n := newNode(t)
	n.write("line\nbreak.txt", "newline")
	n.write("bad-\xff-name", "invalid utf-8")
	os.Symlink("loop-b", filepath.Join(n.folder, "loop-a"))
	os.Symlink("loop-a", filepath.Join(n.folder, "loop-b"))
	n.write("flip", "a file")
	n.start()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.restoreEquals()

	os.Remove(filepath.Join(n.folder, "flip"))
	n.write("flip/inside.txt", "now a directory")
	n.waitIndexed()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.restoreEquals()

	os.RemoveAll(filepath.Join(n.folder, "flip"))
	n.write("flip", "a file again")
	n.waitIndexed()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.restoreEquals()
}

// TestDaemonStateDeletedOrDamaged: a state database deleted while syncd is
// stopped costs a full rescan; a damaged one is a clear error naming the
// file and saying how to recover, and nothing else is touched.
func TestDaemonStateDeletedOrDamaged(t *testing.T) {
	n := newNode(t)
	n.write("a.txt", "a")
	n.write("dir/b.txt", "b")
	n.start()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.stop()
	db := filepath.Join(filepath.Dir(n.cfg), "state", "state.db")
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	n.write("c.txt", "changed while stopped")
	n.start()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.restoreEquals()
	n.stop()

	if err := os.WriteFile(db, []byte(strings.Repeat("garbage!", 4096)), 0o600); err != nil {
		t.Fatal(err)
	}
	res := run(t, nil, "syncd", "run", "--config", n.cfg)
	oneLine(t, "a damaged state database", res, 1, db, "move")
}

// TestDaemonReloadAndFailedFolder: SIGHUP applies a changed configuration
// (an invalid one is ignored and the daemon stays up); a folder that
// disappears at run time is marked failed while the other goes on.
func TestDaemonReloadAndFailedFolder(t *testing.T) {
	n := newNode(t)
	other := filepath.Join(t.TempDir(), "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "o.txt"), []byte("other"), 0o644)
	cfg, _ := os.ReadFile(n.cfg)
	two := strings.Replace(string(cfg), "repository:", "  - id: other\n    path: "+other+"\nrepository:", 1)
	os.WriteFile(n.cfg, []byte(two), 0o644)
	n.write("a.txt", "a")
	n.start()

	// an invalid configuration: logged, ignored, the daemon stays up
	logged := func(s string) int { b, _ := os.ReadFile(n.log.Name()); return strings.Count(string(b), s) }
	os.WriteFile(n.cfg, []byte(two+"bogus: 1\n"), 0o644)
	n.cmd.Process.Signal(syscall.SIGHUP)
	if !waitFor(30*time.Second, func() bool { return logged("reload: configuration not applied") > 0 }) {
		t.Fatalf("the invalid configuration was not reported in the log")
	}
	// a valid one: the daemon starts again with it and scans the folders
	running := logged(`msg="syncd running"`)
	os.WriteFile(n.cfg, []byte(strings.Replace(two, `ignore: ["*.tmp"]`, `ignore: ["*.tmp", "*.log"]`, 1)), 0o644)
	n.write("debug.log", "now ignored")
	n.cmd.Process.Signal(syscall.SIGHUP)
	if !waitFor(30*time.Second, func() bool { return logged(`msg="syncd running"`) > running }) {
		t.Fatalf("the daemon did not start again with the reloaded configuration")
	}
	n.waitReady()
	st := statusAll(t, n)
	if st["www"]["files"].(float64) != 1 {
		t.Errorf("after reloading with *.log ignored, www has %v files, want 1 (a.txt)", st["www"]["files"])
	}

	os.RemoveAll(other)
	n.write("b.txt", "b")
	n.waitStatus("folder other failed, b.txt indexed", func(st map[string]map[string]any) bool {
		return st["other"]["state"] == "failed" && st["www"]["files"] == float64(2)
	})
	st = statusAll(t, n)
	// failed, and its index kept: a missing folder is no mass deletion
	if st["other"]["state"] != "failed" || st["other"]["files"].(float64) != 1 || st["www"]["state"] != "ok" || st["www"]["files"].(float64) != 2 {
		t.Errorf("after removing folder other: %v", st)
	}
	logData, _ := os.ReadFile(n.log.Name())
	if !strings.Contains(string(logData), "reload: configuration not applied") {
		t.Errorf("the invalid configuration was not reported in the log")
	}
}

func statusAll(t *testing.T, n *node) map[string]map[string]any {
	t.Helper()
	var st struct{ Folders []map[string]any }
	out := ok(t, nil, "syncd", "status", "--config", n.cfg, "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v: %s", err, out)
	}
	m := map[string]map[string]any{}
	for _, f := range st.Folders {
		m[f["id"].(string)] = f
	}
	return m
}

// TestDaemonSchedule: snapshots are taken on repository.schedule. With
// skip_unchanged (the default), a scheduled snapshot that finds nothing
// changed writes none: the log and the status say it was skipped, and
// name the snapshot that still holds the content. A change is snapshotted
// at the next tick; an on-demand snapshot is written even when unchanged.
func TestDaemonSchedule(t *testing.T) {
	n := newNode(t)
	cfg, _ := os.ReadFile(n.cfg)
	os.WriteFile(n.cfg, []byte(strings.Replace(string(cfg), "  data_recipients: []", "  data_recipients: []\n  schedule: \"@every 1s\"", 1)), 0o644)
	n.write("a.txt", "a")
	n.start()
	logText := func() string { b, _ := os.ReadFile(n.log.Name()); return string(b) }
	skipped := func() int { return strings.Count(logText(), `msg="snapshot skipped: nothing changed`) }
	if !waitFor(20*time.Second, func() bool { return len(snapshotsJSON(t, n.r)) >= 1 && skipped() >= 2 }) {
		t.Fatalf("within 20 s of @every 1s: %d snapshots, %d skipped, want 1 and 2 or more; log:\n%s",
			len(snapshotsJSON(t, n.r)), skipped(), logText())
	}
	snaps := snapshotsJSON(t, n.r)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots of an unchanged folder, want 1 (the later ones skipped); log:\n%s", len(snaps), logText())
	}
	last, _ := statusAll(t, n)["www"]["last_snapshot"].(map[string]any)
	if last == nil || last["result"] != "ok" || last["skipped"] != true || last["id"] != snaps[0]["id"] {
		t.Errorf("status last_snapshot = %v, want ok, skipped, the ID of %s", last, snaps[0]["id"])
	}
	if out := ok(t, nil, "syncd", "status", "--config", n.cfg); !strings.Contains(out, "skipped (unchanged since)") {
		t.Errorf("syncd status does not say the snapshot was skipped:\n%s", out)
	}

	n.write("b.txt", "b")
	if !waitFor(20*time.Second, func() bool { return len(snapshotsJSON(t, n.r)) >= 2 }) {
		t.Fatalf("no scheduled snapshot within 20 s of a change; log:\n%s", logText())
	}
	n.restoreEquals()
	before := len(snapshotsJSON(t, n.r))
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	if got := len(snapshotsJSON(t, n.r)); got < before+1 {
		t.Errorf("an on-demand snapshot of an unchanged folder: %d snapshots, want %d or more (it is always written)", got, before+1)
	}
}

// TestDaemonManyFilesInOneDirectory indexes and snapshots 100,000 files
// in one directory.
func TestDaemonManyFilesInOneDirectory(t *testing.T) {
	n := newNode(t)
	dir := filepath.Join(n.folder, "uploads")
	os.MkdirAll(dir, 0o755)
	for i := range 100_000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n.start()
	out := ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	if !strings.Contains(out, "read 100000 files") {
		t.Errorf("snapshot of 100,000 files: %s", out)
	}
	if files := statusAll(t, n)["www"]["files"].(float64); files != 100_000 {
		t.Errorf("status counts %v files, want 100000", files)
	}
	ls := ok(t, nil, "restore", append([]string{"ls", "latest", filepath.Join(dir, "f099999")}, n.r.flags()...)...)
	if !strings.Contains(ls, "f099999") {
		t.Errorf("ls of the last file: %q", ls)
	}
}

// TestDaemonUnreadableFile runs the daemon as an unprivileged user (root
// reads everything) next to a file it may not read: the file is logged,
// listed in status and left out, and the snapshot completes as partial
// (exit code 3).
func TestDaemonUnreadableFile(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to run the daemon as another user; CI runs as root")
		}
		t.Skip("needs root to run the daemon as another user (not CI)")
	}
	n := newNode(t)
	n.write("readable.txt", "r")
	n.write("secret.txt", "s")
	os.Chmod(filepath.Join(n.folder, "secret.txt"), 0o600) // root's, unreadable for nobody
	// the daemon's own files become nobody's; the folder stays root's
	for _, dir := range []string{filepath.Dir(n.cfg), n.r.dir} {
		for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			os.Chmod(d, 0o755) // traversable
		}
	}
	for _, p := range []string{filepath.Join(filepath.Dir(n.cfg), "state"), n.r.url, n.r.indexKey} {
		os.MkdirAll(filepath.Join(filepath.Dir(n.cfg), "state"), 0o700)
		filepath.Walk(p, func(q string, _ os.FileInfo, _ error) error { return os.Lchown(q, 65534, 65534) })
	}
	n.startAs(65534)
	res := run(t, nil, "syncd", "snapshot", "--config", n.cfg)
	if res.code != 3 || !strings.Contains(res.stderr, "partial") {
		t.Errorf("snapshot next to an unreadable file: want exit 3 and partial: %s", res)
	}
	st := statusAll(t, n)["www"]
	// the daemon may not write the folder: it runs, without a marker
	if msg, _ := st["error"].(string); st["state"] != "degraded" || !strings.Contains(msg, "cannot create the folder marker") {
		t.Errorf("status of a folder the daemon may not write: %v: %v", st["state"], st["error"])
	}
	failed, _ := st["failed_paths"].([]any)
	if len(failed) != 1 || !strings.Contains(failed[0].(string), "secret.txt") {
		t.Errorf("status failed_paths = %v, want secret.txt", st["failed_paths"])
	}
	target := t.TempDir()
	ok(t, nil, "restore", append([]string{"latest"}, n.r.flags("--identity", n.r.dataKey, "--target", target)...)...)
	if _, err := os.Stat(filepath.Join(target, n.folder, "readable.txt")); err != nil {
		t.Errorf("the readable file is not in the snapshot: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, n.folder, "secret.txt")); err == nil {
		t.Errorf("the unreadable file is in the snapshot")
	}
}

// TestDaemonKilledDuringSnapshot kills the daemon while a snapshot
// uploads: no snapshot object is left half-made, the repository verifies,
// and after a restart the next snapshot is complete.
func TestDaemonKilledDuringSnapshot(t *testing.T) {
	n := newNode(t)
	for i := range 8 { // 80 MiB of incompressible data: several packs
		writeRandom(t, filepath.Join(n.folder, fmt.Sprintf("big%d.bin", i)), 10<<20, int64(i+100))
	}
	n.start()
	snap := exec.Command(filepath.Join(binDir, "syncd"), "snapshot", "--config", n.cfg)
	if err := snap.Start(); err != nil {
		t.Fatal(err)
	}
	// kill as soon as the first pack is in the repository
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ents, _ := os.ReadDir(filepath.Join(n.r.url, "data")); len(ents) > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	n.cmd.Wait()
	if err := snap.Wait(); err == nil {
		t.Fatalf("the snapshot succeeded although the daemon was killed during it")
	}
	if got := len(snapshotsJSON(t, n.r)); got != 0 {
		t.Fatalf("%d snapshot objects after a killed snapshot, want 0", got)
	}
	ok(t, nil, "restore", append([]string{"verify"}, n.r.flags()...)...)
	n.start()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.restoreEquals()
	ok(t, nil, "restore", append([]string{"verify", "--read-data"}, n.r.flags("--identity", n.r.dataKey)...)...)
}
