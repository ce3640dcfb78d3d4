package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/span"
	"github.com/syncd/syncd/retention"
)

// retentionPolicy turns repository.retention into a policy; a zero policy
// when the block is empty. Each of keep_tags keeps on its own, like one
// restic --keep-tag each.
func retentionPolicy(r config.Retention) (retention.Policy, error) {
	p := retention.Policy{Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily,
		Weekly: r.KeepWeekly, Monthly: r.KeepMonthly, Yearly: r.KeepYearly}
	if r.KeepWithin != "" {
		w, err := span.ParseCalendar(r.KeepWithin)
		if err != nil {
			return p, fmt.Errorf("repository.retention.keep_within: %w", err)
		}
		p.Within = w
	}
	for _, t := range r.KeepTags {
		p.Tags = append(p.Tags, []string{t})
	}
	return p, nil
}

// forget applies repository.retention to this node's snapshots (host
// node.name, grouped by paths), as of now, and deletes the snapshot
// objects it does not keep; the data stays until a prune. It logs each
// snapshot it deletes and returns them. An empty retention block does
// nothing. A policy that would keep no snapshot of a group deletes
// nothing and is an error; so is a snapshot object that cannot be read,
// since the policy cannot be applied without it.
func (d *Daemon) forget(ctx context.Context, now time.Time) ([]*chunkstore.Snapshot, error) {
	p, err := retentionPolicy(d.cfg.Repository.Retention)
	if err != nil || p.IsZero() {
		return nil, err
	}
	p.Now = now
	snaps, bad, err := d.repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("retention: %s: %w; nothing forgotten", bad[0].Name, bad[0].Err)
	}
	groups, err := retention.Plan(snaps, p, retention.Filter{Hosts: []string{d.cfg.Node.Name}}, retention.DefaultGroupBy, false)
	if err != nil {
		return nil, fmt.Errorf("retention: %w; nothing forgotten", err)
	}
	removed, err := retention.Forget(ctx, d.repo, groups)
	for _, sn := range removed {
		d.log.Info("snapshot forgotten", "id", sn.ID().Short(), "time", sn.Time.Format(time.RFC3339),
			"paths", strings.Join(sn.Paths, " "), "policy", p.String())
	}
	if err != nil {
		return removed, fmt.Errorf("retention: %w", err)
	}
	return removed, nil
}
