package daemon

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/syncd/syncd/alert"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/health"
)

// Problem is one thing wrong with the node, as an alert names it: sent to
// the webhooks (alerts:), listed by /status under "alerts", on the status
// page, and counted by `syncd status --check`.
type Problem struct {
	Key      string    `json:"key"`      // one episode's source: "peer-down/web2", "folder/www"
	Alert    string    `json:"alert"`    // alert.PeerDown, alert.FolderFailed, …
	Severity string    `json:"severity"` // alert.Warning or alert.Critical
	Since    time.Time `json:"since"`
	Details  string    `json:"details"`
	Text     string    `json:"text"` // one line for people
}

// The timing of the checks (variables for tests).
var (
	// checkEvery is how often the node's problems are evaluated.
	checkEvery = time.Second
	// peerDownAfter is how long a peer must stay disconnected before it
	// is "peer down": a connection that ends and comes back at once (a
	// peer's restart) is no alert. A killed peer's connections close at
	// once, so its alert fires this long after the kill.
	peerDownAfter = 3 * time.Second
	// probeEvery is how often the repository is asked for its config
	// object, to find it unreachable between snapshots.
	probeEvery = time.Minute
)

// checker evaluates the node's problems and keeps what it needs between
// two evaluations. Its fields are owned by watchProblems' goroutine,
// except cur, read by Status and /readyz.
type checker struct {
	since      map[string]time.Time // key → when the problem was first seen
	downSince  map[string]time.Time // peer → when it was first seen down
	lagSince   map[string]time.Time // peer/folder → since when it has been behind
	started    time.Time
	probeAt    time.Time
	probeErr   error
	mu         sync.Mutex
	cur        []Problem
	behindPeer string // the first peer this node is behind by more than max_lag, for /readyz
}

// Problems returns the node's current problems, worst first.
func (d *Daemon) Problems() []Problem {
	d.chk.mu.Lock()
	defer d.chk.mu.Unlock()
	return append([]Problem(nil), d.chk.cur...)
}

// lagging returns a reason while this node is behind a connected peer by
// more than node.max_lag, else "".
func (d *Daemon) lagging() string {
	d.chk.mu.Lock()
	defer d.chk.mu.Unlock()
	return d.chk.behindPeer
}

// watchProblems evaluates the node's problems every checkEvery until ctx
// ends, and tells the alerter (when alerts: has webhooks) of each that
// starts and ends.
func (d *Daemon) watchProblems(ctx context.Context) error {
	c := &d.chk
	c.since, c.downSince, c.lagSince = map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	c.started = time.Now()
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	active := map[string]bool{}
	for {
		ps, behind := d.evaluate(ctx, time.Now())
		c.mu.Lock()
		c.cur, c.behindPeer = ps, behind
		c.mu.Unlock()
		seen := map[string]bool{}
		for _, p := range ps {
			seen[p.Key] = true
			if d.alerts != nil {
				d.alerts.Fire(p.Key, p.Alert, p.Severity, p.Details)
			}
			if !active[p.Key] {
				d.log.Warn("alert", "alert", p.Alert, "key", p.Key, "severity", p.Severity, "details", p.Details)
			}
		}
		for k := range active {
			if !seen[k] {
				if d.alerts != nil {
					d.alerts.Resolve(k)
				}
				d.log.Info("alert resolved", "key", k)
			}
		}
		active = seen
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// evaluate returns the node's problems at now, worst first, and the
// reason /readyz gives while this node lags behind a peer.
func (d *Daemon) evaluate(ctx context.Context, now time.Time) ([]Problem, string) {
	c := &d.chk
	var ps []Problem
	add := func(key, name, sev, details string) {
		since, ok := c.since[key]
		if !ok {
			since = now
		}
		ps = append(ps, Problem{Key: key, Alert: name, Severity: sev, Since: since, Details: details})
	}
	for _, f := range d.folders {
		if cs := f.health.List(); len(cs) > 0 {
			sev := alert.Warning
			if cs[0].Severity >= health.Failed {
				sev = alert.Critical
			}
			add("folder/"+f.cfg.ID, alert.FolderFailed, sev, fmt.Sprintf("folder %s %s: %s", f.cfg.ID, cs[0].State, cs[0].Reason))
		}
		if f.cfg.Mode == config.ReceiveOnly {
			if n, ok := f.local.Index().LocalChanged(); ok && n > 0 {
				add("local-changes/"+f.cfg.ID, alert.LocalChanges, alert.Warning,
					fmt.Sprintf("receive-only folder %s has %d local change(s); syncd revert %s throws them away", f.cfg.ID, n, f.cfg.ID))
			}
		}
	}
	behind := d.peerProblems(now, add)
	if d.repo != nil {
		d.snapshotProblems(ctx, now, add)
		d.drillProblems(now, add)
		d.copyProblems(add)
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Severity == alert.Critical && ps[j].Severity != alert.Critical })
	since := map[string]time.Time{}
	for i := range ps {
		since[ps[i].Key] = ps[i].Since
		ps[i].Text = fmt.Sprintf("%s on %s: %s", ps[i].Alert, d.cfg.Node.Name, ps[i].Details)
	}
	c.since = since
	return ps, behind
}

// peerProblems adds "peer down" for each peer disconnected for longer
// than peerDownAfter, and "lag" for each connected peer this node has
// been behind for longer than node.max_lag; it returns the readiness
// reason of the first lag.
func (d *Daemon) peerProblems(now time.Time, add func(key, name, sev, details string)) string {
	c := &d.chk
	connected := map[string]bool{}
	last := map[string]time.Time{}
	lagged := map[string]bool{}
	behind := ""
	for _, m := range d.node.PeerMetrics() {
		if _, ok := connected[m.Peer]; !ok {
			connected[m.Peer] = false
		}
		connected[m.Peer] = connected[m.Peer] || m.Connected
		if m.LastSeen.After(last[m.Peer]) {
			last[m.Peer] = m.LastSeen
		}
		key := m.Peer + "/" + m.Folder
		if !m.Connected || (m.Behind == 0 && m.LagFiles == 0) {
			continue
		}
		lagged[key] = true
		if _, ok := c.lagSince[key]; !ok {
			c.lagSince[key] = now
		}
		if lag := now.Sub(c.lagSince[key]); lag > d.cfg.Node.MaxLag && behind == "" {
			behind = fmt.Sprintf("behind peer %s in folder %s for %v (%d changes, %d files to apply; node.max_lag %v)",
				m.Peer, m.Folder, lag.Round(time.Second), m.Behind, m.LagFiles, d.cfg.Node.MaxLag)
		}
	}
	for k := range c.lagSince {
		if !lagged[k] {
			delete(c.lagSince, k)
		}
	}
	peers := make([]string, 0, len(connected))
	for p := range connected {
		peers = append(peers, p)
	}
	sort.Strings(peers)
	for _, p := range peers {
		if connected[p] {
			delete(c.downSince, p)
			continue
		}
		if _, ok := c.downSince[p]; !ok {
			c.downSince[p] = now
		}
		if now.Sub(c.downSince[p]) < peerDownAfter {
			continue
		}
		seen := "never since this node started"
		if t := last[p]; !t.IsZero() {
			seen = "last seen " + t.UTC().Format(time.RFC3339)
		}
		add("peer-down/"+p, alert.PeerDown, alert.Critical, fmt.Sprintf("peer %s is down (%s)", p, seen))
	}
	if behind != "" {
		add("lag", "lag", alert.Warning, behind)
	}
	return behind
}

// snapshotProblems adds "snapshot failed", "snapshot overdue" and
// "repository unreachable".
func (d *Daemon) snapshotProblems(ctx context.Context, now time.Time, add func(key, name, sev, details string)) {
	c := &d.chk
	if last := d.last.Load(); last != nil && last.Result == "failed" {
		add("snapshot-failed", alert.SnapshotFailed, alert.Critical,
			fmt.Sprintf("the snapshot of %s failed: %s", last.Time.UTC().Format(time.RFC3339), last.Error))
	}
	if s := d.cfg.Repository.Schedule; s != "" {
		if sched, err := cron.ParseStandard(s); err == nil {
			base := c.started
			if t := d.met.lastSaved.Load(); t != 0 {
				base = time.Unix(0, t)
			}
			// overdue: two scheduled times have passed since the base
			if due := sched.Next(sched.Next(base)); now.After(due) {
				saved := "none since this node started"
				if t := d.met.lastSaved.Load(); t != 0 {
					saved = "last saved " + time.Unix(0, t).UTC().Format(time.RFC3339)
				}
				add("snapshot-overdue", alert.SnapshotOverdue, alert.Warning,
					fmt.Sprintf("no snapshot saved within two intervals of %q (%s)", s, saved))
			}
		}
	}
	if now.Sub(c.probeAt) >= probeEvery {
		c.probeAt = now
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := d.repo.Backend().Stat(pctx, "config")
		cancel()
		if ctx.Err() == nil {
			c.probeErr = err
		}
	}
	// a snapshot saved since the probe has used the repository: it
	// answers again, whatever the probe found
	if last := d.last.Load(); c.probeErr != nil && last != nil && last.Result != "failed" && last.Time.After(c.probeAt) {
		c.probeErr = nil
	}
	if c.probeErr != nil {
		add("repository-unreachable", alert.RepositoryUnreachable, alert.Critical,
			fmt.Sprintf("repository %s: %v", d.cfg.Repository.URL, c.probeErr))
	}
}

// CheckSummary is `syncd status --check`'s verdict on st: its exit code
// (0 ok, 1 warning, 2 critical) and one line naming every problem.
func CheckSummary(st Status) (code int, line string) {
	word := "OK"
	var parts []string
	for _, p := range st.Alerts {
		switch p.Severity {
		case alert.Critical:
			code, word = 2, "CRITICAL"
		default:
			if code < 1 {
				code, word = 1, "WARNING"
			}
		}
		parts = append(parts, p.Details)
	}
	if len(parts) == 0 {
		up := 0
		for _, p := range st.Peers {
			if p.Connected {
				up++
			}
		}
		last := "no snapshot yet"
		if len(st.Folders) > 0 && st.Folders[0].LastSnapshot != nil {
			s := st.Folders[0].LastSnapshot
			last = fmt.Sprintf("last snapshot %s at %s", s.Result, s.Time.UTC().Format(time.RFC3339))
		}
		if st.Drill != nil && st.Drill.LastOK != nil {
			last += ", last drill ok at " + st.Drill.LastOK.Time.UTC().Format(time.RFC3339)
		}
		parts = append(parts, fmt.Sprintf("%d folder(s) ok, %d of %d peer(s) connected, %s", len(st.Folders), up, len(st.Peers), last))
	}
	return code, fmt.Sprintf("%s %s: %s", word, st.Node, strings.Join(parts, "; "))
}
