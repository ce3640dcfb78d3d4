package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
)

// pick narrows "latest" to one host's snapshots and to those taken at or
// before a point in time: the tree as it was before a bad deploy.
type pick struct {
	host string
	at   string
}

func (p *pick) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.host, "host", "", `with "latest": the newest snapshot of this host`)
	cmd.Flags().StringVar(&p.at, "time", "", `with "latest": the newest snapshot taken at or before this time (2026-12-01 14:00, local time, or RFC 3339)`)
}

// timeLayouts are what --time accepts, in local time unless the layout
// carries an offset, each with the span it names: a time given to the
// minute means every snapshot of that minute too, as `restore snapshots`
// shows times to the second.
var timeLayouts = []struct {
	layout string
	span   time.Duration
}{
	{time.RFC3339Nano, time.Second}, {"2006-01-02 15:04:05", time.Second}, {"2006-01-02T15:04:05", time.Second},
	{"2006-01-02 15:04", time.Minute}, {"2006-01-02T15:04", time.Minute}, {"2006-01-02", 24 * time.Hour},
}

// parseTime reads a --time value and returns the last instant it names.
func parseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l.layout, s, time.Local); err == nil {
			if l.span > 0 && t.Nanosecond() == 0 {
				t = t.Add(l.span - time.Nanosecond)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--time %q: not a time; use 2026-12-01 14:00[:05] (local time) or RFC 3339", s)
}

// find resolves ref as findSnapshot does, narrowed by --host and --time.
func (p *pick) find(ctx context.Context, repo *chunkstore.Repository, ref string) (*chunkstore.Snapshot, error) {
	if p.host == "" && p.at == "" {
		return findSnapshot(ctx, repo, ref)
	}
	if ref != "latest" {
		return nil, cli.Usage("--host and --time choose among the snapshots for \"latest\"; give latest instead of an ID")
	}
	var at time.Time
	if p.at != "" {
		var err error
		if at, err = parseTime(p.at); err != nil {
			return nil, cli.Usage("%s", err)
		}
	}
	snaps, bad, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		// A damaged snapshot's host and time are unknown: it may be the
		// one asked for.
		return findSnapshot(ctx, repo, ref)
	}
	var keep []*chunkstore.Snapshot
	for _, s := range snaps {
		if (p.host == "" || s.Host == p.host) && (at.IsZero() || !s.Time.After(at)) {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("latest: no snapshot%s%s (restore snapshots lists them): %w", p.hostText(), p.timeText(at), chunkstore.ErrNoSnapshot)
	}
	return keep[len(keep)-1], nil
}

func (p *pick) hostText() string {
	if p.host == "" {
		return ""
	}
	return " of host " + p.host
}

func (p *pick) timeText(at time.Time) string {
	if at.IsZero() {
		return ""
	}
	return " taken at or before " + at.Format(time.RFC3339)
}
