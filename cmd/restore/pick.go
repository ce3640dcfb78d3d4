package main

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
	"github.com/syncd/syncd/retention"
)

// pick is the snapshot selection every command shares: --host, --path
// and --tag narrow the snapshots a command looks at (with restic's
// meaning, [retention.Filter]), and --time keeps those taken at or before
// a point in time; "latest" is the newest that is left, the tree as it
// was before a bad deploy.
type pick struct {
	hosts []string
	paths []string
	tags  []string
	at    string
}

// register adds --host, --path and --tag to cmd, and --time when withTime.
func (p *pick) register(cmd *cobra.Command, withTime bool) {
	fl := cmd.Flags()
	fl.StringArrayVar(&p.hosts, "host", nil, "only the snapshots of this host (repeatable: any of them)")
	fl.StringArrayVar(&p.paths, "path", nil, "only the snapshots that include this absolute path (repeatable: all of them)")
	fl.StringArrayVar(&p.tags, "tag", nil, "only the snapshots with all these comma-separated tags (repeatable: any of the lists)")
	if withTime {
		fl.StringVar(&p.at, "time", "", `only the snapshots taken at or before this time (2026-12-01 14:00, local time, or RFC 3339)`)
	}
}

// set reports whether any selection flag was given.
func (p *pick) set() bool { return len(p.hosts)+len(p.paths)+len(p.tags) > 0 || p.at != "" }

// filter is the --host, --path and --tag part of p.
func (p *pick) filter() retention.Filter {
	f := retention.Filter{Hosts: p.hosts, Tags: retention.TagLists(p.tags)}
	for _, s := range p.paths {
		f.Paths = append(f.Paths, path.Clean(s))
	}
	return f
}

// narrow returns the snapshots of snaps (oldest first) that p selects, in
// order. A --host that no snapshot has is an error naming it (unreadable:
// the number of snapshots that could not be read), and so is a selection
// that leaves nothing.
func (p *pick) narrow(snaps []*chunkstore.Snapshot, unreadable int) ([]*chunkstore.Snapshot, error) {
	var at time.Time
	if p.at != "" {
		var err error
		if at, err = parseTime(p.at); err != nil {
			return nil, cli.Usage("%s", err)
		}
	}
	f := p.filter()
	if err := f.CheckHosts(snaps, unreadable); err != nil {
		return nil, err
	}
	var keep []*chunkstore.Snapshot
	for _, s := range snaps {
		if f.Match(s) && (at.IsZero() || !s.Time.After(at)) {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 && p.set() {
		return nil, fmt.Errorf("no snapshot %s (restore snapshots lists them): %w", p.describe(at), chunkstore.ErrNoSnapshot)
	}
	return keep, nil
}

// describe names the selection in words, for an error.
func (p *pick) describe(at time.Time) string {
	var parts []string
	if len(p.hosts) > 0 {
		parts = append(parts, "of host "+strings.Join(p.hosts, " or "))
	}
	if len(p.paths) > 0 {
		parts = append(parts, "with path "+strings.Join(p.paths, " and "))
	}
	if len(p.tags) > 0 {
		parts = append(parts, "tagged "+strings.Join(p.tags, " or "))
	}
	if !at.IsZero() {
		parts = append(parts, "taken at or before "+at.Format(time.RFC3339))
	}
	return strings.Join(parts, " ")
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

// find resolves ref as findSnapshot does; with a selection, ref must be
// "latest", which is then the newest snapshot p selects.
func (p *pick) find(ctx context.Context, repo *chunkstore.Repository, ref string) (*chunkstore.Snapshot, error) {
	if !p.set() {
		return findSnapshot(ctx, repo, ref)
	}
	if ref != "latest" {
		return nil, cli.Usage("--host, --path, --tag and --time choose among the snapshots for \"latest\"; give latest instead of an ID")
	}
	snaps, bad, err := openedSnapshots(ctx, repo)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		// A damaged snapshot's host and time are unknown: it may be the
		// one asked for.
		return findSnapshot(ctx, repo, ref)
	}
	keep, err := p.narrow(snaps, 0)
	if err != nil {
		return nil, fmt.Errorf("latest: %w", err)
	}
	return keep[len(keep)-1], nil
}
