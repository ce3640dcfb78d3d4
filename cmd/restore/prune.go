package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
)

func pruneCmd() *cobra.Command {
	var f cli.RepoFlags
	var p cli.PruneFlags
	cmd := &cobra.Command{
		Use:   "prune --repo R [--index-key F] --identity F [--repack] [--max-unused P%] [--dry-run] [--wait D] [--json]",
		Short: "Delete unused packs; with --repack, rewrite mostly unused content packs",
		Long: `prune deletes the packs no snapshot references, like syncd prune. With --repack
and the data identity it also rewrites the content packs of which more than
--max-unused is unused: their used blobs are checked against their IDs and
copied into new packs, and the old packs are deleted.`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if p.Repack && f.Identity == "" {
				return cli.Usage("--repack needs the data identity: use --identity FILE or SYNCD_IDENTITY")
			}
			ctx := cmd.Context()
			// prune reads the index itself; the identity check needs it
			open := f.OpenNoIndex
			if p.Repack {
				open = func(ctx context.Context) (*chunkstore.Repository, error) {
					repo, _, err := f.Open(ctx)
					return repo, err
				}
			}
			repo, err := open(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			if p.Repack {
				if err := repo.CheckDataIdentity(ctx); err != nil {
					return f.KeyError(err)
				}
			}
			return cli.RunPrune(ctx, repo, f.Repo, p, "restore prune", cmd.OutOrStdout())
		},
	}
	f.Register(cmd, true)
	p.Register(cmd, true)
	return cmd
}
