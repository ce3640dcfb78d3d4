package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/miniotest"
)

// opsNode is a syncd run configuration without a repository: one folder
// www with files in it and, when missing is set, a second folder whose
// directory does not exist (it fails at once and stays failed).
type opsNode struct {
	cfg, http, folder string
}

func newOpsNode(t *testing.T, files int, missing bool) opsNode {
	t.Helper()
	dir := t.TempDir()
	n := opsNode{cfg: filepath.Join(dir, "syncd.yaml"), http: miniotest.FreeAddr(t), folder: filepath.Join(dir, "www")}
	for i := range files {
		p := filepath.Join(n.folder, fmt.Sprintf("d%02d/f%04d.txt", i%20, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.Repeat("x", i%3000)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	yaml := fmt.Sprintf("node:\n  name: web1\n  state_dir: %s\n  listen: %s\n  http: %s\nfolders:\n  - id: www\n    path: %s\n",
		filepath.Join(dir, "state"), miniotest.FreeAddr(t), n.http, n.folder)
	if missing {
		yaml += fmt.Sprintf("  - id: gone\n    path: %s\n", filepath.Join(dir, "not-mounted"))
	}
	if err := os.WriteFile(n.cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// startDaemon starts syncd run with env added and extra arguments; its
// output goes to the returned log file.
func startDaemon(t *testing.T, env []string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	logf := filepath.Join(t.TempDir(), "syncd-run.log")
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(filepath.Join(binDir, "syncd"), append([]string{"run"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, logf
}

// opsStatus returns the daemon's folders by ID from /status, or nil if it
// does not answer.
func opsStatus(httpAddr string) map[string]folderStatus {
	resp, err := http.Get("http://" + httpAddr + "/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st struct{ Folders []folderStatus }
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	out := map[string]folderStatus{}
	for _, f := range st.Folders {
		out[f.ID] = f
	}
	return out
}

// notifySocket is a unixgram socket standing in for systemd's: each
// assignment (READY=1, WATCHDOG=1, …) of each datagram arrives on msgs.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// a short path: a socket path is at most 107 bytes
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &notifySocket{path: filepath.Join(dir, "notify"), msgs: make(chan string, 1024)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(s.msgs)
				return
			}
			for _, line := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
				s.msgs <- line
			}
		}
	}()
	return s
}

// wait returns once msg arrives, failing the test after d; it returns the
// messages that came before it.
func (s *notifySocket) wait(t *testing.T, msg string, d time.Duration, logf string) []string {
	t.Helper()
	var before []string
	deadline := time.After(d)
	for {
		select {
		case m := <-s.msgs:
			if m == msg {
				return before
			}
			before = append(before, m)
		case <-deadline:
			var others []string
			pings := 0
			for _, m := range before {
				if m == "WATCHDOG=1" {
					pings++
				} else {
					others = append(others, m)
				}
			}
			log, _ := os.ReadFile(logf)
			t.Fatalf("no %s within %v (got %q and %d WATCHDOG=1); log:\n%s", msg, d, others, pings, log)
		}
	}
}

// TestSystemdNotify: under a stand-in for systemd, syncd run sends
// READY=1 once its folder is indexed (status shows every file) even though
// a second folder is missing, WATCHDOG=1 pings at half of WATCHDOG_USEC,
// and STOPPING=1 on SIGTERM, then exits 0.
func TestSystemdNotify(t *testing.T) {
	const files = 2000
	n := newOpsNode(t, files, true)
	sock := listenNotify(t)
	cmd, logf := startDaemon(t, []string{"NOTIFY_SOCKET=" + sock.path, "WATCHDOG_USEC=200000"}, "--config", n.cfg)

	before := sock.wait(t, "READY=1", 60*time.Second, logf)
	// READY=1 must come after the first scan: /status, asked only now,
	// already shows every file.
	st := opsStatus(n.http)
	if www := st["www"]; www.State != "ok" || www.Files != files {
		t.Errorf("at READY=1, folder www is %+v, want state ok with %d files", www, files)
	}
	if gone := st["gone"]; gone.State != "failed" {
		t.Errorf("at READY=1, folder gone is %+v, want failed", gone)
	}
	t.Logf("before READY=1: %q", before)

	// 200 ms watchdog: a ping every 100 ms; two more within 2 s.
	for range 2 {
		sock.wait(t, "WATCHDOG=1", 2*time.Second, logf)
	}

	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sock.wait(t, "STOPPING=1", stopWithin, logf)
	t.Logf("STOPPING=1 %v after SIGTERM", time.Since(t0))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			log, _ := os.ReadFile(logf)
			t.Errorf("syncd run after SIGTERM: %v, want exit 0; log:\n%s", err, log)
		}
	case <-time.After(stopWithin):
		t.Fatalf("syncd run still running %v after SIGTERM", stopWithin)
	}
}

// TestSystemdNotifyNoWatchdog: without WATCHDOG_USEC no WATCHDOG=1 is sent
// (READY=1 is, and STOPPING=1 follows it directly on SIGTERM).
func TestSystemdNotifyNoWatchdog(t *testing.T) {
	n := newOpsNode(t, 10, false)
	sock := listenNotify(t)
	cmd, logf := startDaemon(t, []string{"NOTIFY_SOCKET=" + sock.path}, "--config", n.cfg)
	sock.wait(t, "READY=1", 60*time.Second, logf)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	before := sock.wait(t, "STOPPING=1", stopWithin, logf)
	for _, m := range before {
		if m == "WATCHDOG=1" {
			t.Errorf("WATCHDOG=1 sent without WATCHDOG_USEC: %q", before)
		}
	}
}
