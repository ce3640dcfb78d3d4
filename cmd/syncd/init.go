package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/cli"
)

func initCmd() *cobra.Command {
	var f cli.RepoFlags
	var tf cli.TargetFlags
	var recipients []string
	var copyFrom string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "init --repo R --index-key F --data-recipient age1… [--data-recipient …] [--json]",
		Short: "Create a repository",
		Long: `init creates a repository. File contents will be encrypted to the data
recipients (public keys; their private keys stay off the web nodes); indexes,
trees and snapshots to the index key, which init creates at F when missing
(mode 0600, and its missing directories with mode 0700).

With --copy-from SRC, init makes a copy target of the repository SRC for
syncd copy: SRC's chunker, chunk-ID key, index key (F, which must be SRC's)
and data recipients, under a repository ID of its own. SRC is reached the
standard AWS way; the new repository (R, the copy target) with the --to-
flags and SYNCD_COPY_* variables, as in syncd copy, where they are set.`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.IndexKey == "" {
				return cli.Usage("no index key given: use --index-key or SYNCD_INDEX_KEY")
			}
			if copyFrom != "" {
				if asJSON {
					return cli.Usage("--json with --copy-from: not built yet; leave out --json")
				}
				if len(recipients) > 0 {
					return cli.Usage("--data-recipient with --copy-from: a copy target takes the data recipients of the repository it copies")
				}
				t, err := tf.Target(f.Repo)
				if err != nil {
					return err
				}
				return initCopyFrom(cmd.Context(), cmd.OutOrStdout(), t, copyFrom, f.IndexKey)
			}
			if how := tf.Given(); how != "" {
				return cli.Usage("%s: the settings of a copy target are only for init --copy-from", how)
			}
			if len(recipients) == 0 {
				return cli.Usage("no data recipient given: use --data-recipient age1… (from syncd keygen or age-keygen)")
			}
			for _, r := range recipients {
				if _, err := crypto.ParseRecipient(r); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			created := false
			if _, err := os.Stat(f.IndexKey); errors.Is(err, os.ErrNotExist) {
				id, err := crypto.GenerateIdentityFile(f.IndexKey)
				if err != nil {
					return err
				}
				created = true
				if !asJSON {
					fmt.Fprintf(out, "created index key %s (public key %s)\n", f.IndexKey, id.Recipient())
				}
			}
			key, err := crypto.LoadIndexKey(f.IndexKey)
			if err != nil {
				return err
			}
			be, err := cli.Backend(cmd.Context(), f.Repo, true)
			if err != nil {
				return err
			}
			defer be.Close()
			cfg, err := chunkstore.Init(cmd.Context(), be, key, chunkstore.InitOptions{DataRecipients: recipients})
			if err != nil {
				return fmt.Errorf("repository %s: %w", f.Repo, err)
			}
			if asJSON {
				return cli.PrintJSON(out, map[string]any{"repository": f.Repo, "id": cfg.ID, "index_key": f.IndexKey,
					"index_key_created": created, "index_recipient": cfg.IndexRecipient, "data_recipients": cfg.DataRecipients})
			}
			fmt.Fprintf(out, "initialized repository %s (id %s)\n", f.Repo, cfg.ID[:16])
			return nil
		},
	}
	f.Register(cmd, false)
	cmd.Flags().StringArrayVar(&recipients, "data-recipient", nil, "age public key that file contents are encrypted to (repeatable)")
	cli.AddJSON(cmd, &asJSON)
	cmd.Flags().StringVar(&copyFrom, "copy-from", "", "make a copy target of this repository (for syncd copy): its chunker, keys and recipients")
	tf.Register(cmd)
	return cmd
}
