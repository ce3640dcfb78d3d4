package main

import (
	"context"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
)

func pruneCmd() *cobra.Command {
	var f cli.RepoFlags
	var p cli.PruneFlags
	cmd := &cobra.Command{
		Use:   "prune --repo R --index-key F [--max-unused P%] [--dry-run] [--wait D] [--json]",
		Short: "Delete the packs no snapshot references",
		Long: `prune reads every snapshot's trees and deletes the packs no snapshot uses, the
packs no index lists (left by runs that died) and the index objects it
supersedes. It needs only the index key: tree packs that are partly used are
rewritten; content packs that are partly used are kept (restore prune --repack,
with the data identity, rewrites them).

prune takes the repository's exclusive lock: it waits (--wait) for running
snapshots to finish, and snapshots that start meanwhile wait for it. Deleting
needs storage credentials with delete rights (docs/S3.md). An index or
snapshot that cannot be read stops prune before it deletes anything.`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, err := f.OpenNoIndex(ctx) // prune reads the index itself
			if err != nil {
				return err
			}
			defer repo.Close()
			return cli.RunPrune(ctx, repo, f.Repo, p, "syncd prune", cmd.OutOrStdout())
		},
	}
	f.Register(cmd, false)
	p.Register(cmd, false)
	return cmd
}

// forget --prune runs what syncd prune runs, with its defaults.
func init() {
	pruneAfterForget = func(ctx context.Context, repo *chunkstore.Repository, url string) error {
		return cli.RunPrune(ctx, repo, url, cli.PruneFlags{MaxUnused: "10%", Wait: time.Hour}, "syncd forget --prune", os.Stdout)
	}
}
