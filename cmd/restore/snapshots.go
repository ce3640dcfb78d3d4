package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
)

// snapshotJSON is the --json form of a snapshot.
type snapshotJSON struct {
	ID      string           `json:"id"`
	ShortID string           `json:"short_id"`
	Time    string           `json:"time"`
	Host    string           `json:"host"`
	Paths   []string         `json:"paths"`
	Tags    []string         `json:"tags"`
	Tree    string           `json:"tree"`
	Parent  string           `json:"parent,omitempty"`
	Partial bool             `json:"partial"`
	Stats   chunkstore.Stats `json:"stats"`
}

func toJSON(sn *chunkstore.Snapshot) snapshotJSON {
	j := snapshotJSON{ID: sn.ID().String(), ShortID: sn.ID().Short(), Time: sn.Time.Format(time.RFC3339),
		Host: sn.Host, Paths: sn.Paths, Tags: sn.Tags, Tree: sn.Tree.String(), Partial: sn.Partial, Stats: sn.Stats}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if sn.Parent != nil {
		j.Parent = sn.Parent.String()
	}
	return j
}

func snapshotsCmd() *cobra.Command {
	var f cli.RepoFlags
	var sel pick
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "snapshots --repo R --index-key F|--identity F [--host H]… [--path P]… [--tag T]… [--time T] [--json]",
		Short: "List the snapshots, grouped by host, oldest first",
		Long: `snapshots lists the snapshots one per line, grouped by host (hosts in name
order, a blank line between them), oldest first within each host.
--host, --path, --tag and --time list only the snapshots they select, as for
restore; a --host that no snapshot has is an error (exit 1). --json prints one
JSON array of the snapshots, in the same order.`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, _, err := f.Open(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			snaps, bad, err := repo.Snapshots(ctx)
			if err != nil {
				return err
			}
			for _, e := range bad {
				fmt.Fprintf(os.Stderr, "warning: %s\n", e.Err)
			}
			if snaps, err = sel.narrow(snaps, len(bad)); err != nil {
				return err
			}
			// grouped by host; the sort is stable, so oldest first within one
			slices.SortStableFunc(snaps, func(a, b *chunkstore.Snapshot) int { return strings.Compare(a.Host, b.Host) })
			out := cmd.OutOrStdout()
			if asJSON {
				list := make([]snapshotJSON, 0, len(snaps))
				for _, sn := range snaps {
					list = append(list, toJSON(sn))
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			// one table, so that every group's columns line up; a row of
			// empty cells between hosts keeps it one table for tabwriter
			var buf bytes.Buffer
			tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tHOST\tTAGS\tFILES\tSIZE\tPATHS")
			for i, sn := range snaps {
				if i > 0 && sn.Host != snaps[i-1].Host {
					fmt.Fprintln(tw, "\t\t\t\t\t\t")
				}
				flag := ""
				if sn.Partial {
					flag = " (partial)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s%s\n", sn.ID().Short(), sn.Time.Local().Format(time.DateTime),
					sn.Host, strings.Join(sn.Tags, ","), sn.Stats.Files, cli.Bytes(sn.Stats.Bytes), strings.Join(sn.Paths, " "), flag)
			}
			tw.Flush()
			for _, line := range strings.SplitAfter(buf.String(), "\n") {
				if line != "" {
					fmt.Fprintln(out, strings.TrimRight(line, " \n"))
				}
			}
			fmt.Fprintf(out, "%d snapshot(s)\n", len(snaps))
			return nil
		},
	}
	f.Register(cmd, true)
	sel.register(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// openedSnapshots is Repository.SnapshotsAndIndex for a repository opened with its index
// (cli.RepoFlags.Open), whose caller had the unreadable index objects
// then: the ones it finds again are not returned a second time.
func openedSnapshots(ctx context.Context, repo *chunkstore.Repository) ([]*chunkstore.Snapshot, []*chunkstore.SnapshotError, error) {
	snaps, bad, _, err := repo.SnapshotsAndIndex(ctx)
	return snaps, bad, err
}

// readableSnapshots returns the snapshots that can be read, oldest first,
// and warns on stderr of each that cannot, with note after the reason.
func readableSnapshots(ctx context.Context, repo *chunkstore.Repository, note string) ([]*chunkstore.Snapshot, error) {
	snaps, bad, err := openedSnapshots(ctx, repo)
	if err != nil {
		return nil, err
	}
	for _, e := range bad {
		fmt.Fprintf(os.Stderr, "warning: %s%s\n", e.Err, note)
	}
	return snaps, nil
}

// findSnapshot resolves an ID, unique ID prefix or "latest". A snapshot
// object that cannot be read and that the reference may mean (any, for
// "latest": its time is unknown, it may be the newest) is an error naming
// it, never a silent pick of another snapshot.
func findSnapshot(ctx context.Context, repo *chunkstore.Repository, ref string) (*chunkstore.Snapshot, error) {
	snaps, bad, err := openedSnapshots(ctx, repo)
	if err != nil {
		return nil, err
	}
	var hit []*chunkstore.SnapshotError
	for _, e := range bad {
		id := strings.TrimPrefix(e.Name, "snapshots/")
		if ref == "latest" || (ref != "" && strings.HasPrefix(id, strings.ToLower(ref))) {
			hit = append(hit, e)
		} else {
			fmt.Fprintf(os.Stderr, "warning: %s\n", e.Err)
		}
	}
	if len(hit) > 0 {
		more := ""
		if len(hit) > 1 {
			more = fmt.Sprintf(" (and %d more damaged)", len(hit)-1)
		}
		if ref == "latest" {
			return nil, fmt.Errorf("latest: damaged snapshot %s%s may be the newest: %v; give a snapshot ID (restore snapshots lists the readable ones)",
				hit[0].Name, more, hit[0].Err)
		}
		return nil, fmt.Errorf("snapshot %q: damaged snapshot %s%s: %v", ref, hit[0].Name, more, hit[0].Err)
	}
	return chunkstore.FindSnapshot(snaps, ref)
}
