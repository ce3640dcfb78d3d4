package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/internal/cli"
)

func confirmDeletesCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "confirm-deletes --config FILE FOLDER",
		Short: "Let a held-back mass delete go to the peers",
		Long: `A batch of local changes that deletes more than the folder's max_delete
share of its files (and at least 10 files) is held back: the other changes
go to the peers, the deletes do not, and the folder is failed. If the
deletes are intended, confirm-deletes asks the running daemon to scan the
folder again and send them. If they are not (a disk that did not mount, a
deploy gone wrong), put the files back instead: the next scan that finds
them clears the hold.`,
		Args: cli.Args(1, 1, "one folder ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" {
				return cli.Usage("no configuration given: use --config FILE")
			}
			dc, err := daemonURL(path)
			if err != nil {
				return err
			}
			var res struct {
				Error string `json:"error"`
			}
			if _, err := dc.ask(cmd.Context(), "POST", "/confirm-deletes?folder="+url.QueryEscape(args[0]), &res); err != nil {
				return err
			}
			if res.Error != "" {
				return fmt.Errorf("confirm-deletes %s: %s", args[0], res.Error)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deletes confirmed in %s; the peers delete the files too\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file")
	return cmd
}
