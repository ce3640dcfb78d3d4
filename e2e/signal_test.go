package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopWithin is how soon syncd run must exit after SIGTERM, whatever it
// is doing (issue 11).
const stopWithin = 10 * time.Second

// startRun starts syncd run on cfg without waiting for it to be ready; its
// output goes to the returned log file.
func startRun(t *testing.T, cfg string) (*exec.Cmd, string) {
	t.Helper()
	logf := filepath.Join(t.TempDir(), "syncd-run.log")
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(filepath.Join(binDir, "syncd"), "run", "--config", cfg)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, logf
}

// terminate sends SIGTERM to cmd and fails unless it exits with code 0
// within stopWithin; it returns how long the exit took.
func terminate(t *testing.T, cmd *exec.Cmd, logf, what string) time.Duration {
	t.Helper()
	done := make(chan error, 1)
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		took := time.Since(t0)
		t.Logf("%s: exited %.2fs after SIGTERM (%v)", what, took.Seconds(), err)
		if err != nil {
			log, _ := os.ReadFile(logf)
			t.Errorf("%s: syncd run after SIGTERM: %v, want exit 0; log:\n%s", what, err, log)
		}
		if took > stopWithin {
			t.Errorf("%s: exit took %v, want at most %v", what, took, stopWithin)
		}
		return took
	case <-time.After(stopWithin + 5*time.Second):
		cmd.Process.Kill()
		<-done
		log, _ := os.ReadFile(logf)
		t.Fatalf("%s: syncd run still running %v after SIGTERM; log:\n%s", what, stopWithin+5*time.Second, log)
		return 0
	}
}

// folderState returns the state of the first folder in the daemon's
// /status, or "" if it does not answer.
func folderState(httpAddr string) string {
	resp, err := http.Get("http://" + httpAddr + "/status")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st struct{ Folders []struct{ State string } }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Folders) == 0 {
		return ""
	}
	return st.Folders[0].State
}

// TestDaemonStopsDuringInitialScan: SIGTERM while the first scan reads a
// huge file (64 GiB, sparse: a minute of hashing) and a few thousand small
// ones ends syncd run within 10 s, with exit code 0.
func TestDaemonStopsDuringInitialScan(t *testing.T) {
	n := newNode(t)
	huge, err := os.Create(filepath.Join(n.folder, "a-huge.bin")) // first in the scan's order
	if err != nil {
		t.Fatal(err)
	}
	if err := huge.Truncate(64 << 30); err != nil {
		t.Fatal(err)
	}
	huge.Close()
	for i := range 3000 {
		n.write(fmt.Sprintf("d%02d/f%04d.txt", i%30, i), strings.Repeat("x", i%5000))
	}
	cmd, logf := startRun(t, n.cfg)
	if !waitFor(10*time.Second, func() bool { return folderState(n.http) == "scanning" }) {
		log, _ := os.ReadFile(logf)
		t.Fatalf("the daemon never reported scanning; log:\n%s", log)
	}
	terminate(t, cmd, logf, "initial scan")
}

// TestDaemonStopsDuringSnapshot: SIGTERM while POST /snapshot writes packs
// ends syncd run within 10 s, with exit code 0; the snapshot is abandoned
// (no snapshot object) and the repository verifies.
func TestDaemonStopsDuringSnapshot(t *testing.T) {
	n := newNode(t)
	for i := range 12 { // 240 MiB of incompressible data
		writeRandom(t, filepath.Join(n.folder, fmt.Sprintf("big%02d.bin", i)), 20<<20, int64(i+7))
	}
	cmd, logf := startRun(t, n.cfg)
	if !waitFor(60*time.Second, func() bool { return folderState(n.http) == "ok" }) {
		log, _ := os.ReadFile(logf)
		t.Fatalf("the daemon never finished its first scan; log:\n%s", log)
	}
	snap := exec.Command(filepath.Join(binDir, "syncd"), "snapshot", "--config", n.cfg)
	if err := snap.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool {
		ents, _ := os.ReadDir(filepath.Join(n.r.url, "data"))
		return len(ents) > 0
	}) {
		t.Fatal("no pack written by the snapshot")
	}
	terminate(t, cmd, logf, "snapshot")
	if err := snap.Wait(); err == nil {
		t.Errorf("syncd snapshot succeeded although the daemon stopped during it: not mid-snapshot")
	}
	if got := len(snapshotsJSON(t, n.r)); got != 0 {
		t.Errorf("%d snapshot objects after a snapshot interrupted by SIGTERM, want 0", got)
	}
	ok(t, nil, "restore", append([]string{"verify"}, n.r.flags()...)...)
}

// TestDaemonStopsDuringTransfer: SIGTERM to a node pulling a big file from
// its peer ends its syncd run within 10 s, with exit code 0.
func TestDaemonStopsDuringTransfer(t *testing.T) {
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]
	writeRandom(t, a.path("big.bin"), 512<<20, 11)
	a.start()
	b.start()
	if !waitFor(60*time.Second, func() bool {
		ents, _ := os.ReadDir(b.folder)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".syncd-") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("b never started pulling big.bin; log:\n%s", b.logTail())
	}
	terminate(t, b.cmd, b.logf, "transfer (receiver)")
	b.cmd = nil
	if fi, err := os.Stat(b.path("big.bin")); err == nil && fi.Size() == 512<<20 {
		t.Errorf("b has all of big.bin: the SIGTERM was not mid-transfer")
	}
	terminate(t, a.cmd, a.logf, "transfer (sender)")
	a.cmd = nil
}

// TestDaemonReloadRefusesStateDir: a SIGHUP whose configuration changes
// node.state_dir (the node's TLS identity and index) is refused with an
// ERROR naming the key; the daemon goes on with the old configuration and
// makes nothing in the new directory.
func TestDaemonReloadRefusesStateDir(t *testing.T) {
	n := newNode(t)
	n.write("a.txt", "a")
	n.start()
	old, err := os.ReadFile(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	oldState := filepath.Join(filepath.Dir(n.cfg), "state")
	newState := filepath.Join(t.TempDir(), "moved-state")
	moved := strings.Replace(string(old), "state_dir: "+oldState, "state_dir: "+newState, 1)
	if moved == string(old) {
		t.Fatalf("state_dir %s not found in the configuration:\n%s", oldState, old)
	}
	if err := os.WriteFile(n.cfg, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cmd.Process.Signal(syscall.SIGHUP)
	refused := func() bool {
		log, _ := os.ReadFile(n.log.Name())
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, "level=ERROR") && strings.Contains(line, "reload") &&
				strings.Contains(line, "key=node.state_dir") {
				return true
			}
		}
		return false
	}
	if !waitFor(10*time.Second, refused) {
		log, _ := os.ReadFile(n.log.Name())
		t.Fatalf("no ERROR naming node.state_dir after the SIGHUP; log:\n%s", log)
	}
	if _, err := os.Stat(newState); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the new state_dir %s was made (%v): a new identity", newState, err)
	}
	// still running, on the old configuration
	n.write("b.txt", "b")
	if !waitFor(10*time.Second, func() bool {
		st := n.status()
		return st["state"] == "ok" && st["files"] == float64(2)
	}) {
		t.Errorf("after the refused reload, status %v, want the daemon indexing with 2 files", n.status())
	}
	if _, err := os.Stat(newState); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the new state_dir %s was made (%v): a new identity", newState, err)
	}
	n.stop()
}
