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

	"github.com/syncd/syncd/alert"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/version"
	"github.com/syncd/syncd/transfer"
	"github.com/syncd/syncd/watcher"
)

// /metrics serves the node's Prometheus metrics (DESIGN.md §8) from a
// registry of its own: the Go and process collectors and [collector],
// which reads counters kept as things happen (atomics, and the index's
// totals record: one read of the state database per folder). A scrape
// never walks the index and never takes a folder's lock, so it answers
// during a full scan.
//
// Peer metrics come from transfer.Node.PeerMetrics (atomics kept by the
// pullers and the server as things happen), not from Node.Status, which
// walks the changes a peer has yet to ask for. Alert delivery counters
// come from alert.Alerter.Stats.

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
			newCopyCollector(d),
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
	// peers and hooks return the peer metrics and the webhook counters
	// (nil: none); tests replace them.
	peers func() []transfer.PeerMetrics
	hooks func() []alert.Stats

	files, bytes, pending, state, failed, local, overflows, rescans *prometheus.Desc
	lastSuccess, lastDuration, lastResult, filesRead, snapshots     *prometheus.Desc
	reachable                                                       *prometheus.Desc
	drillOK, drillSuccess, drillAge, drillTook, drillEvery          *prometheus.Desc

	peerUp, peerSeen, lagFiles, lagBytes, behind                              *prometheus.Desc
	recvFiles, recvBytes, fetched, sentFiles, sentBytes, applyErrs, conflicts *prometheus.Desc
	latency                                                                   *prometheus.Desc

	hookSent, hookFailed, hookRejected, hookDropped, hookQueued *prometheus.Desc
}

func newCollector(d *Daemon) *collector {
	folder := []string{"folder"}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	v := version.Read("syncd")
	fp := []string{"folder", "peer"}
	hook := []string{"webhook"}
	c := &collector{
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

		drillOK: desc("syncd_repository_last_drill_timestamp_seconds",
			"Start of the newest restore drill of this node's snapshots that succeeded, Unix time; 0 when none has. Absent until the drill records were read."),
		drillSuccess: desc("syncd_repository_last_drill_success", "1 if the newest restore drill of this node's snapshots succeeded, 0 if it failed; absent when there is none."),
		drillAge: desc("syncd_repository_last_drill_recovery_point_seconds",
			"Age of this node's snapshot when the newest successful restore drill began: the recovery point it proved."),
		drillTook: desc("syncd_repository_last_drill_recovery_time_seconds",
			"How long the newest successful restore drill took to restore this node's snapshots (a sample drill's estimate of the full restore)."),
		drillEvery: desc("syncd_repository_drill_every_seconds", "repository.drill_every, in seconds: how often a restore drill must succeed; absent when unset."),

		peerUp:    desc("syncd_peer_connected", "1 if the peer is connected for the folder, 0 if not.", fp...),
		peerSeen:  desc("syncd_peer_last_seen_timestamp_seconds", "When this node last heard from the peer for the folder (now while connected), Unix time; absent until it has.", fp...),
		lagFiles:  desc("syncd_peer_lag_files", "Entries of the peer this node has yet to apply: the batch being applied and those that failed.", fp...),
		lagBytes:  desc("syncd_peer_lag_bytes", "Size of the files among syncd_peer_lag_files, in bytes.", fp...),
		behind:    desc("syncd_peer_behind_sequences", "Sequence numbers of the peer's changes this node has not asked for yet.", fp...),
		recvFiles: desc("syncd_peer_received_files_total", "Entries applied from the peer (files, directories, links, deletions).", fp...),
		recvBytes: desc("syncd_peer_received_bytes_total", "Size of the files applied from the peer, in bytes.", fp...),
		fetched:   desc("syncd_peer_fetched_bytes_total", "Bytes of blocks fetched from the peer over the network (the rest was copied from local files).", fp...),
		sentFiles: desc("syncd_peer_sent_files_total", "Entries announced to the peer.", fp...),
		sentBytes: desc("syncd_peer_sent_bytes_total", "Bytes of blocks served to the peer, uncompressed.", fp...),
		applyErrs: desc("syncd_peer_apply_errors_total", "Failed tries to apply an entry from the peer, by reason (a retry that fails counts again).", "folder", "peer", "reason"),
		conflicts: desc("syncd_peer_conflicts_total", "Local versions kept as conflict copies because the peer's concurrent version won.", fp...),
		latency:   desc("syncd_peer_replication_latency_seconds", "From a file's mtime on the peer to its application here, in seconds (clock skew included).", fp...),

		hookSent:     desc("syncd_alert_webhook_sent_total", "Alert messages the webhook accepted (2xx).", hook...),
		hookFailed:   desc("syncd_alert_webhook_failed_total", "Tries that failed and are retried: network errors, timeouts, 408, 429, 5xx.", hook...),
		hookRejected: desc("syncd_alert_webhook_rejected_total", "Alert messages refused with another status (3xx, 4xx) and dropped.", hook...),
		hookDropped:  desc("syncd_alert_webhook_dropped_total", "Alert messages dropped, oldest first, because the webhook's queue was full.", hook...),
		hookQueued:   desc("syncd_alert_webhook_queued", "Alert messages waiting for the webhook.", hook...),
	}
	if d.node != nil {
		c.peers = d.node.PeerMetrics
	}
	if d.alerts != nil {
		c.hooks = d.alerts.Stats
	}
	return c
}

// Describe sends the descriptors of every metric Collect sends.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.build.Desc()
	for _, d := range []*prometheus.Desc{c.files, c.bytes, c.pending, c.state, c.failed, c.local, c.overflows,
		c.rescans, c.lastSuccess, c.lastDuration, c.lastResult, c.filesRead, c.snapshots, c.reachable,
		c.drillOK, c.drillSuccess, c.drillAge, c.drillTook, c.drillEvery,
		c.peerUp, c.peerSeen, c.lagFiles, c.lagBytes, c.behind, c.recvFiles, c.recvBytes, c.fetched,
		c.sentFiles, c.sentBytes, c.applyErrs, c.conflicts, c.latency,
		c.hookSent, c.hookFailed, c.hookRejected, c.hookDropped, c.hookQueued} {
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
		files, bytes := f.local.Index().Totals()
		gauge(c.files, float64(files), id)
		gauge(c.bytes, float64(bytes), id)
		gauge(c.pending, float64(f.pending.Load()), id)
		cur := folderState(f)
		for _, s := range folderStates {
			gauge(c.state, b2f(s == cur), id, s)
		}
		gauge(c.failed, float64(len(f.ix.Failed())), id)
		if f.cfg.Mode == config.ReceiveOnly {
			if n, ok := f.local.Index().LocalChanged(); ok {
				gauge(c.local, float64(n), id)
			}
		}
		overflows, rescans := f.watchStats()
		counter(c.overflows, overflows, id)
		counter(c.rescans, rescans, id)
	}
	c.collectPeers(ch)
	c.collectHooks(ch)
	if c.d.repo == nil {
		return // no snapshots
	}
	c.collectDrills(gauge)
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

// collectDrills sends the metrics of the drill records, once they were
// read.
func (c *collector) collectDrills(gauge func(d *prometheus.Desc, v float64, labels ...string)) {
	if e := c.d.cfg.Repository.DrillEvery; e > 0 {
		gauge(c.drillEvery, e.Seconds())
	}
	s := c.d.DrillStatus()
	if s == nil || s.ReadAt == nil {
		return
	}
	if s.Last != nil {
		gauge(c.drillSuccess, b2f(s.Last.OK))
	}
	if s.LastOK == nil {
		gauge(c.drillOK, 0)
		return
	}
	gauge(c.drillOK, float64(s.LastOK.Time.UnixNano())/1e9)
	gauge(c.drillAge, s.LastOK.AgeSeconds)
	gauge(c.drillTook, s.LastOK.Seconds)
}

// collectPeers sends the metrics of each folder shared with each peer.
func (c *collector) collectPeers(ch chan<- prometheus.Metric) {
	if c.peers == nil {
		return
	}
	for _, m := range c.peers() {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, m.Folder, m.Peer)
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), m.Folder, m.Peer)
		}
		gauge(c.peerUp, b2f(m.Connected))
		if !m.LastSeen.IsZero() {
			gauge(c.peerSeen, float64(m.LastSeen.UnixNano())/1e9)
		}
		gauge(c.lagFiles, float64(m.LagFiles))
		gauge(c.lagBytes, float64(m.LagBytes))
		gauge(c.behind, float64(m.Behind))
		counter(c.recvFiles, m.ReceivedFiles)
		counter(c.recvBytes, m.ReceivedBytes)
		counter(c.fetched, m.FetchedBytes)
		counter(c.sentFiles, m.SentFiles)
		counter(c.sentBytes, m.SentBytes)
		for i, r := range transfer.ApplyErrorReasons {
			ch <- prometheus.MustNewConstMetric(c.applyErrs, prometheus.CounterValue, float64(m.ApplyErrors[i]), m.Folder, m.Peer, r)
		}
		counter(c.conflicts, m.Conflicts)
		// MustNewConstHistogram keeps the map: a new one for each
		buckets := make(map[float64]uint64, len(transfer.LatencyBuckets))
		for i, le := range transfer.LatencyBuckets {
			buckets[le] = m.Latency.Buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(c.latency, m.Latency.Count, m.Latency.Sum, buckets, m.Folder, m.Peer)
	}
}

// collectHooks sends the delivery counters of the alert webhooks. Two
// webhooks on the same scheme and host (two chat channels, say) add up
// under one label: the label never shows a URL's path or query, which
// may hold a secret.
func (c *collector) collectHooks(ch chan<- prometheus.Metric) {
	if c.hooks == nil {
		return
	}
	var sums []alert.Stats
next:
	for _, s := range c.hooks() {
		for i := range sums {
			if sums[i].Webhook == s.Webhook {
				sums[i].Sent += s.Sent
				sums[i].Failed += s.Failed
				sums[i].Rejected += s.Rejected
				sums[i].Dropped += s.Dropped
				sums[i].Queued += s.Queued
				continue next
			}
		}
		sums = append(sums, s)
	}
	for _, s := range sums {
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), s.Webhook)
		}
		counter(c.hookSent, s.Sent)
		counter(c.hookFailed, s.Failed)
		counter(c.hookRejected, s.Rejected)
		counter(c.hookDropped, s.Dropped)
		ch <- prometheus.MustNewConstMetric(c.hookQueued, prometheus.GaugeValue, float64(s.Queued), s.Webhook)
	}
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
