package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDaemonCopies: with repository.copies, the daemon copies each
// snapshot to every target after writing it. A target that fails (here:
// not initialized yet) is logged, counted in syncd_copies_total, alerted
// as "copy failed", and does not stop the snapshot or the copy to the
// other target; once it works, the next snapshot copies everything it
// missed and the alert resolves.
func TestDaemonCopies(t *testing.T) {
	n := newNode(t)
	good := filepath.Join(t.TempDir(), "good")
	late := filepath.Join(t.TempDir(), "late")
	ok(t, nil, "syncd", "init", "--repo", good, "--copy-from", n.r.url, "--index-key", n.r.indexKey)
	f, err := os.OpenFile(n.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("  copies: [" + good + ", " + late + "]\n")
	f.Close()
	n.write("a.txt", "first version\n")
	n.start()
	n.waitIndexed()
	snaps := func(dir string) int {
		ents, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
		return len(ents)
	}

	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	if !waitFor(30*time.Second, func() bool { return snaps(good) == 1 }) {
		t.Fatalf("the snapshot was not copied to %s within 30 s; log:\n%s", good, n.logText())
	}
	var failed string
	if !waitFor(30*time.Second, func() bool {
		failed = n.metric(`syncd_copies_total{result="failed",target="` + late + `"}`)
		return failed != "" && failed != "0"
	}) {
		t.Fatalf("no failed copy counted for %s; metrics:\n%s", late, n.metrics())
	}
	// one at start (nothing to copy yet), one after the snapshot
	if got := n.metric(`syncd_copies_total{result="ok",target="` + good + `"}`); got != "2" {
		t.Errorf("copies to %s counted ok: %q, want 2", good, got)
	}
	if !waitFor(30*time.Second, func() bool { return strings.Contains(n.alerts(), `"copy failed"`) }) {
		t.Fatalf("no copy failed alert; status alerts: %s", n.alerts())
	}
	if a := n.alerts(); !strings.Contains(a, late) || strings.Contains(a, "copy/"+good) {
		t.Errorf("alerts should name %s only: %s", late, a)
	}
	if !strings.Contains(n.logText(), "copy failed") {
		t.Errorf("the failed copy is not in the log")
	}

	// the target is made; the next snapshot copies both snapshots there
	ok(t, nil, "syncd", "init", "--repo", late, "--copy-from", n.r.url, "--index-key", n.r.indexKey)
	n.write("a.txt", "second, longer version\n")
	n.waitIndexed()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	if !waitFor(30*time.Second, func() bool { return snaps(good) == 2 && snaps(late) == 2 }) {
		t.Fatalf("targets hold %d and %d snapshots, want 2 each; log:\n%s", snaps(good), snaps(late), n.logText())
	}
	if !waitFor(30*time.Second, func() bool { return !strings.Contains(n.alerts(), `"copy failed"`) }) {
		t.Errorf("copy failed still alerted after a good copy: %s", n.alerts())
	}
	for _, dir := range []string{good, late} {
		flags := []string{"--repo", dir, "--index-key", n.r.indexKey, "--identity", n.r.dataKey}
		out := ok(t, nil, "restore", append([]string{"verify", "--read-data"}, flags...)...)
		if !strings.Contains(out, "no problems found") {
			t.Errorf("verify %s: %s", dir, out)
		}
		target := t.TempDir()
		ok(t, nil, "restore", append([]string{"latest", "--target", target}, flags...)...)
		sameTree(t, n.folder, filepath.Join(target, n.folder))
	}
}

func (n *node) logText() string {
	b, _ := os.ReadFile(n.log.Name())
	return string(b)
}

func (n *node) get(path string) string {
	n.t.Helper()
	resp, err := http.Get("http://" + n.http + path)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (n *node) metrics() string { return n.get("/metrics") }

// metric returns the value of the sample named (with its labels, as
// /metrics writes them), "" when absent.
func (n *node) metric(sample string) string {
	for _, l := range strings.Split(n.metrics(), "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			return v
		}
	}
	return ""
}

// alerts returns the alerts of /status as JSON.
func (n *node) alerts() string {
	var st struct {
		Alerts json.RawMessage `json:"alerts"`
	}
	json.Unmarshal([]byte(n.get("/status")), &st)
	return string(st.Alerts)
}
