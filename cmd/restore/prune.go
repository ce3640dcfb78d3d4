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
		Use:   "prune --repo R [--index-key F] --identity F [--repack] [--reseal] [--max-unused P%] [--dry-run] [--wait D] [--json]",
		Short: "Delete unused packs; with --repack, rewrite mostly unused content packs; with --reseal, seal old packs to the current keys",
		Long: `prune deletes the packs no snapshot references, like syncd prune. With --repack
and the data identity it also rewrites the content packs of which more than
--max-unused is unused: their used blobs are checked against their IDs and
copied into new packs, and the old packs are deleted.

With --reseal and the data identity it also rewrites, the same way, every
used pack (content and tree) that is not sealed to the recipients the config
names now: after restore key add and remove, the packs written before are
sealed to the old list, and a removed key opens them until they are
resealed. Which packs: the index records the recipients each pack was sealed
to (an age header does not name them); packs without that record (written
before syncd kept it) are resealed once. The
identity must open every pack to reseal: give one that holds the removed key
too (an identity file takes one key a line: cat old.key new.key > both.key);
prune checks that first and writes nothing if it does not. The index is
written again as always; snapshot and drill records are not rewritten (they
stay sealed to the old keys; restore key rotate-index reseals them).
--dry-run says what it would reseal, by the recipients recorded, and writes
nothing.

A prune stopped at any point (even kill -9) leaves a repository that
verifies: new packs first, then the new index, then the old index objects
and packs are deleted; the next prune finishes the work.`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if p.Repack && f.Identity == "" {
				return cli.Usage("--repack needs the data identity: use --identity FILE or SYNCD_IDENTITY")
			}
			if p.Reseal && f.Identity == "" {
				return cli.Usage("--reseal needs the data identity that opens the packs to reseal: use --identity FILE or SYNCD_IDENTITY")
			}
			ctx := cmd.Context()
			// prune reads the index itself; the identity check needs it
			// (--reseal checks every pack it reseals instead)
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
