package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/cli"
	"github.com/syncd/syncd/transfer/tlsid"
)

func idCmd() *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "id --config FILE [--json]",
		Short: "Print this node's ID, creating its TLS identity on first use",
		Long: `id prints this node's ID: the fingerprint of its TLS key, which the other
nodes list under peers (id:) to let it in. On first use it creates the key
(node.key, mode 0600) and a self-signed certificate (node.crt) in
node.state_dir; later it reads them. The ID never changes while node.key stays.`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" {
				return cli.Usage("no configuration given: use --config FILE")
			}
			cfg, err := config.LoadNode(path)
			if err != nil {
				return err
			}
			id, err := tlsid.LoadOrCreate(cfg.Node.StateDir)
			if err != nil {
				return err
			}
			if asJSON {
				return cli.PrintJSON(cmd.OutOrStdout(), map[string]string{"id": id.ID.String()})
			}
			fmt.Fprintln(cmd.OutOrStdout(), id.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file")
	cli.AddJSON(cmd, &asJSON)
	return cmd
}
