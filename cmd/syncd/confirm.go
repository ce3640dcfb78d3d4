package main

import (
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/internal/cli"
)

func confirmDeletesCmd() *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "confirm-deletes --config FILE FOLDER [--json]",
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
			var res struct{}
			if err := postFolder(cmd, path, "confirm-deletes", args[0], &res); err != nil {
				return err
			}
			if asJSON {
				return cli.PrintJSON(cmd.OutOrStdout(), map[string]any{"folder": args[0], "confirmed": true})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deletes confirmed in %s; the peers delete the files too\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file")
	cli.AddJSON(cmd, &asJSON)
	return cmd
}

// postFolder asks the daemon of the configuration at path to run action
// (an endpoint: POST /ACTION?folder=FOLDER) and decodes its answer into
// res; an answer with an "error" is the command's error.
func postFolder(cmd *cobra.Command, path, action, folder string, res any) error {
	if path == "" {
		return cli.Usage("no configuration given: use --config FILE")
	}
	dc, err := daemonURL(path)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if _, err := dc.ask(cmd.Context(), "POST", "/"+action+"?folder="+url.QueryEscape(folder), &raw); err != nil {
		return err
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &e); err == nil && e.Error != "" {
		return fmt.Errorf("%s %s: %s", action, folder, e.Error)
	}
	return json.Unmarshal(raw, res)
}
