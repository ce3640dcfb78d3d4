package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/internal/cli"
)

func revertCmd() *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revert --config FILE FOLDER [--json]",
		Short: "Throw away the local changes of a receive-only folder and take the peers' versions again",
		Long: `revert asks the running daemon to remove what was changed locally in a
receive-only folder (the paths syncd status counts as local changes) and
to fetch the peers' versions again.`,
		Args: cli.Args(1, 1, "one folder ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res struct {
				Reverted []string `json:"reverted"`
			}
			if err := postFolder(cmd, path, "revert", args[0], &res); err != nil {
				return err
			}
			if asJSON {
				if res.Reverted == nil {
					res.Reverted = []string{}
				}
				return cli.PrintJSON(cmd.OutOrStdout(), map[string]any{"folder": args[0], "reverted": res.Reverted})
			}
			for _, p := range res.Reverted {
				fmt.Fprintf(cmd.OutOrStdout(), "reverted %q\n", p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d local changes reverted in %s; the peers' versions follow\n", len(res.Reverted), args[0])
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file")
	cli.AddJSON(cmd, &asJSON)
	return cmd
}
