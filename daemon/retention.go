package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/retention"
)

// retentionPolicy turns repository.retention into a policy (a zero
// policy when the block is empty), the filter of this node's snapshots
// and the grouping. Each of keep_tags keeps on its own, like one restic
// --keep-tag each; each of tags is one restic --tag.
func retentionPolicy(r config.Retention, host string) (retention.Policy, retention.Filter, retention.GroupBy, error) {
	p := retention.Policy{Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily,
		Weekly: r.KeepWeekly, Monthly: r.KeepMonthly, Yearly: r.KeepYearly, Within: r.KeepWithin,
		WithinHourly: r.KeepWithinHourly, WithinDaily: r.KeepWithinDaily, WithinWeekly: r.KeepWithinWeekly,
		WithinMonthly: r.KeepWithinMonthly, WithinYearly: r.KeepWithinYearly}
	for _, t := range r.KeepTags {
		p.Tags = append(p.Tags, []string{t})
	}
	f := retention.Filter{Hosts: []string{host}, Paths: r.Paths}
	for _, t := range r.Tags {
		f.Tags = append(f.Tags, []string{t})
	}
	by := retention.DefaultGroupBy
	if r.GroupBy != nil {
		var err error
		if by, err = retention.ParseGroupBy(*r.GroupBy); err != nil {
			return p, f, by, fmt.Errorf("repository.retention.group_by: %w", err)
		}
	}
	return p, f, by, nil
}

// forget applies repository.retention to this node's snapshots (host
// node.name, grouped by paths unless group_by says otherwise), as of now,
// and deletes the snapshot objects it does not keep; the data stays until
// a prune. It logs each snapshot it deletes and returns them. An empty
// retention block does nothing. A policy that would keep no snapshot of a
// group deletes nothing and is an error. A snapshot object that cannot be
// read is kept and logged, the rule of syncd forget ([retention.Unreadable]).
func (d *Daemon) forget(ctx context.Context, now time.Time) ([]*chunkstore.Snapshot, error) {
	p, f, by, err := retentionPolicy(d.cfg.Repository.Retention, d.cfg.Node.Name)
	if err != nil || p.IsZero() {
		return nil, err
	}
	p.Now = now
	snaps, bad, err := d.repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	for _, e := range bad {
		d.log.Warn("snapshot unreadable", "object", e.Name, "msg", retention.Unreadable(e))
	}
	groups, err := retention.Plan(snaps, p, f, by, false)
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
