package daemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/syncd/syncd/alert"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/internal/repotest"
	"github.com/syncd/syncd/state"
	"github.com/syncd/syncd/transfer"
	"github.com/syncd/syncd/transfer/tlsid"
	"github.com/syncd/syncd/watcher"
)

// metricsDaemon is a daemon with the folders www (send-receive, shared
// with the peers named in more) and rep (receive-only, from peer web2),
// whose directories exist with their markers, and with a repository if
// repo is set. It is not running.
func metricsDaemon(t testing.TB, repo bool, more ...string) *Daemon {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"www", "rep"} {
		if err := os.MkdirAll(filepath.Join(dir, f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f, MarkerName), []byte(markerText), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	peers := fmt.Sprintf(`{name: web2, id: %s, address: "127.0.0.1:1"}`, tlsid.NodeID{1, 2, 3})
	for i, p := range more {
		peers += fmt.Sprintf(`, {name: %s, id: %s, address: "127.0.0.1:1"}`, p, tlsid.NodeID{1, 2, 4, byte(i)})
	}
	cfg, err := config.Parse(fmt.Appendf(nil, `node: {name: web1, state_dir: %[1]s/state, listen: "127.0.0.1:0", http: "127.0.0.1:0"}
peers: [%[2]s]
folders:
  - {id: www, path: %[1]s/www, peers: [%[3]s]}
  - {id: rep, path: %[1]s/rep, mode: receive-only, peers: [web2]}
`, dir, peers, strings.Join(more, ", ")), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if repo {
		d.repo = repotest.New(t)
		d.cfg.Repository = &config.Repository{URL: "test"}
	}
	return d
}

// scrape GETs /metrics from d's handler and parses the text format.
func scrape(t testing.TB, d *Daemon) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	d.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the sample of name with the labels given as
// name=value pairs, and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := fams[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

func want(t *testing.T, fams map[string]*dto.MetricFamily, v float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(fams, name, labels...)
	if !ok {
		t.Errorf("%s%v: missing", name, labels)
	} else if got != v {
		t.Errorf("%s%v = %v, want %v", name, labels, got, v)
	}
}

func update(t testing.TB, f *state.Folder, fn func(tx *state.Tx) error) {
	t.Helper()
	if err := f.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestMetrics(t *testing.T) {
	d := metricsDaemon(t, true)
	www, rep := d.folders[0], d.folders[1]
	update(t, www.local.Index(), func(tx *state.Tx) error {
		for i, size := range []int64{10, 20, 30} {
			if err := tx.Put(fmt.Sprintf("a/f%d", i), state.Entry{Type: "file", Size: size}); err != nil {
				return err
			}
		}
		return tx.Put("a", state.Entry{Type: "dir", Mode: 0o755})
	})
	update(t, www.local.Index(), func(tx *state.Tx) error { return tx.Delete("a/f1") })
	// rep: one path changed here (a local change), one the peer's. The
	// folder is new, so it adopts its peers' versions; the test is of a
	// folder past that (its first scan done, caught up with its peer).
	if err := rep.local.Index().AdoptionScanned(); err != nil {
		t.Fatal(err)
	}
	if _, err := rep.local.Index().EndAdoption(nil); err != nil {
		t.Fatal(err)
	}
	update(t, rep.local.Index(), func(tx *state.Tx) error {
		return tx.Put("mine", state.Entry{Type: "file", Size: 5})
	})
	update(t, rep.local.Index(), func(tx *state.Tx) error {
		return tx.Put("theirs", state.Entry{Type: "file", Size: 7, Vector: state.Vector{{Node: 99, Value: 1}}})
	})
	www.scanned.Store(true)
	www.pending.Store(4)
	rep.pending.Store(-1)

	fams := scrape(t, d)
	want(t, fams, 2, "syncd_folder_files", "folder=www")
	want(t, fams, 40, "syncd_folder_bytes", "folder=www")
	want(t, fams, 2, "syncd_folder_files", "folder=rep")
	want(t, fams, 12, "syncd_folder_bytes", "folder=rep")
	want(t, fams, 4, "syncd_folder_pending_paths", "folder=www")
	want(t, fams, -1, "syncd_folder_pending_paths", "folder=rep")
	for _, s := range folderStates {
		want(t, fams, b2f(s == "ok"), "syncd_folder_state", "folder=www", "state="+s)
		want(t, fams, b2f(s == "scanning"), "syncd_folder_state", "folder=rep", "state="+s)
	}
	want(t, fams, 0, "syncd_folder_failed_paths", "folder=www")
	want(t, fams, 1, "syncd_folder_local_changes", "folder=rep")
	if _, ok := value(fams, "syncd_folder_local_changes", "folder=www"); ok {
		t.Error("syncd_folder_local_changes of a send-receive folder")
	}
	st := d.Status() // from the same totals
	if w, r := st.Folders[0], st.Folders[1]; w.Files != 2 || w.Bytes != 40 || r.Files != 2 || r.Bytes != 12 || r.LocalChanges != 1 || w.LocalChanges != 0 {
		t.Errorf("Status: www %d files %d bytes, rep %d files %d bytes %d local changes", w.Files, w.Bytes, r.Files, r.Bytes, r.LocalChanges)
	}
	want(t, fams, 0, "syncd_watcher_overflows_total", "folder=www")
	want(t, fams, 0, "syncd_watcher_rescans_total", "folder=rep")
	want(t, fams, 1, "syncd_build_info")
	if mf := fams["syncd_build_info"]; mf != nil {
		var names []string
		for _, l := range mf.Metric[0].Label {
			names = append(names, l.GetName())
		}
		if got := strings.Join(names, ","); got != "goversion,revision,version" {
			t.Errorf("syncd_build_info labels %s", got)
		}
		if v, _ := value(fams, "syncd_build_info", "goversion="+mf.Metric[0].Label[0].GetValue()); !strings.HasPrefix(mf.Metric[0].Label[0].GetValue(), "go") || v != 1 {
			t.Errorf("syncd_build_info goversion %q", mf.Metric[0].Label[0].GetValue())
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("%s missing: the Go and process collectors", name)
		}
	}
	if _, ok := value(fams, "syncd_snapshot_last_result", "result=ok"); ok {
		t.Error("syncd_snapshot_last_result before any snapshot")
	}
	want(t, fams, 0, "syncd_snapshots_total", "result=ok")

	// a snapshot, then a failed one, then a health condition
	info, err := d.Snapshot(context.Background())
	if err != nil || info.Result != "ok" {
		t.Fatalf("snapshot: %+v %v", info, err)
	}
	fams = scrape(t, d)
	want(t, fams, 1, "syncd_snapshots_total", "result=ok")
	want(t, fams, 1, "syncd_snapshot_last_result", "result=ok")
	want(t, fams, 0, "syncd_snapshot_last_result", "result=failed")
	want(t, fams, float64(info.Files), "syncd_snapshot_files_read")
	want(t, fams, 1, "syncd_repository_reachable")
	saved := float64(info.Time.UnixNano()) / 1e9
	want(t, fams, saved, "syncd_snapshot_last_success_timestamp_seconds")
	if v, _ := value(fams, "syncd_snapshot_last_duration_seconds"); v <= 0 || v > 60 {
		t.Errorf("syncd_snapshot_last_duration_seconds = %v", v)
	}

	partial := &SnapshotInfo{Time: time.Now().Add(-time.Second).UTC(), Result: "partial", Files: 42}
	d.record(partial)
	fams = scrape(t, d)
	saved = float64(partial.Time.UnixNano()) / 1e9
	want(t, fams, saved, "syncd_snapshot_last_success_timestamp_seconds")
	want(t, fams, 42, "syncd_snapshot_files_read")
	want(t, fams, 1, "syncd_snapshot_last_result", "result=partial")
	want(t, fams, 1, "syncd_snapshots_total", "result=partial")
	if v, _ := value(fams, "syncd_snapshot_last_duration_seconds"); v < 1 || v > 60 {
		t.Errorf("syncd_snapshot_last_duration_seconds = %v, want the second since its start", v)
	}

	d.record(&SnapshotInfo{Time: time.Now().UTC(), Result: "failed", Error: "repository gone"})
	www.health.Set("disk-full", health.Degraded, "disk full")
	fams = scrape(t, d)
	want(t, fams, 1, "syncd_snapshots_total", "result=failed")
	want(t, fams, 1, "syncd_snapshots_total", "result=ok")
	want(t, fams, 1, "syncd_snapshot_last_result", "result=failed")
	want(t, fams, 0, "syncd_snapshot_last_result", "result=ok")
	want(t, fams, 0, "syncd_repository_reachable")
	want(t, fams, saved, "syncd_snapshot_last_success_timestamp_seconds")
	want(t, fams, 1, "syncd_folder_state", "folder=www", "state=degraded")
	want(t, fams, 0, "syncd_folder_state", "folder=www", "state=ok")

	// the last success outlives a restart: a new daemon on the same state
	d2 := &Daemon{cfg: d.cfg, db: d.db, repo: d.repo, log: d.log, access: d.access}
	d2.last.Store(d.last.Load())
	fams = scrape(t, d2)
	want(t, fams, saved, "syncd_snapshot_last_success_timestamp_seconds")
	want(t, fams, 0, "syncd_snapshots_total", "result=ok")
}

// TestMetricsPeers: the peers of a node that is not running show as down,
// with every per-peer metric at zero, for the folders shared with them
// only; the alert webhooks of d.alerts show
// by scheme and host only.
func TestMetricsPeers(t *testing.T) {
	d := metricsDaemon(t, false)
	const secret = "T000/B000/XXXXsecretXXXX"
	var err error
	d.alerts, err = alert.New(alert.Options{Node: "web1", Webhooks: []alert.Webhook{{URL: "https://hooks.example:8443/services/" + secret + "?token=" + secret}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	d.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil))
	if strings.Contains(rec.Body.String(), secret) {
		t.Errorf("/metrics shows the webhook's path or query:\n%s", rec.Body)
	}
	fams := scrape(t, d)
	if _, ok := value(fams, "syncd_peer_connected", "folder=www"); ok {
		t.Error("syncd_peer_connected of www, shared with no peer")
	}
	fp := []string{"folder=rep", "peer=web2"}
	want(t, fams, 0, "syncd_peer_connected", fp...)
	if _, ok := value(fams, "syncd_peer_last_seen_timestamp_seconds", fp...); ok {
		t.Errorf("syncd_peer_last_seen_timestamp_seconds%v of a peer never seen", fp)
	}
	for _, name := range []string{"syncd_peer_lag_files", "syncd_peer_lag_bytes", "syncd_peer_behind_sequences",
		"syncd_peer_received_files_total", "syncd_peer_received_bytes_total", "syncd_peer_fetched_bytes_total",
		"syncd_peer_sent_files_total", "syncd_peer_sent_bytes_total", "syncd_peer_conflicts_total"} {
		want(t, fams, 0, name, fp...)
	}
	for _, r := range transfer.ApplyErrorReasons {
		want(t, fams, 0, "syncd_peer_apply_errors_total", append(fp, "reason="+r)...)
	}
	if h := histogram(fams, "syncd_peer_replication_latency_seconds", fp...); h == nil || h.GetSampleCount() != 0 || !sameBuckets(h) {
		t.Errorf("syncd_peer_replication_latency_seconds%v = %v, want empty with the buckets of transfer.LatencyBuckets", fp, h)
	}
	for _, name := range []string{"syncd_alert_webhook_sent_total", "syncd_alert_webhook_failed_total", "syncd_alert_webhook_rejected_total",
		"syncd_alert_webhook_dropped_total", "syncd_alert_webhook_queued"} {
		want(t, fams, 0, name, "webhook=https://hooks.example:8443")
	}
}

// TestMetricsPeerValues: each field of transfer.PeerMetrics and
// alert.Stats lands in its metric, and webhooks on one host add up.
func TestMetricsPeerValues(t *testing.T) {
	seen := time.Date(2026, 3, 31, 10, 0, 0, 500_000_000, time.UTC)
	pm := transfer.PeerMetrics{Peer: "web2", Folder: "www", Connected: true, LastSeen: seen,
		LagFiles: 3, LagBytes: 4000, Behind: 5, ReceivedFiles: 6, ReceivedBytes: 7000, FetchedBytes: 800,
		SentFiles: 9, SentBytes: 10_000, Conflicts: 11,
		Latency: transfer.Histogram{Count: 12, Sum: 13.5}}
	for i := range pm.ApplyErrors {
		pm.ApplyErrors[i] = uint64(100 + i)
	}
	for i := range pm.Latency.Buckets {
		pm.Latency.Buckets[i] = uint64(i + 1) // cumulative, 1…10 of 12
	}
	down := transfer.PeerMetrics{Peer: "web3", Folder: "www"}
	c := newCollector(metricsDaemon(t, false))
	c.peers = func() []transfer.PeerMetrics { return []transfer.PeerMetrics{pm, down} }
	c.hooks = func() []alert.Stats {
		return []alert.Stats{
			{Webhook: "https://hooks.example", Sent: 1, Failed: 2, Rejected: 3, Dropped: 4, Queued: 5},
			{Webhook: "http://127.0.0.1:9", Sent: 7},
			{Webhook: "https://hooks.example", Sent: 10, Failed: 20, Rejected: 30, Dropped: 40, Queued: 50},
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	got, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	fams := map[string]*dto.MetricFamily{}
	for _, mf := range got {
		fams[mf.GetName()] = mf
	}

	fp := []string{"folder=www", "peer=web2"}
	want(t, fams, 1, "syncd_peer_connected", fp...)
	want(t, fams, float64(seen.UnixNano())/1e9, "syncd_peer_last_seen_timestamp_seconds", fp...)
	for name, v := range map[string]float64{"syncd_peer_lag_files": 3, "syncd_peer_lag_bytes": 4000, "syncd_peer_behind_sequences": 5,
		"syncd_peer_received_files_total": 6, "syncd_peer_received_bytes_total": 7000, "syncd_peer_fetched_bytes_total": 800,
		"syncd_peer_sent_files_total": 9, "syncd_peer_sent_bytes_total": 10_000, "syncd_peer_conflicts_total": 11} {
		want(t, fams, v, name, fp...)
	}
	for i, r := range transfer.ApplyErrorReasons {
		want(t, fams, float64(100+i), "syncd_peer_apply_errors_total", append(fp, "reason="+r)...)
	}
	h := histogram(fams, "syncd_peer_replication_latency_seconds", fp...)
	if h == nil || h.GetSampleCount() != 12 || h.GetSampleSum() != 13.5 || !sameBuckets(h) {
		t.Fatalf("syncd_peer_replication_latency_seconds = %v", h)
	}
	for i, b := range h.Bucket[:len(transfer.LatencyBuckets)] {
		if b.GetCumulativeCount() != uint64(i+1) {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), i+1)
		}
	}
	want(t, fams, 0, "syncd_peer_connected", "folder=www", "peer=web3")
	if _, ok := value(fams, "syncd_peer_last_seen_timestamp_seconds", "peer=web3"); ok {
		t.Error("syncd_peer_last_seen_timestamp_seconds of a peer never seen")
	}

	for name, v := range map[string]float64{"syncd_alert_webhook_sent_total": 11, "syncd_alert_webhook_failed_total": 22,
		"syncd_alert_webhook_rejected_total": 33, "syncd_alert_webhook_dropped_total": 44, "syncd_alert_webhook_queued": 55} {
		want(t, fams, v, name, "webhook=https://hooks.example")
	}
	want(t, fams, 7, "syncd_alert_webhook_sent_total", "webhook=http://127.0.0.1:9")
	if n := len(fams["syncd_alert_webhook_sent_total"].GetMetric()); n != 2 {
		t.Errorf("%d series of syncd_alert_webhook_sent_total, want 2", n)
	}
}

// histogram returns the histogram of name with the labels given as
// name=value pairs, or nil.
func histogram(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Histogram {
	mf := fams[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if have[k] != v {
				continue next
			}
		}
		return m.Histogram
	}
	return nil
}

// sameBuckets reports whether h has the buckets of transfer.LatencyBuckets
// (and +Inf, as the text format has it, or not, as Gather has it).
func sameBuckets(h *dto.Histogram) bool {
	n := len(transfer.LatencyBuckets)
	if len(h.Bucket) == n+1 && math.IsInf(h.Bucket[n].GetUpperBound(), 1) {
		n++
	} else if len(h.Bucket) != n {
		return false
	}
	for i, le := range transfer.LatencyBuckets {
		if h.Bucket[i].GetUpperBound() != le {
			return false
		}
	}
	return true
}

// TestMetricsNoRepository: without a repository there are no snapshot
// metrics at all.
func TestMetricsNoRepository(t *testing.T) {
	fams := scrape(t, metricsDaemon(t, false))
	for name := range fams {
		if strings.HasPrefix(name, "syncd_snapshot") || strings.HasPrefix(name, "syncd_repository") {
			t.Errorf("%s without a repository", name)
		}
	}
	want(t, fams, 0, "syncd_folder_files", "folder=www")
}

// TestWatchCounts: the watcher counters add up across watcher restarts,
// and the running watcher's count shows before it ends.
func TestWatchCounts(t *testing.T) {
	f := &folder{}
	for run := 1; run <= 2; run++ {
		w, err := watcher.New(watcher.Options{Root: t.TempDir(), Rescan: -1})
		if err != nil {
			t.Fatal(err)
		}
		f.watchStart(w)
		ctx, cancel := context.WithCancel(context.Background())
		ch := make(chan watcher.Batch)
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx, ch) }()
		if b := <-ch; !b.Rescan {
			t.Fatalf("first batch %+v, want the start rescan", b)
		}
		// sent() counts the batch once the consumer has it: wait for it
		for w.Stats().Rescans == 0 {
			time.Sleep(time.Millisecond)
		}
		if _, r := f.watchStats(); r != uint64(run) {
			t.Errorf("run %d, running: %d rescans, want %d", run, r, run)
		}
		cancel()
		for range ch {
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		f.watchEnd()
		if _, r := f.watchStats(); r != uint64(run) {
			t.Errorf("run %d, ended: %d rescans, want %d", run, r, run)
		}
	}
}

// TestScrapeDuringScan: a scrape never waits for a folder's lock, which
// the indexer holds for a whole scan. First with the lock held by the
// test, then during the first scan of a large folder.
func TestScrapeDuringScan(t *testing.T) {
	d := metricsDaemon(t, false)
	f := d.folders[0]
	f.local.Lock()
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil))
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a scrape waits for the folder's lock")
	}
	f.local.Unlock()
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `syncd_folder_files{folder="www"} 0`) {
		t.Fatalf("GET /metrics with the lock held: %d\n%s", rec.Code, rec.Body)
	}

	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	// hard links, one system call each (of a file per directory: ext4
	// allows 65000 links), make a tree that scans like any other
	one, tmp := "", t.TempDir()
	for i := range n {
		p := filepath.Join(f.cfg.Path, fmt.Sprintf("d%03d", i/1000), fmt.Sprintf("f%05d", i))
		if i%1000 == 0 {
			one = filepath.Join(tmp, fmt.Sprint(i))
			if err := errors.Join(os.Mkdir(filepath.Dir(p), 0o755), os.WriteFile(one, []byte("x"), 0o644)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Link(one, p); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}()
	// the scan: pending is -1 from before it takes the lock until after
	// it lets it go
	for f.pending.Load() != -1 {
		if f.scanned.Load() {
			t.Fatal("the scan ended before the test saw it")
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	fams := scrape(t, d)
	took := time.Since(start)
	if f.pending.Load() != -1 || f.scanned.Load() {
		t.Fatalf("the scan of %d files ended before the scrape (%v) did: nothing shown", n, took)
	}
	t.Logf("scrape during the scan of %d files: %v, %d files indexed so far", n, took, int(must(value(fams, "syncd_folder_files", "folder=www"))))
	want(t, fams, 1, "syncd_folder_state", "folder=www", "state=scanning")
	want(t, fams, -1, "syncd_folder_pending_paths", "folder=www")
}

func must(v float64, _ bool) float64 { return v }

// BenchmarkScrape scrapes a node with a 100k-file folder shared with 19
// peers (a fleet of 20), as Prometheus does (gzip). cpu-ns/op is the
// process's CPU time (user and system) per scrape; B/op the allocations.
func BenchmarkScrape(b *testing.B) {
	var more []string
	for i := 3; i <= 20; i++ {
		more = append(more, fmt.Sprintf("web%d", i))
	}
	d := metricsDaemon(b, true, more...)
	f := d.folders[0]
	const n, batch = 100_000, 10_000
	for lo := 0; lo < n; lo += batch {
		update(b, f.local.Index(), func(tx *state.Tx) error {
			for i := lo; i < lo+batch; i++ {
				if err := tx.Put(fmt.Sprintf("d%03d/f%05d", i/1000, i), state.Entry{Type: "file", Size: int64(i)}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	d.record(&SnapshotInfo{Time: time.Now(), Result: "ok", Files: n, Took: "1s"})
	h := d.Handler()
	req := httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	serve := func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			b.Fatalf("GET /metrics: %d", rec.Code)
		}
	}
	serve()
	if files, _ := f.local.Index().Totals(); files != n {
		b.Fatalf("%d files in the index, want %d", files, n)
	}
	if got, want := len(d.node.PeerMetrics()), 1+len(more); got != want {
		b.Fatalf("%d peer and folder pairs, want %d", got, want)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpu()
	for b.Loop() {
		serve()
	}
	b.ReportMetric(float64(cpu()-c0)/float64(b.N), "cpu-ns/op")
}
