// Command restore is the operator's tool for a syncd repository: list
// snapshots, browse them, restore all or part of one, verify the
// repository. See `restore --help`.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/internal/cli"
	"github.com/syncd/syncd/restorer"
)

func main() {
	// As for syncd: the heap is byte buffers, cheap to collect often.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	cli.Main("restore", func(ctx context.Context) error {
		root := restoreCmd()
		root.AddCommand(snapshotsCmd(), lsCmd(), diffCmd(), statsCmd(), dumpCmd(), findCmd(), verifyCmd(), pruneCmd(), drillCmd(), keyCmd())
		cli.AddVersion(root, "restore")
		cli.Prepare(root)
		return root.ExecuteContext(ctx)
	})
}

func restoreCmd() *cobra.Command {
	var f cli.RepoFlags
	var sel pick
	var target string
	var include []string
	var overwrite, asJSON bool
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT --repo R [--index-key F] --identity F --target DIR [--include PATH]… [--overwrite] [--host H]… [--path P]… [--tag T]… [--time T] [--json]",
		Short: "Restore a snapshot of a syncd repository",
		Long: `restore writes the files of SNAPSHOT (an ID, a unique ID prefix, or "latest")
under DIR, at their full snapshot paths (DIR/var/www/…). --include limits it to
paths of the snapshot and everything below them. Each file is written under a
temporary name and renamed into place when complete and verified. Nothing is
written outside DIR. A non-empty DIR is refused unless --overwrite.

With --host, --path, --tag and --time, "latest" is the newest snapshot they
select: of that host, including that path, with those tags, taken at or
before that time (the tree as it was before a bad deploy). A --host that no
snapshot has is an error (exit 1) naming the hosts that have snapshots.

Without --index-key, the index key sealed in the repository is opened with
the data identity (docs/RECOVERY.md).

--json prints {"snapshot","target","files","dirs","symlinks","hardlinks",
"bytes","seconds","not_restored":[…]} instead of the summary line.`,
		Args: cli.Args(1, 1, "one SNAPSHOT (ID, ID prefix or latest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if target == "" {
				return cli.Usage("no target given: use --target DIR")
			}
			if f.Identity == "" {
				return cli.Usage("restoring file contents needs the data identity: use --identity FILE or SYNCD_IDENTITY")
			}
			ctx := cmd.Context()
			repo, badIdx, err := f.Open(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
			for _, e := range badIdx {
				fmt.Fprintf(os.Stderr, "warning: %s\n", e.Err)
			}
			sn, err := sel.find(ctx, repo, args[0])
			if err != nil {
				return err
			}
			// One listing of the packs: where a blob has a copy in a pack
			// that exists, that copy is read.
			dropped, err := repo.DropMissingPacks(ctx)
			if err != nil {
				return err
			}
			for _, name := range dropped {
				fmt.Fprintf(os.Stderr, "warning: %s is missing or truncated; files that need it cannot be restored (restore verify lists them)\n", name)
			}
			prog := new(restorer.Progress)
			tick := cli.StartTicker(func(d time.Duration) string {
				return fmt.Sprintf("[%s] %d files, %s of %s, %s", d.Truncate(time.Second), prog.FilesDone.Load(),
					cli.Bytes(prog.BytesWritten.Load()), cli.Bytes(prog.BytesTotal.Load()), cli.Rate(prog.BytesWritten.Load(), d))
			})
			start := time.Now()
			res, err := restorer.Restore(ctx, repo, sn, restorer.Options{
				Target: target, Include: include, Overwrite: overwrite, Logger: log, Progress: prog,
			})
			tick.Stop()
			if err != nil {
				return f.KeyError(err)
			}
			if asJSON {
				notRestored := []string{}
				for _, e := range res.Errors {
					notRestored = append(notRestored, e.Error())
				}
				if err := cli.PrintJSON(cmd.OutOrStdout(), map[string]any{"snapshot": sn.ID().String(), "target": target,
					"files": res.Files, "dirs": res.Dirs, "symlinks": res.Symlinks, "hardlinks": res.Hardlinks, "bytes": res.Bytes,
					"seconds": time.Since(start).Seconds(), "not_restored": notRestored}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "restored snapshot %s to %s: %d files, %d dirs, %d symlinks, %d hard links, %s in %s\n",
					sn.ID().Short(), target, res.Files, res.Dirs, res.Symlinks, res.Hardlinks, cli.Bytes(res.Bytes),
					time.Since(start).Round(time.Millisecond))
			}
			if len(res.Errors) > 0 {
				for _, e := range res.Errors {
					fmt.Fprintf(os.Stderr, "not restored: %s\n", e)
				}
				return cli.Partial{Msg: fmt.Sprintf("%d file(s) could not be restored", len(res.Errors))}
			}
			return nil
		},
	}
	f.Register(cmd, true)
	sel.register(cmd, true)
	cmd.Flags().StringVarP(&target, "target", "t", "", "directory to restore into")
	cmd.Flags().StringArrayVar(&include, "include", nil, "snapshot path to restore, with everything below it (repeatable)")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "restore into a non-empty target, replacing what is there")
	cli.AddJSON(cmd, &asJSON)
	return cmd
}
