package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonRetention: with repository.retention, the daemon forgets its
// own snapshots after scheduled ones, logs each, and leaves other hosts'
// snapshots alone. skip_unchanged is off: every scheduled snapshot is
// written, though nothing changes.
func TestDaemonRetention(t *testing.T) {
	n := newNode(t)
	cfg, _ := os.ReadFile(n.cfg)
	os.WriteFile(n.cfg, []byte(strings.Replace(string(cfg), "  data_recipients: []",
		"  data_recipients: []\n  schedule: \"@every 1s\"\n  retention: {keep_last: 2}\n  skip_unchanged: false", 1)), 0o644)
	other := filepath.Join(t.TempDir(), "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "f"), []byte("web2"), 0o644)
	for _, day := range []string{"01", "02", "03"} {
		ok(t, nil, "syncd", append([]string{"snapshot"}, n.r.flags("--host", "web2", "--time", "2026-01-"+day+" 00:00:00", other)...)...)
	}
	n.write("a.txt", "a")
	n.start()

	forgotten := regexp.MustCompile(`msg="snapshot forgotten" id=([0-9a-f]+)`)
	var log string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(n.log.Name())
		if log = string(b); len(forgotten.FindAllString(log, -1)) >= 2 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	n.cmd.Wait()
	b, _ := os.ReadFile(n.log.Name())
	log = string(b)
	gone := forgotten.FindAllStringSubmatch(log, -1)
	if len(gone) < 2 {
		t.Fatalf("fewer than 2 snapshots forgotten within 60 s of @every 1s with keep_last 2; log:\n%s", log)
	}

	hosts := map[string]int{}
	var ids []string
	for _, s := range snapshotsJSON(t, n.r) {
		hosts[s["host"].(string)]++
		ids = append(ids, s["id"].(string))
	}
	if hosts["web2"] != 3 {
		t.Errorf("web2 has %d snapshots left, want its 3", hosts["web2"])
	}
	// 2 kept, and one more if the daemon stopped between a snapshot and
	// its forget
	if hosts["web1"] < 2 || hosts["web1"] > 3 {
		t.Errorf("web1 has %d snapshots left, want 2 (or 3)", hosts["web1"])
	}
	for _, g := range gone {
		for _, id := range ids {
			if strings.HasPrefix(id, g[1]) {
				t.Errorf("snapshot %s logged as forgotten is still there", g[1])
			}
		}
	}
	ok(t, nil, "restore", append([]string{"verify"}, n.r.flags()...)...)
}
