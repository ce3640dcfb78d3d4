package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/daemon"
	"github.com/syncd/syncd/internal/miniotest"
)

// hookMsg is an alert as a webhook receives it (docs/ALERTS.md).
type hookMsg struct {
	Node, Key, Alert, Severity, Status, Details, Text string
	at                                                time.Time
}

// hookReceiver is a webhook endpoint that records what it is sent.
type hookReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []hookMsg
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m hookMsg
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("webhook: not JSON: %q", body)
		}
		m.at = time.Now()
		h.mu.Lock()
		h.msgs = append(h.msgs, m)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// yaml is the alerts: section that sends to h.
func (h *hookReceiver) yaml() string {
	return fmt.Sprintf("alerts:\n  webhooks: [{url: %s/hook, timeout: 5s}]\n  repeat: 1h\n", h.srv.URL)
}

// count returns how many messages of key with status were received.
func (h *hookReceiver) count(key, status string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m.Key == key && m.Status == status {
			n++
		}
	}
	return n
}

// wait waits up to d for a message of key with status and returns it.
func (h *hookReceiver) wait(t *testing.T, d time.Duration, key, status string) hookMsg {
	t.Helper()
	var got hookMsg
	found := waitFor(d, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, m := range h.msgs {
			if m.Key == key && m.Status == status {
				got = m
				return true
			}
		}
		return false
	})
	if !found {
		h.mu.Lock()
		defer h.mu.Unlock()
		t.Fatalf("no %s %s alert within %v; received: %+v", key, status, d, h.msgs)
	}
	return got
}

// kill -9 of a peer is "peer down" at the webhook within 10 s, its return
// "resolved" within 10 s; a folder's directory removed is "folder
// failed"; each exactly once per episode.
func TestAlertsPeerDownAndFolderFailed(t *testing.T) {
	t.Parallel()
	hook := newHookReceiver(t)
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]
	a.extraYAML = hook.yaml()
	a.writeConfig()
	a.write("x.txt", []byte("x"))
	a.start()
	b.start()
	waitSame(t, a, b)

	b.stop(true)
	killed := time.Now()
	m := hook.wait(t, 10*time.Second, "peer-down/b", "firing")
	t.Logf("peer down delivered %v after kill -9", m.at.Sub(killed).Round(time.Millisecond))
	if m.Alert != "peer down" || m.Severity != "critical" || m.Node != "a" || !strings.Contains(m.Text, "b") {
		t.Errorf("peer down alert: %+v", m)
	}
	st := run(t, nil, "syncd", "status", "--config", a.cfg, "--check")
	if st.code != 2 || !strings.HasPrefix(st.stdout, "CRITICAL a: ") || !strings.Contains(st.stdout, "peer b is down") {
		t.Errorf("status --check with a peer down: %s", st)
	}
	b.start()
	back := time.Now()
	hook.wait(t, 10*time.Second, "peer-down/b", "resolved")
	t.Logf("resolved delivered %v after the restart", time.Since(back).Round(time.Millisecond))
	if st := run(t, nil, "syncd", "status", "--config", a.cfg, "--check"); st.code != 0 || !strings.HasPrefix(st.stdout, "OK a: ") {
		t.Errorf("status --check once b is back: %s", st)
	}

	if err := os.RemoveAll(a.folder); err != nil {
		t.Fatal(err)
	}
	m = hook.wait(t, 10*time.Second, "folder/data", "firing")
	if m.Alert != "folder failed" || m.Severity != "critical" || !strings.Contains(m.Details, a.folder) {
		t.Errorf("folder failed alert: %+v", m)
	}
	// the folder back, with its marker: resolved, after several
	// evaluations that must have sent nothing new
	os.Mkdir(a.folder, 0o755)
	os.WriteFile(filepath.Join(a.folder, daemon.MarkerName), nil, 0o644)
	hook.wait(t, 10*time.Second, "folder/data", "resolved")
	if n := hook.count("peer-down/b", "firing"); n != 1 {
		t.Errorf("peer down sent %d times for one episode, want 1", n)
	}
	if n := hook.count("folder/data", "firing"); n != 1 {
		t.Errorf("folder failed sent %d times for one episode, want 1", n)
	}
}

// MinIO stopped before a scheduled snapshot: "snapshot failed" at the
// webhook, once; status --check is critical.
func TestAlertsSnapshotFailed(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t)
	r, env := newS3Repo(t, srv, "s3://backups/web1")
	hook := newHookReceiver(t)
	dir := t.TempDir()
	folder := filepath.Join(dir, "www")
	os.Mkdir(folder, 0o755)
	os.WriteFile(filepath.Join(folder, "a.txt"), []byte("a"), 0o644)
	cfg := runDaemon(t, dir, env, fmt.Sprintf("folders:\n  - {id: www, path: %s}\nrepository:\n  url: %s\n  index_key: %s\n  data_recipients: []\n  schedule: \"* * * * *\"\n%s",
		folder, r.url, r.indexKey, hook.yaml()))
	waitFolder(t, cfg, "www", "ok")
	srv.Kill()
	m := hook.wait(t, 90*time.Second, "snapshot-failed", "firing")
	if m.Alert != "snapshot failed" || m.Severity != "critical" {
		t.Errorf("snapshot failed alert: %+v", m)
	}
	if st := run(t, nil, "syncd", "status", "--config", cfg, "--check"); st.code != 2 || !strings.Contains(st.stdout, "snapshot") {
		t.Errorf("status --check after a failed snapshot: %s", st)
	}
	if n := hook.count("snapshot-failed", "firing"); n != 1 {
		t.Errorf("snapshot failed sent %d times, want 1", n)
	}
}

// A node behind a connected peer by more than node.max_lag answers
// /readyz with 503 and the reason, and 200 again once it caught up. B
// cannot apply A's file (its disk is full), so B stays behind.
func TestReadyzLag(t *testing.T) {
	requireRoot(t, "a lagging replica")
	t.Parallel()
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]
	b.nodeYAML = "  max_lag: 1s\n"
	b.writeConfig()
	mount(t, "-t", "tmpfs", "-o", "size=2m", "tmpfs", b.folder)
	t.Cleanup(func() { exec.Command("umount", "-l", b.folder).Run() })
	a.start()
	b.start()
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + b.http + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := readyz(); code != 200 {
		t.Fatalf("/readyz of a node in step: %d %s", code, body)
	}
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	a.write("big.bin", big)
	var body string
	if !waitFor(converge, func() bool {
		var code int
		code, body = readyz()
		return code == 503
	}) {
		t.Fatalf("/readyz of a node that cannot apply its peer's change stayed 200; last %q", body)
	}
	if !strings.Contains(body, "behind peer a") || !strings.Contains(body, "max_lag 1s") {
		t.Errorf("/readyz 503 body %q, want the lag named", body)
	}
	mount(t, "-o", "remount,size=64m", b.folder)
	if !waitFor(converge, func() bool { code, _ := readyz(); return code == 200 }) {
		_, body = readyz()
		t.Fatalf("/readyz did not come back to 200 once B caught up: %q", body)
	}
	waitSame(t, a, b)
}
