package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/local"
	"github.com/syncd/syncd/daemon"
)

// drillDaemon runs a daemon with folder www (holding a.txt with content,
// if any) and repository r, with repoYAML added to its repository
// section, and waits for the folder to be indexed. It returns the
// configuration's path and the folder.
func drillDaemon(t *testing.T, r *repo, content, repoYAML string) (cfg, folder string) {
	t.Helper()
	dir := t.TempDir()
	folder = filepath.Join(dir, "www")
	os.Mkdir(folder, 0o755)
	if content != "" {
		os.WriteFile(filepath.Join(folder, "a.txt"), []byte(content), 0o644)
	}
	cfg = runDaemon(t, dir, nil, fmt.Sprintf("folders:\n  - {id: www, path: %s}\nrepository:\n  url: %s\n  index_key: %s\n%s",
		folder, r.url, r.indexKey, repoYAML))
	waitFolder(t, cfg, "www", "ok")
	return cfg, folder
}

// writeDrillRecord stores rec in r as restore drill does: in a write
// session of its own, under the repository lock.
func writeDrillRecord(t *testing.T, r *repo, rec *chunkstore.Drill) chunkstore.ID {
	t.Helper()
	repo, sess := openWriteSession(t, r, chunkstore.WriteOptions{NoIndex: true,
		LockOptions: chunkstore.LockOptions{Program: "e2e drill record", Wait: time.Minute}})
	defer repo.Close()
	defer sess.Close()
	id, err := repo.SaveDrill(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var httpLine = regexp.MustCompile(`(?m)^  http: (\S+)$`)

// daemonMetrics scrapes the /metrics of the daemon of configuration cfg
// (as runDaemon writes it) and returns the value of each sample without
// labels by name.
func daemonMetrics(t *testing.T, cfg string) map[string]float64 {
	t.Helper()
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := httpLine.FindSubmatch(text)
	if m == nil {
		t.Fatalf("no node.http in %s", cfg)
	}
	resp, err := http.Get("http://" + string(m[1]) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, s := range f.Metric {
			if len(s.Label) == 0 && s.Gauge != nil {
				out[name] = s.Gauge.GetValue()
			}
		}
	}
	return out
}

// daemonStatus returns `syncd status --json` of the daemon of cfg.
func daemonStatus(t *testing.T, cfg string) daemon.Status {
	t.Helper()
	var st daemon.Status
	if err := json.Unmarshal([]byte(ok(t, nil, "syncd", "status", "--config", cfg, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// With repository.drill_every set and no drill record, "drill overdue"
// fires; a successful drill record written into the repository resolves
// it once the daemon reads the records (here: after a snapshot), and
// /metrics and status show it. A corrupt record is logged once and
// skipped; a failed drill after it fires "drill failed".
func TestDrillAlert(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	hook := newHookReceiver(t)
	cfg, folder := drillDaemon(t, r, "a", "  drill_every: 1h\n"+hook.yaml())

	m := hook.wait(t, 30*time.Second, "drill-overdue", "firing")
	if m.Alert != "drill overdue" || m.Severity != "warning" || m.Node != "web1" || !strings.Contains(m.Details, "drill_every 1h0m0s") {
		t.Errorf("drill overdue alert: %+v", m)
	}
	if st := run(t, nil, "syncd", "status", "--config", cfg, "--check"); st.code != 1 || !strings.HasPrefix(st.stdout, "WARNING web1: ") ||
		!strings.Contains(st.stdout, "no restore drill") {
		t.Errorf("status --check without a drill: %s", st)
	}
	met := daemonMetrics(t, cfg)
	if v, ok := met["syncd_repository_last_drill_timestamp_seconds"]; !ok || v != 0 || met["syncd_repository_drill_every_seconds"] != 3600 {
		t.Errorf("metrics without a drill: timestamp %v (%v), drill_every %v", v, ok, met["syncd_repository_drill_every_seconds"])
	}
	if _, ok := met["syncd_repository_last_drill_success"]; ok {
		t.Error("syncd_repository_last_drill_success without a drill")
	}
	if out := ok(t, nil, "syncd", "status", "--config", cfg); !strings.Contains(out, "last drill: none") {
		t.Errorf("status without a drill:\n%s", out)
	}

	// a corrupt record, and a successful drill of web1's snapshot
	be, err := local.Open(r.url)
	if err != nil {
		t.Fatal(err)
	}
	bad := chunkstore.DrillName(chunkstore.ID{0xba, 0xd})
	if err := backend.SaveBytes(context.Background(), be, bad, []byte("not a drill record")); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Second)
	id := writeDrillRecord(t, r, &chunkstore.Drill{Time: at, Host: "ops", OK: true, Seconds: 4,
		Snapshots: []chunkstore.DrillSnapshot{{Host: "web1", Paths: []string{folder}, Time: at.Add(-2 * time.Minute),
			AgeSeconds: 120, Files: 1, Bytes: 1, Seconds: 3.5}}})
	ok(t, nil, "syncd", "snapshot", "--config", cfg) // the daemon reads the records after each snapshot
	hook.wait(t, 30*time.Second, "drill-overdue", "resolved")

	st := daemonStatus(t, cfg)
	if d := st.Drill; d == nil || d.Last == nil || d.Last.ID != id.String() || !d.Last.OK || d.Last.AgeSeconds != 120 ||
		d.Last.Seconds != 3.5 || !d.Last.Time.Equal(at) || d.LastOK == nil || d.Unreadable != 1 || d.Every != "1h0m0s" {
		t.Errorf("status --json after the drill: %+v", d)
	}
	met = daemonMetrics(t, cfg)
	if met["syncd_repository_last_drill_timestamp_seconds"] != float64(at.Unix()) || met["syncd_repository_last_drill_success"] != 1 ||
		met["syncd_repository_last_drill_recovery_point_seconds"] != 120 || met["syncd_repository_last_drill_recovery_time_seconds"] != 3.5 {
		t.Errorf("metrics after the drill: %v", met)
	}
	if out := ok(t, nil, "syncd", "status", "--config", cfg); !strings.Contains(out, "last drill ok at ") ||
		!strings.Contains(out, "recovery point 2m0s, recovery time 4s") {
		t.Errorf("status after the drill:\n%s", out)
	}
	if st := run(t, nil, "syncd", "status", "--config", cfg, "--check"); st.code != 0 {
		t.Errorf("status --check after the drill: %s", st)
	}

	// a failed drill after it: "drill failed", critical; not overdue
	writeDrillRecord(t, r, &chunkstore.Drill{Time: at.Add(time.Second), Host: "ops", Error: "1 damaged file",
		Snapshots: []chunkstore.DrillSnapshot{{Host: "web1", Paths: []string{folder}, DamagedFiles: 1}}})
	ok(t, nil, "syncd", "snapshot", "--config", cfg)
	m = hook.wait(t, 30*time.Second, "drill-failed", "firing")
	if m.Alert != "drill failed" || m.Severity != "critical" || !strings.Contains(m.Details, "1 damaged file") {
		t.Errorf("drill failed alert: %+v", m)
	}
	if st := run(t, nil, "syncd", "status", "--config", cfg, "--check"); st.code != 2 || !strings.Contains(st.stdout, "1 damaged file") {
		t.Errorf("status --check after a failed drill: %s", st)
	}
	if v := daemonMetrics(t, cfg)["syncd_repository_last_drill_success"]; v != 0 {
		t.Errorf("syncd_repository_last_drill_success after a failed drill = %v, want 0", v)
	}
	if n := hook.count("drill-overdue", "firing"); n != 1 {
		t.Errorf("drill overdue sent %d times, want 1", n)
	}

	log, _ := os.ReadFile(filepath.Join(filepath.Dir(cfg), "syncd.log"))
	if n := strings.Count(string(log), "drill record unreadable"); n != 1 || !strings.Contains(string(log), bad) {
		t.Errorf("the corrupt record was logged %d times, want once with its name:\n%s", n, log)
	}
}

// A bad repository.drill_every stops syncd run with one line naming the
// file, the line and the key.
func TestDrillEveryBad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, v := range []string{"-1h", "1w", "weekly"} { // 8d is 8 days (internal/span)
		cfg := filepath.Join(dir, "syncd.yaml")
		yaml := fmt.Sprintf("node:\n  name: web1\n  state_dir: %s\nrepository:\n  url: %s\n  index_key: /etc/syncd/index.key\n  drill_every: %s\n",
			filepath.Join(dir, "state"), filepath.Join(dir, "repo"), v)
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		res := run(t, nil, "syncd", "run", "--config", cfg)
		oneLine(t, "drill_every "+v, res, 1, cfg+":7: repository.drill_every", fmt.Sprintf("%q", v))
		if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
			t.Errorf("drill_every %s: the state directory was made", v)
		}
	}
}

// The status page shows the last drill, and its script brings a new one
// in without a reload.
func TestDrillStatusPage(t *testing.T) {
	ctx := browser(t)
	r := newRepo(t)
	cfg, folder := drillDaemon(t, r, "", "")
	text, _ := os.ReadFile(cfg)
	addr := string(httpLine.FindSubmatch(text)[1])
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatalf("open the status page: %v", err)
	}
	waitPage(t, ctx, converge, `#drill td.muted`, "no drill")

	at := time.Now().UTC().Truncate(time.Second)
	writeDrillRecord(t, r, &chunkstore.Drill{Time: at, Host: "ops", Error: "1 damaged <file>",
		Snapshots: []chunkstore.DrillSnapshot{{Host: "web1", Paths: []string{folder}, AgeSeconds: 7380, Seconds: 42, DamagedFiles: 1}}})
	ok(t, nil, "syncd", "snapshot", "--config", cfg)
	waitPage(t, ctx, converge, `#drill td.failed`, "the failed drill")
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#drill")))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"ops", "1 damaged <file>", "2h 3m", "42s", "Last success", "never"} {
		if !strings.Contains(got, w) {
			t.Errorf("the drill section lacks %q:\n%s", w, got)
		}
	}
}

// The whole loop with the real `restore drill`: the daemon's snapshot is
// drilled, the record written names the node's host, and the daemon's
// "drill overdue" resolves.
func TestDrillRecordFromRestoreDrill(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	hook := newHookReceiver(t)
	cfg, _ := drillDaemon(t, r, "hello", "  drill_every: 24h\n"+hook.yaml())
	ok(t, nil, "syncd", "snapshot", "--config", cfg)
	hook.wait(t, 30*time.Second, "drill-overdue", "firing")

	res := run(t, []string{"TMPDIR=" + t.TempDir()}, "restore", "drill", "--repo", r.url, "--index-key", r.indexKey, "--identity", r.dataKey)
	if res.code != 0 {
		t.Fatalf("restore drill: %s", res)
	}
	ok(t, nil, "syncd", "snapshot", "--config", cfg)
	hook.wait(t, 30*time.Second, "drill-overdue", "resolved")
	d := daemonStatus(t, cfg).Drill
	if d == nil || d.Last == nil || !d.Last.OK || d.Last.Snapshots != 1 || d.Last.Files < 1 || d.Last.Seconds <= 0 || d.Last.AgeSeconds <= 0 {
		t.Errorf("status --json after restore drill: %+v", d)
	}
}
