package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
	"github.com/syncd/syncd/internal/span"
	"github.com/syncd/syncd/retention"
)

// pruneAfterForget runs after forget has removed snapshots (not on a dry
// run), when --prune is given. prune.go sets it; forget stays buildable
// without it.
var pruneAfterForget func(ctx context.Context, repo *chunkstore.Repository, url string) error

// errPruneMissing is --prune in a build without prune.
var errPruneMissing = errors.New("--prune: prune not built yet")

// countFlag is a --keep-<unit> count: a number >= 0 or "unlimited".
type countFlag struct{ n *int }

func (c countFlag) String() string {
	if c.n == nil || *c.n == 0 {
		return "0"
	}
	if *c.n == retention.Unlimited {
		return "unlimited"
	}
	return strconv.Itoa(*c.n)
}

func (c countFlag) Set(s string) error {
	if s == "unlimited" {
		*c.n = retention.Unlimited
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return errors.New("want a number >= 0 or unlimited")
	}
	*c.n = v
	return nil
}

func (c countFlag) Type() string { return "n" }

// durationFlag is a --keep-within flag: restic's 1y2m3d4h
// ([span.ParseCalendar]).
type durationFlag struct{ d *retention.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := span.ParseCalendar(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func (f durationFlag) Type() string { return "duration" }

// groupByFlag is --group-by: restic's host,paths,tags.
type groupByFlag struct{ g *retention.GroupBy }

func (f groupByFlag) String() string {
	if f.g == nil {
		return ""
	}
	return f.g.String()
}

func (f groupByFlag) Set(s string) error {
	g, err := retention.ParseGroupBy(s)
	if err != nil {
		return err
	}
	*f.g = g
	return nil
}

func (f groupByFlag) Type() string { return "fields" }

func forgetCmd() *cobra.Command {
	var f cli.RepoFlags
	var p retention.Policy
	var filter retention.Filter
	by := retention.DefaultGroupBy
	var keepTags, tags []string
	var dryRun, asJSON, all, prune bool
	cmd := &cobra.Command{
		Use:   "forget --repo R --index-key F [--dry-run] [--json] [--keep-… ]… [--group-by G] [--host H]… [--tag T]… [--path P]… [--all] [--prune]",
		Short: "Remove the snapshots a retention policy does not keep",
		Long: `forget groups the snapshots by host and paths (--group-by) and applies the
policy to each group, as restic forget does (docs/RETENTION.md): every --keep
rule adds to what is kept; a group's newest snapshot for the --keep-within
rules is the newest of that group, not the current time. --host, --tag and
--path limit it to some snapshots; a --host that no snapshot has is an error
(exit 1), not a forget of nothing. It deletes the snapshot objects of the
snapshots not kept; the data only they referenced stays until a prune. A
snapshot object that cannot be read is kept, with a warning.

A policy that keeps no snapshot of some group is refused, and nothing is
deleted, unless --all is given. --all without any --keep rule removes every
snapshot that --host, --tag and --path let through.`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Tags = retention.TagLists(keepTags)
			filter.Tags = retention.TagLists(tags)
			if p.IsZero() && !all {
				return cli.Usage("no policy given: use --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within, --keep-within-hourly (-daily, -weekly, -monthly, -yearly) or --keep-tag")
			}
			if p.IsZero() && filter.IsZero() {
				return cli.Usage("--all without a --keep rule removes every snapshot: give the --host, --tag or --path whose snapshots go")
			}
			if prune && pruneAfterForget == nil {
				return errPruneMissing
			}
			p.Now = time.Now()
			ctx := cmd.Context()
			// forget removes snapshot objects only: a session without the
			// index (none for a dry run, which writes nothing). It ends
			// before a --prune begins its exclusive one.
			var repo *chunkstore.Repository
			var sess *chunkstore.Session
			var err error
			if dryRun {
				repo, err = f.OpenNoIndex(ctx)
			} else {
				repo, sess, err = f.BeginWrite(ctx, "syncd forget", time.Hour, true)
			}
			if err != nil {
				return err
			}
			defer repo.Close()
			defer sess.Close()
			snaps, bad, err := repo.Snapshots(ctx)
			if err != nil {
				return err
			}
			for _, e := range bad {
				fmt.Fprintf(os.Stderr, "syncd: warning: %s\n", retention.Unreadable(e))
			}
			if err := filter.CheckHosts(snaps, len(bad)); err != nil {
				return fmt.Errorf("%w; nothing was removed", err)
			}
			groups, err := retention.Plan(snaps, p, filter, by, all)
			var eg *retention.EmptyGroupError
			if errors.As(err, &eg) {
				return fmt.Errorf("%w; nothing was removed (--all allows it)", err)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !asJSON {
				printGroups(out, p, groups)
			}
			var removed []*chunkstore.Snapshot
			if !dryRun {
				removed, err = retention.Forget(ctx, repo, groups)
				if err != nil {
					return fmt.Errorf("forget: %d snapshots removed before: %w", len(removed), err)
				}
			}
			if asJSON {
				if err := json.NewEncoder(out).Encode(jsonGroups(groups)); err != nil {
					return err
				}
			} else if dryRun {
				fmt.Fprintf(out, "would remove %d snapshots (dry run)\n", dropped(groups))
			} else {
				fmt.Fprintf(out, "removed %d snapshots\n", len(removed))
			}
			if prune && !dryRun && len(removed) > 0 {
				sess.Close()
				return pruneAfterForget(ctx, repo, f.Repo)
			}
			return nil
		},
	}
	f.Register(cmd, false)
	fl := cmd.Flags()
	fl.BoolVarP(&dryRun, "dry-run", "n", false, "show what would be removed, remove nothing")
	fl.BoolVar(&asJSON, "json", false, "print the groups as JSON (keep, remove, reasons), like restic forget --json")
	for _, c := range []struct {
		name string
		n    *int
		what string
	}{
		{"keep-last", &p.Last, "the last n snapshots"},
		{"keep-hourly", &p.Hourly, "the newest snapshot of each of the last n hours that have one"},
		{"keep-daily", &p.Daily, "the newest snapshot of each of the last n days that have one"},
		{"keep-weekly", &p.Weekly, "the newest snapshot of each of the last n ISO weeks that have one"},
		{"keep-monthly", &p.Monthly, "the newest snapshot of each of the last n months that have one"},
		{"keep-yearly", &p.Yearly, "the newest snapshot of each of the last n years that have one"},
	} {
		fl.Var(countFlag{c.n}, c.name, "keep "+c.what+" (n or unlimited)")
	}
	fl.Var(durationFlag{&p.Within}, "keep-within", "keep the snapshots newer than this span before the group's newest, like 1y2m3d4h (m: months)")
	for _, w := range []struct {
		unit string
		d    *retention.Duration
	}{{"hourly", &p.WithinHourly}, {"daily", &p.WithinDaily}, {"weekly", &p.WithinWeekly}, {"monthly", &p.WithinMonthly}, {"yearly", &p.WithinYearly}} {
		fl.Var(durationFlag{w.d}, "keep-within-"+w.unit, "keep the "+w.unit+" snapshots newer than this span before the group's newest, like 1y2m3d4h")
	}
	fl.StringArrayVar(&keepTags, "keep-tag", nil, "keep the snapshots that have all these comma-separated tags (repeatable: any of the lists)")
	fl.Var(groupByFlag{&by}, "group-by", "group the snapshots by host, paths and/or tags, comma-separated ('' for one group)")
	fl.StringArrayVar(&filter.Hosts, "host", nil, "only look at the snapshots of this host (repeatable)")
	fl.StringArrayVar(&tags, "tag", nil, "only look at the snapshots with all these comma-separated tags (repeatable: any of the lists)")
	fl.StringArrayVar(&filter.Paths, "path", nil, "only look at the snapshots that include this absolute path (repeatable: all of them)")
	fl.BoolVar(&all, "all", false, "allow removing every snapshot of a group")
	fl.BoolVar(&prune, "prune", false, "prune the repository after removing snapshots")
	return cmd
}

func dropped(groups []retention.Group) int {
	n := 0
	for _, g := range groups {
		n += len(g.Drop)
	}
	return n
}

// printGroups prints, per group, each snapshot with keep or remove, and why
// it is kept. Times are shown in the zone they were recorded in, the one
// the policy's hours and days are counted in.
func printGroups(w io.Writer, p retention.Policy, groups []retention.Group) {
	fmt.Fprintf(w, "applying policy: %s\n", p)
	for _, g := range groups {
		name := g.String()
		if name == "" {
			name = "all snapshots (--group-by '')"
		}
		fmt.Fprintf(w, "\n%s: keep %d, remove %d\n", name, len(g.Keep), len(g.Drop))
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		line := func(what string, sn *chunkstore.Snapshot, why string) {
			tags := "-"
			if len(sn.Tags) > 0 {
				tags = strings.Join(sn.Tags, ",")
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", what, sn.ID().Short(), sn.Time.Format("2006-01-02 15:04:05 -07:00"), tags, why)
		}
		for i, sn := range g.Keep {
			line("keep", sn, g.Reasons[i].String())
		}
		for _, sn := range g.Drop {
			line("remove", sn, "")
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
}

// jsonSnapshot is a snapshot in --json output.
type jsonSnapshot struct {
	ID      string    `json:"id"`
	ShortID string    `json:"short_id"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host"`
	Paths   []string  `json:"paths"`
	Tags    []string  `json:"tags"`
}

// jsonGroup is a group in --json output, with restic forget --json's keys.
// A field the grouping does not use is empty (null for paths and tags).
type jsonGroup struct {
	Tags    []string       `json:"tags"`
	Host    string         `json:"host"`
	Paths   []string       `json:"paths"`
	Keep    []jsonSnapshot `json:"keep"`
	Remove  []jsonSnapshot `json:"remove"`
	Reasons []jsonReason   `json:"reasons"`
}

type jsonReason struct {
	Snapshot jsonSnapshot `json:"snapshot"`
	Matches  []string     `json:"matches"`
}

func jsonGroups(groups []retention.Group) []jsonGroup {
	conv := func(sn *chunkstore.Snapshot) jsonSnapshot {
		tags := sn.Tags
		if tags == nil {
			tags = []string{}
		}
		return jsonSnapshot{ID: sn.ID().String(), ShortID: sn.ID().Short(), Time: sn.Time, Host: sn.Host, Paths: sn.Paths, Tags: tags}
	}
	out := []jsonGroup{}
	for _, g := range groups {
		jg := jsonGroup{Tags: g.Tags, Host: g.Host, Paths: g.Paths, Keep: []jsonSnapshot{}, Remove: []jsonSnapshot{}, Reasons: []jsonReason{}}
		for i, sn := range g.Keep {
			jg.Keep = append(jg.Keep, conv(sn))
			jg.Reasons = append(jg.Reasons, jsonReason{Snapshot: conv(sn), Matches: g.Reasons[i].Matches})
		}
		for _, sn := range g.Drop {
			jg.Remove = append(jg.Remove, conv(sn))
		}
		out = append(out, jg)
	}
	return out
}
