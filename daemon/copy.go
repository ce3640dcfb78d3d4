package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/syncd/syncd/alert"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/copier"
)

// copies is the state of the copy service (repository.copies): after each
// snapshot this node writes, it copies this node's snapshots that a
// target lacks to each target, in its own goroutine, so that a slow or
// unreachable target never delays a snapshot. A failed copy is logged,
// counted, alerted, and tried again after the next snapshot.
type copies struct {
	open func(ctx context.Context, t config.CopyTarget) (backend.Backend, error)
	poke chan struct{}

	mu      sync.Mutex
	targets map[string]*CopyStatus // by config.CopyTarget.Name
}

// CopyStatus is what the daemon knows of one copy target.
type CopyStatus struct {
	Target string     `json:"target"`            // config.CopyTarget.Name
	LastOK *time.Time `json:"last_ok,omitempty"` // end of the last copy that succeeded
	// LastError is why the last copy failed; empty when it succeeded.
	LastError string    `json:"last_error,omitempty"`
	LastTry   time.Time `json:"last_try"`
	Copied    int       `json:"snapshots_copied"` // by the last copy that succeeded
	Packs     int       `json:"packs_copied"`     // sent by it

	ok, failed uint64 // copies since start, by result
}

// SetBackendOpener enables repository.copies: open opens the storage of a
// copy target with the target's own settings (its endpoint, region,
// credentials and upload options; cmd/syncd passes cli.OpenTarget).
// Without it the daemon copies nothing. Call it before Run.
func (d *Daemon) SetBackendOpener(open func(ctx context.Context, t config.CopyTarget) (backend.Backend, error)) {
	d.cp.open = open
	d.cp.poke = make(chan struct{}, 1)
	d.cp.targets = map[string]*CopyStatus{}
}

// pokeCopies asks the copy service for a round; it never blocks.
func (d *Daemon) pokeCopies() {
	select {
	case d.cp.poke <- struct{}{}:
	default:
	}
}

// CopyStatuses returns the state of each copy target, in config order.
func (d *Daemon) CopyStatuses() []CopyStatus {
	if d.repo == nil || d.cp.open == nil {
		return nil
	}
	d.cp.mu.Lock()
	defer d.cp.mu.Unlock()
	var out []CopyStatus
	for _, t := range d.cfg.Repository.Copies {
		if st, ok := d.cp.targets[t.Name()]; ok {
			out = append(out, *st)
		}
	}
	return out
}

// runCopies copies to every target once at start (what a failure before
// a restart left) and after each snapshot, until ctx ends.
func (d *Daemon) runCopies(ctx context.Context) error {
	if d.repo == nil || d.cp.open == nil || len(d.cfg.Repository.Copies) == 0 {
		return nil
	}
	// A Repository of its own: its index, caches and locks apart from the
	// snapshots' (a copy's lock must not stand for a snapshot's).
	src, err := d.repo.Reopen(ctx)
	if err != nil {
		return fmt.Errorf("repository.copies: %w", err)
	}
	defer src.Close()
	d.pokeCopies()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.cp.poke:
		}
		for _, t := range d.cfg.Repository.Copies {
			if ctx.Err() != nil {
				return nil
			}
			d.copyOnce(ctx, src, t)
		}
	}
}

// copyOnce copies to the target t and records the result.
func (d *Daemon) copyOnce(ctx context.Context, src *chunkstore.Repository, t config.CopyTarget) {
	start := time.Now()
	url := t.Name()
	res, err := d.copyTo(ctx, src, t)
	if ctx.Err() != nil {
		return // stopping: neither a success nor a failure
	}
	d.cp.mu.Lock()
	st := d.cp.targets[url]
	if st == nil {
		st = &CopyStatus{Target: url}
		d.cp.targets[url] = st
	}
	st.LastTry = start.UTC()
	if err != nil {
		st.failed++
		st.LastError = err.Error()
		d.cp.mu.Unlock()
		d.log.Error("copy failed; tried again after the next snapshot", "target", url, "err", err)
		return
	}
	st.ok++
	now := time.Now().UTC()
	st.LastOK, st.LastError = &now, ""
	st.Copied, st.Packs = len(res.Copied), res.Packs
	d.cp.mu.Unlock()
	if len(res.Copied) > 0 {
		d.log.Info("snapshots copied", "target", url, "snapshots", len(res.Copied), "packs", res.Packs,
			"bytes", res.Bytes, "resumed", res.Resumed, "took", time.Since(start).Round(time.Millisecond).String())
	}
}

// copyTo copies this node's snapshots that the target lacks and that are
// newer than the newest of this node's the target has (so that the
// target's own forget does not bring old ones back).
func (d *Daemon) copyTo(ctx context.Context, src *chunkstore.Repository, t config.CopyTarget) (*copier.Result, error) {
	url := t.Name()
	be, err := d.cp.open(ctx, t)
	if err != nil {
		return nil, err
	}
	defer be.Close()
	dst, err := src.OpenCopyTarget(ctx, be)
	if err != nil {
		return nil, fmt.Errorf("copy target %s: %w", url, err)
	}
	defer dst.Close()
	host := d.cfg.Node.Name
	snaps, _, err := dst.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("copy target %s: %w", url, err)
	}
	var newest time.Time
	for _, sn := range snaps {
		if sn.Host == host && sn.Time.After(newest) {
			newest = sn.Time
		}
	}
	lock := func(which string) chunkstore.LockOptions {
		return chunkstore.LockOptions{Program: "syncd run (copy)", Wait: time.Hour,
			OnStale: func(name string, l chunkstore.LockInfo, why string) {
				d.log.Warn("removing stale repository lock", "repository", which, "object", name, "why", why, "holder", l.String())
			}}
	}
	res, err := copier.Copy(ctx, src, dst, copier.Options{
		Select:     func(sn *chunkstore.Snapshot) bool { return sn.Host == host && sn.Time.After(newest) },
		SourceLock: lock(d.cfg.Repository.URL),
		TargetLock: lock(url),
		Logger:     d.log.With("svc", "copy", "target", url),
	})
	if err != nil {
		return nil, fmt.Errorf("copy to %s: %w", url, err)
	}
	if len(res.Failed) > 0 {
		return res, fmt.Errorf("copy to %s: %d snapshot(s) not copied, the repository cannot provide all of them; first: %s: %s",
			url, len(res.Failed), res.Failed[0].Snapshot[:8], res.Failed[0].Error)
	}
	return res, nil
}

// copyProblems adds "copy failed" for each target whose last copy failed.
func (d *Daemon) copyProblems(add func(key, name, sev, details string)) {
	for _, st := range d.CopyStatuses() {
		if st.LastError != "" {
			add("copy/"+st.Target, alert.CopyFailed, alert.Critical, st.LastError)
		}
	}
}

// copyCollector serves the copy metrics.
type copyCollector struct {
	d              *Daemon
	total, lastOK  *prometheus.Desc
	lastSuccessful *prometheus.Desc
}

func newCopyCollector(d *Daemon) *copyCollector {
	return &copyCollector{d: d,
		total: prometheus.NewDesc("syncd_copies_total",
			"Copies to the copy target (repository.copies) since the daemon started, by result (ok, failed).", []string{"target", "result"}, nil),
		lastOK: prometheus.NewDesc("syncd_copy_last_success_timestamp_seconds",
			"End of the last copy to the target that succeeded, Unix time; absent until one has.", []string{"target"}, nil),
		lastSuccessful: prometheus.NewDesc("syncd_copy_last_success",
			"1 if the last copy to the target succeeded, 0 if it failed; absent before the first.", []string{"target"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *copyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.total
	ch <- c.lastOK
	ch <- c.lastSuccessful
}

// Collect implements prometheus.Collector.
func (c *copyCollector) Collect(ch chan<- prometheus.Metric) {
	if c.d.repo == nil || c.d.cp.open == nil {
		return
	}
	c.d.cp.mu.Lock()
	defer c.d.cp.mu.Unlock()
	for _, t := range c.d.cfg.Repository.Copies {
		url := t.Name()
		st := c.d.cp.targets[url]
		var ok, failed uint64
		if st != nil {
			ok, failed = st.ok, st.failed
		}
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(ok), url, "ok")
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(failed), url, "failed")
		if st == nil {
			continue
		}
		if st.LastOK != nil {
			ch <- prometheus.MustNewConstMetric(c.lastOK, prometheus.GaugeValue, float64(st.LastOK.UnixNano())/1e9, url)
		}
		ch <- prometheus.MustNewConstMetric(c.lastSuccessful, prometheus.GaugeValue, b2f(st.LastError == ""), url)
	}
}
