package daemon

import (
	"encoding/binary"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/version"
	"github.com/syncd/syncd/watcher"
)

// /metrics serves the node's Prometheus metrics (DESIGN.md §8) from a
// registry of its own: the Go and process collectors and [collector],
// which reads counters kept as things happen (atomics, and the index's
// totals record: one read of the state database per folder). A scrape
// never walks the index and never takes a folder's lock, so it answers
// during a full scan.
//
// Peer metrics are not here yet: transfer.Node.Status walks the changes
// not yet acknowledged by each peer (SendFiles), too much for a scrape.
// They are to come from a cheap transfer.Node method (atomics kept by the
// pullers and the server, copied out under the node's lock) that
// collector.Collect calls, or from the node as a prometheus.Collector of
// its own registered next to this one.

// snapshotResults are the values of SnapshotInfo.Result, the label of the
// snapshot metrics.
var snapshotResults = [...]string{"ok", "partial", "failed"}

// folderStates are the values of FolderStatus.State.
var folderStates = [...]string{"ok", "scanning", "degraded", "failed"}

// metaLastSaved is the state database's record of when the last saved
// snapshot (ok or partial) started: 8 bytes, ns since the epoch.
const metaLastSaved = "snapshot-last-saved"

// metrics is what /metrics reports that the daemon keeps nowhere else.
// Its zero value is ready; the methods are safe for concurrent use.
type metrics struct {
	once    sync.Once
	handler http.Handler

	snapshots [len(snapshotResults)]atomic.Uint64 // snapshots tried since start, by result
	lastSaved atomic.Int64                        // start of the last saved snapshot, ns since the epoch; 0: none known
	lastTook  atomic.Int64                        // duration of the last snapshot since start, ns; 0: none yet
}

// snapshotDone counts a snapshot that ended with info; record calls it.
func (d *Daemon) snapshotDone(info *SnapshotInfo) {
	for i, r := range snapshotResults {
		if r == info.Result {
			d.met.snapshots[i].Add(1)
		}
	}
	// info.Took is left out of a snapshot whose repository did not open
	d.met.lastTook.Store(max(int64(time.Since(info.Time)), 1))
	if info.Result == "failed" {
		return
	}
	d.met.lastSaved.Store(info.Time.UnixNano())
	if err := d.db.PutMeta(metaLastSaved, binary.BigEndian.AppendUint64(nil, uint64(info.Time.UnixNano()))); err != nil {
		d.log.Error("cannot record the last saved snapshot", "err", err)
	}
}

// metricsHandler returns the handler of /metrics, made on first use.
func (d *Daemon) metricsHandler() http.Handler {
	d.met.once.Do(func() {
		if v, ok, err := d.db.GetMeta(metaLastSaved); err == nil && ok && len(v) == 8 {
			d.met.lastSaved.CompareAndSwap(0, int64(binary.BigEndian.Uint64(v)))
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			newCollector(d),
		)
		d.met.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorHandling: promhttp.ContinueOnError, // the rest of a scrape is worth having
			Registry:      reg,                      // promhttp_metric_handler_errors_total
		})
	})
	return d.met.handler
}

// watchCounts are a folder's watcher counters: those of the running
// watcher, read at scrape time, over the sums of the watchers before it
// (runFolder makes a new one each time the folder's guard passes again).
type watchCounts struct {
	w                  *watcher.Watcher // running; nil between runs
	overflows, rescans uint64           // of the watchers that ended
}

// watchStart records that w is the folder's running watcher. Only the
// folder's goroutine calls watchStart and watchEnd.
func (f *folder) watchStart(w *watcher.Watcher) {
	n := &watchCounts{w: w}
	if old := f.watch.Load(); old != nil {
		n.overflows, n.rescans = old.overflows, old.rescans
	}
	f.watch.Store(n)
}

// watchEnd adds the counters of the watcher, whose Run has returned, to
// the sums; one store, so that a scrape never sees them counted twice or
// not at all.
func (f *folder) watchEnd() {
	old := f.watch.Load()
	if old == nil || old.w == nil {
		return
	}
	s := old.w.Stats()
	f.watch.Store(&watchCounts{overflows: old.overflows + s.Overflows, rescans: old.rescans + s.Rescans})
}

// watchStats returns the inotify queue overflows and the rescan batches
// of every watcher the folder has run.
func (f *folder) watchStats() (overflows, rescans uint64) {
	c := f.watch.Load()
	if c == nil {
		return 0, 0
	}
	overflows, rescans = c.overflows, c.rescans
	if c.w != nil {
		s := c.w.Stats()
		overflows, rescans = overflows+s.Overflows, rescans+s.Rescans
	}
	return overflows, rescans
}

// collector is the daemon's prometheus.Collector. Collect reads atomics
// and cheap getters only; it is safe for concurrent use.
type collector struct {
	d     *Daemon
	build prometheus.Metric

	files, bytes, pending, state, failed, local, overflows, rescans *prometheus.Desc
	lastSuccess, lastDuration, lastResult, filesRead, snapshots     *prometheus.Desc
	reachable                                                       *prometheus.Desc
}

func newCollector(d *Daemon) *collector {
	folder := []string{"folder"}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	v := version.Read("syncd")
	return &collector{
		d: d,
		build: prometheus.MustNewConstMetric(
			desc("syncd_build_info", "Always 1; the labels say what the binary was built from.", "version", "revision", "goversion"),
			prometheus.GaugeValue, 1, v.Version, v.Revision, v.Go),
		files:     desc("syncd_folder_files", "Regular files in the folder's index, deleted ones left out.", folder...),
		bytes:     desc("syncd_folder_bytes", "Total size of syncd_folder_files, in bytes.", folder...),
		pending:   desc("syncd_folder_pending_paths", "Paths handed to the indexer and not indexed yet; -1 during a full scan.", folder...),
		state:     desc("syncd_folder_state", "1 for the folder's current state (ok, scanning, degraded or failed), 0 for the others.", "folder", "state"),
		failed:    desc("syncd_folder_failed_paths", "Paths the indexer could not read.", folder...),
		local:     desc("syncd_folder_local_changes", "Receive-only folder: paths changed on this node and not sent (syncd revert throws them away).", folder...),
		overflows: desc("syncd_watcher_overflows_total", "Inotify queue overflows of the folder's watcher (each turned into a rescan).", folder...),
		rescans:   desc("syncd_watcher_rescans_total", "Full scans the folder's watcher asked for: at start, after overflows, on schedule.", folder...),

		lastSuccess:  desc("syncd_snapshot_last_success_timestamp_seconds", "Start of the last snapshot saved (ok or partial), Unix time."),
		lastDuration: desc("syncd_snapshot_last_duration_seconds", "How long the last snapshot took, whatever its result."),
		lastResult:   desc("syncd_snapshot_last_result", "1 for the result of the last snapshot (ok, partial or failed), 0 for the others.", "result"),
		filesRead:    desc("syncd_snapshot_files_read", "Files the last snapshot read: those changed since the one before."),
		snapshots:    desc("syncd_snapshots_total", "Snapshots tried since the daemon started, by result.", "result"),
		reachable:    desc("syncd_repository_reachable", "1 if the last snapshot could use the repository (it did not fail), 0 if not."),
	}
}

// Describe sends the descriptors of every metric Collect sends.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.build.Desc()
	for _, d := range []*prometheus.Desc{c.files, c.bytes, c.pending, c.state, c.failed, c.local, c.overflows,
		c.rescans, c.lastSuccess, c.lastDuration, c.lastResult, c.filesRead, c.snapshots, c.reachable} {
		ch <- d
	}
}

// Collect sends the current values. It takes no folder's lock and walks
// nothing: per folder, two reads of the state database and a few atomics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- c.build
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, f := range c.d.folders {
		id := f.cfg.ID
		files, bytes := f.st.Totals()
		gauge(c.files, float64(files), id)
		gauge(c.bytes, float64(bytes), id)
		gauge(c.pending, float64(f.pending.Load()), id)
		cur := folderState(f)
		for _, s := range folderStates {
			gauge(c.state, b2f(s == cur), id, s)
		}
		gauge(c.failed, float64(len(f.ix.Failed())), id)
		if f.cfg.Mode == config.ReceiveOnly {
			if n, ok := f.st.LocalChanged(); ok {
				gauge(c.local, float64(n), id)
			}
		}
		overflows, rescans := f.watchStats()
		counter(c.overflows, overflows, id)
		counter(c.rescans, rescans, id)
	}
	if c.d.repo == nil {
		return // no snapshots
	}
	for i, r := range snapshotResults {
		counter(c.snapshots, c.d.met.snapshots[i].Load(), r)
	}
	if t := c.d.met.lastSaved.Load(); t != 0 {
		gauge(c.lastSuccess, float64(t)/1e9)
	}
	last := c.d.last.Load()
	if last == nil {
		return
	}
	for _, r := range snapshotResults {
		gauge(c.lastResult, b2f(r == last.Result), r)
	}
	took := time.Duration(c.d.met.lastTook.Load())
	if took == 0 { // the last snapshot is from before this start
		took, _ = time.ParseDuration(last.Took)
	}
	gauge(c.lastDuration, took.Seconds())
	gauge(c.filesRead, float64(last.Files))
	gauge(c.reachable, b2f(last.Result != "failed"))
}

// folderState returns the folder's state as Status shows it.
func folderState(f *folder) string {
	if cs := f.health.List(); len(cs) > 0 {
		return cs[0].State
	}
	if !f.scanned.Load() {
		return "scanning"
	}
	return "ok"
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
