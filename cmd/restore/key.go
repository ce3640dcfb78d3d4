package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/cli"
)

func keyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key list|add|remove|rotate-index",
		Short: "List the repository's keys, add or remove a data recipient, rotate the index key",
		Long: `key lists the repository's keys and changes its data recipients
(docs/FORMAT.md, Keys). Each needs the index key (--index-key, or the data
identity that opens the sealed one).`,
	}
	cmd.AddCommand(keyListCmd(), keyChangeCmd("add"), keyChangeCmd("remove"), keyRotateCmd())
	return cmd
}

func keyListCmd() *cobra.Command {
	var f cli.RepoFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --repo R --index-key F|--identity F [--json]",
		Short: "List the index recipient and the data recipients",
		Long: `list prints each key of the repository: its role (index or data), its
fingerprint, its public key, whether the config names it (new objects are
sealed to the keys it names) and its keys/ object. A key with an object but
not in the config was removed (restore key remove); old content packs may
still be sealed to it. --json prints one JSON array.`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, err := f.OpenNoIndex(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			keys, err := repo.Keys(ctx)
			if err != nil {
				return fmt.Errorf("repository %s: %w", f.Repo, err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(keys)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ROLE\tFINGERPRINT\tIN CONFIG\tRECIPIENT")
			for _, k := range keys {
				in := "yes"
				if !k.InConfig {
					in = "no (removed)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Role, k.Fingerprint, in, k.Recipient)
			}
			return tw.Flush()
		},
	}
	f.Register(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// keyChangeCmd is key add or key remove.
func keyChangeCmd(verb string) *cobra.Command {
	var f cli.RepoFlags
	var rcpt string
	var asJSON bool
	var wait time.Duration
	long := map[string]string{
		"add": `add makes RECIPIENT (age1…) a data recipient: content packs written from
now on are sealed to it too, and so is the sealed index key, so that its
identity alone opens the repository. Packs written before stay sealed to the
recipients they were written for. Running daemons seal to it from their next
snapshot on; they need no restart (their index key does not change).`,
		"remove": `remove takes RECIPIENT off the data recipients: content packs written from
now on are not sealed to it, nor is the sealed index key. Packs written before
still are: its identity opens them until they are rewritten. Removing the last
data recipient is refused. Running daemons follow from their next snapshot on.`,
	}[verb]
	cmd := &cobra.Command{
		Use:   verb + " --data-recipient age1… --repo R --index-key F|--identity F [--json]",
		Short: map[string]string{"add": "Add a data recipient", "remove": "Remove a data recipient"}[verb],
		Long: long + `

It takes the repository's exclusive lock (waiting up to --wait for running
snapshots and prunes) and writes the config last (docs/FORMAT.md, Keys).
--json prints the data recipients after the change.`,
		Args: cli.Args(0, 0, "no arguments (the recipient is --data-recipient)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rcpt == "" {
				return cli.Usage("no recipient given: use --data-recipient age1…")
			}
			ctx := cmd.Context()
			repo, err := f.OpenNoIndex(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			sess, err := repo.BeginExclusive(ctx, chunkstore.WriteOptions{
				LockOptions: cli.LockLogger(os.Stderr, chunkstore.LockOptions{Program: "restore key " + verb, Wait: wait})})
			if err != nil {
				return fmt.Errorf("repository %s: %w", f.Repo, err)
			}
			defer sess.Close()
			var cfg chunkstore.Config
			if verb == "add" {
				cfg, err = repo.AddDataRecipient(ctx, sess, rcpt)
			} else {
				cfg, err = repo.RemoveDataRecipient(ctx, sess, rcpt)
			}
			if err != nil && len(cfg.DataRecipients) == 0 {
				return fmt.Errorf("repository %s: %w; nothing was changed", f.Repo, err)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "warning: %v\n", err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(map[string]any{"data_recipients": cfg.DataRecipients})
			}
			past := map[string]string{"add": "added", "remove": "removed"}[verb]
			fmt.Fprintf(out, "%s data recipient %s; %d data recipient(s) now\n", past, rcpt, len(cfg.DataRecipients))
			return nil
		},
	}
	f.Register(cmd, true)
	cmd.Flags().StringVar(&rcpt, "data-recipient", "", "the age public key (age1…)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the data recipients after the change as JSON")
	cmd.Flags().DurationVar(&wait, "wait", time.Hour, "how long to wait for running snapshots and prunes")
	return cmd
}

func keyRotateCmd() *cobra.Command {
	var f cli.RepoFlags
	var newKey string
	var asJSON bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-index --new-index-key F --repo R --index-key OLD|--identity F [--json]",
		Short: "Replace the index key: every metadata object sealed again, the old key refused",
		Long: `rotate-index makes F (created, mode 0600, when missing) the repository's index
key. Under the exclusive lock it seals every tree pack, index, snapshot and
drill record again to F's key and the data recipients, under a new
generation prefix, keeps the chunk-ID key (sealed in the config, so blob IDs
and deduplication do not change), then writes the config (the switch), then
deletes the old metadata. Snapshot IDs change (they name the stored bytes).
An interruption leaves a repository that the old key reads (before the
switch) or the new key reads (after it); run the command again: with the
old key before the switch, with F as both keys after it, to finish. The
format becomes version 2: older syncd binaries refuse the repository.

Daemons with the old key refuse to snapshot ("not this repository's index
key", the snapshot failed alert) until they get F and are restarted
(docs/adr/0003-index-key-rotation.md). A leaked old key still derives the
chunk-ID key: only a new repository ends that (docs/FORMAT.md, Keys).`,
		Args: cli.Args(0, 0, "no arguments (the new key is --new-index-key)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if newKey == "" {
				return cli.Usage("no new index key given: use --new-index-key FILE")
			}
			if _, err := os.Stat(newKey); errors.Is(err, os.ErrNotExist) {
				if _, err := crypto.GenerateIdentityFile(newKey); err != nil {
					return err
				}
			}
			key, err := crypto.LoadIndexKey(newKey)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			repo, err := f.OpenNoIndex(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			sess, err := repo.BeginExclusive(ctx, chunkstore.WriteOptions{
				LockOptions: cli.LockLogger(os.Stderr, chunkstore.LockOptions{Program: "restore key rotate-index", Wait: wait})})
			if err != nil {
				return fmt.Errorf("repository %s: %w", f.Repo, err)
			}
			defer sess.Close()
			cfg, err := repo.RotateIndexKey(ctx, sess, key, cli.KillHook(os.Getenv("SYNCD_TEST_ROTATE_KILL")))
			if err != nil {
				return fmt.Errorf("repository %s: %w", f.Repo, err)
			}
			if asJSON {
				return cli.PrintJSON(cmd.OutOrStdout(), map[string]any{"index_recipient": cfg.IndexRecipient, "index_key": newKey, "meta_prefix": cfg.MetaPrefix})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "index key rotated: the repository's index key is now %s (public key %s); give it to the writing nodes and restart syncd run\n",
				newKey, cfg.IndexRecipient)
			return nil
		},
	}
	f.Register(cmd, true)
	cmd.Flags().StringVar(&newKey, "new-index-key", "", "the new index key file (created when missing)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the new index recipient as JSON")
	cmd.Flags().DurationVar(&wait, "wait", time.Hour, "how long to wait for running snapshots and prunes")
	return cmd
}
