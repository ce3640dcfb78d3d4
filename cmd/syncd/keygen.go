package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/cli"
)

func keygenCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "keygen FILE [--json]",
		Short: "Create an age identity file (mode 0600) and print its public key",
		Long: `keygen writes a new X25519 age identity to FILE, in the format of age-keygen,
with mode 0600 (missing directories with mode 0700), and prints its public
key (age1…). It never overwrites a file.

Use it for the index key of the writing nodes, and, on the operator's machine,
for the data identity whose public key is given to init as --data-recipient.`,
		Args: cli.Args(1, 1, "one FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := crypto.GenerateIdentityFile(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return cli.PrintJSON(cmd.OutOrStdout(), map[string]string{"file": args[0], "recipient": id.Recipient().String()})
			}
			fmt.Fprintln(cmd.OutOrStdout(), id.Recipient())
			return nil
		},
	}
	cli.AddJSON(cmd, &asJSON)
	return cmd
}
