package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/syncd/syncd/alert"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/crypto"
)

// Every daemon reads the drill records that `restore drill` writes into
// its repository (drills/<id>) and reports the last one that concerns it:
// in Status, on the status page, in /metrics, and as the "drill failed"
// and "drill overdue" alerts (docs/ALERTS.md).
//
// A record concerns this node when the drill restored one of this node's
// snapshots (a DrillSnapshot's Host is node.name), or when it restored
// none at all: a drill that failed before it reached any snapshot (the
// repository would not open, no snapshot to restore) failed for the whole
// fleet. A drill of other hosts only (or one that succeeded with no
// snapshot) says nothing of this node's backups, so it neither proves them
// restorable nor fails them.
//
// Records are immutable: what was read is kept by ID (also once it is no
// longer listed) and only new IDs are read. One that cannot be decoded
// (corrupt, sealed to other keys) is logged once and skipped. While the repository cannot be listed the last
// known records stand, and no drill alert starts for that reason alone:
// "repository unreachable" and "snapshot failed" say it.

// drillReadEvery is how often the drill records are listed (a variable
// for tests); they are also read at start and after each snapshot.
var drillReadEvery = 5 * time.Minute

// DrillInfo is what Status shows of one drill record, as far as it
// concerns this node.
type DrillInfo struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"` // when the drill began
	Host   string    `json:"host"` // the machine that ran it
	OK     bool      `json:"ok"`
	Error  string    `json:"error,omitempty"`  // why it failed, one line
	Sample int       `json:"sample,omitempty"` // the drill's --sample; 0 for a full drill
	// Snapshots, Files and Bytes count this node's snapshots the drill
	// restored, and their files and bytes.
	Snapshots int   `json:"snapshots"`
	Files     int64 `json:"files"`
	Bytes     int64 `json:"bytes"`
	// AgeSeconds is the recovery point: the age of this node's oldest
	// restored snapshot when the drill began.
	AgeSeconds float64 `json:"age_seconds"`
	// Seconds is the recovery time: how long restoring this node's
	// snapshots took (for a sample drill, its estimate of the full
	// restore where it made one).
	Seconds float64 `json:"seconds"`
}

// DrillStatus is the drill part of Status.
type DrillStatus struct {
	Last   *DrillInfo `json:"last,omitempty"`    // the newest drill that concerns this node; nil: none
	LastOK *DrillInfo `json:"last_ok,omitempty"` // the newest one that succeeded; nil: none
	Every  string     `json:"every,omitempty"`   // repository.drill_every; empty: no drill alert
	// ReadAt is when the records were last listed; nil: not yet (the
	// repository has not answered since the daemon started).
	ReadAt     *time.Time `json:"read_at,omitempty"`
	ReadError  string     `json:"read_error,omitempty"` // why the last listing or read failed
	Unreadable int        `json:"unreadable,omitempty"` // records skipped: corrupt or sealed to other keys
}

// drills is the daemon's copy of the repository's drill records. mu
// guards the fields below it; watchDrills alone writes them.
type drills struct {
	poke chan struct{} // a read is wanted (after a snapshot)

	mu      sync.Mutex
	recs    map[chunkstore.ID]*chunkstore.Drill // nil value: unreadable, skipped
	readAt  time.Time
	readErr error
	last    *DrillInfo
	lastOK  *DrillInfo
}

// pokeDrills asks watchDrills to read the records again, without waiting.
func (d *Daemon) pokeDrills() {
	select {
	case d.drill.poke <- struct{}{}:
	default:
	}
}

// watchDrills reads the drill records at start, every drillReadEvery and
// when poked, until ctx ends.
func (d *Daemon) watchDrills(ctx context.Context) error {
	for {
		d.readDrills(ctx)
		t := d.clk.NewTimer(drillReadEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		case <-d.drill.poke:
			t.Stop()
		}
	}
}

// readDrills lists the drill records, reads those not read before, and
// makes Last and LastOK of what it has. A record that cannot be decoded
// is logged once and skipped; any other error ends the round, keeps what
// was known and is tried again at the next.
func (d *Daemon) readDrills(ctx context.Context) {
	c := &d.drill
	ids, err := d.repo.DrillIDs(ctx)
	if err != nil {
		d.drillReadFailed(ctx, err)
		return
	}
	// Records no longer listed are kept: syncd never deletes one, and a
	// backup disk that is not mounted lists nothing.
	c.mu.Lock()
	recs := make(map[chunkstore.ID]*chunkstore.Drill, len(c.recs)+len(ids))
	for id, r := range c.recs {
		recs[id] = r
	}
	c.mu.Unlock()
	for _, id := range ids {
		if _, ok := recs[id]; ok {
			continue
		}
		r, err := d.repo.LoadDrill(ctx, id)
		switch {
		case err == nil:
		case errors.Is(err, backend.ErrNotExist):
			continue // removed since the listing
		case errors.Is(err, chunkstore.ErrCorrupt) || errors.Is(err, crypto.ErrNoKey):
			d.log.Warn("drill record unreadable; skipped", "object", chunkstore.DrillName(id), "err", err)
		default:
			c.mu.Lock()
			c.recs = recs // what was read stays read
			c.mu.Unlock()
			d.drillReadFailed(ctx, fmt.Errorf("read drill record %s: %w", id.Short(), err))
			return
		}
		recs[id] = r
	}
	last, lastOK := drillView(recs, d.cfg.Node.Name)
	c.mu.Lock()
	if c.readErr != nil {
		d.log.Info("drill records read again", "records", len(recs))
	}
	c.recs, c.readAt, c.readErr, c.last, c.lastOK = recs, d.clk.Now(), nil, last, lastOK
	c.mu.Unlock()
}

// drillReadFailed records err, logged when it starts, unless ctx ended.
func (d *Daemon) drillReadFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	c := &d.drill
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readErr == nil {
		d.log.Warn("cannot read the drill records; the last known stand", "err", err)
	}
	c.readErr = err
}

// drillView returns the newest record of recs that concerns host and the
// newest that succeeded, nil when there is none. Unreadable records (nil)
// are left out; of two records of the same time the greater ID is newer.
func drillView(recs map[chunkstore.ID]*chunkstore.Drill, host string) (last, lastOK *DrillInfo) {
	newer := func(a *DrillInfo, t time.Time, id string) bool {
		return a == nil || t.After(a.Time) || t.Equal(a.Time) && id > a.ID
	}
	for id, r := range recs {
		if r == nil {
			continue
		}
		info, ok := drillInfo(id, r, host)
		if !ok {
			continue
		}
		if newer(last, info.Time, info.ID) {
			last = info
		}
		if info.OK && newer(lastOK, info.Time, info.ID) {
			lastOK = info
		}
	}
	return last, lastOK
}

// drillInfo returns what r says of host's snapshots, and false when r
// does not concern host.
func drillInfo(id chunkstore.ID, r *chunkstore.Drill, host string) (*DrillInfo, bool) {
	info := &DrillInfo{ID: id.String(), Time: r.Time.UTC(), Host: r.Host, OK: r.OK, Error: r.Error, Sample: r.Sample}
	for _, s := range r.Snapshots {
		if s.Host != host {
			continue
		}
		info.Snapshots++
		info.Files += s.Files
		info.Bytes += s.Bytes
		info.AgeSeconds = max(info.AgeSeconds, s.AgeSeconds)
		if s.EstSeconds > 0 {
			info.Seconds += s.EstSeconds
		} else {
			info.Seconds += s.Seconds
		}
	}
	if info.Snapshots == 0 && (len(r.Snapshots) > 0 || r.OK) {
		return nil, false // a drill of other hosts only, or of nothing
	}
	switch {
	case info.OK || info.Error != "":
	case len(r.Snapshots) == 0:
		info.Error = "no snapshot was restored"
	default:
		info.Error = "no reason given"
	}
	return info, true
}

// DrillStatus returns what the daemon knows of the drills that concern
// it; nil without a repository.
func (d *Daemon) DrillStatus() *DrillStatus {
	if d.repo == nil {
		return nil
	}
	c := &d.drill
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &DrillStatus{Last: c.last, LastOK: c.lastOK}
	if e := d.cfg.Repository.DrillEvery; e > 0 {
		s.Every = e.String()
	}
	if !c.readAt.IsZero() {
		t := c.readAt.UTC()
		s.ReadAt = &t
	}
	if c.readErr != nil {
		s.ReadError = c.readErr.Error()
	}
	for _, r := range c.recs {
		if r == nil {
			s.Unreadable++
		}
	}
	return s
}

// drillProblems adds "drill failed" when the newest drill that concerns
// this node failed, and "drill overdue" when repository.drill_every is
// set and no drill succeeded within it. Before the records were first
// read, it adds neither: nothing is known yet.
func (d *Daemon) drillProblems(now time.Time, add func(key, name, sev, details string)) {
	s := d.DrillStatus()
	if s == nil || s.ReadAt == nil {
		return
	}
	if l := s.Last; l != nil && !l.OK {
		add("drill-failed", alert.DrillFailed, alert.Critical,
			fmt.Sprintf("the restore drill of %s (run on %s) failed: %s", l.Time.Format(time.RFC3339), l.Host, l.Error))
	}
	every := d.cfg.Repository.DrillEvery
	if every <= 0 {
		return
	}
	switch ok := s.LastOK; {
	case ok == nil:
		add("drill-overdue", alert.DrillOverdue, alert.Warning,
			fmt.Sprintf("no restore drill of this node's snapshots has succeeded (repository.drill_every %v)", every))
	case now.Sub(ok.Time) > every:
		add("drill-overdue", alert.DrillOverdue, alert.Warning,
			fmt.Sprintf("the last successful restore drill was %s, %v ago (repository.drill_every %v)",
				ok.Time.Format(time.RFC3339), now.Sub(ok.Time).Round(time.Minute), every))
	}
}
