package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/checker"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
)

func verifyCmd() *cobra.Command {
	var f cli.RepoFlags
	var readData, asJSON bool
	var sel pick
	cmd := &cobra.Command{
		Use:   "verify --repo R --index-key F|--identity F [--read-data] [--host H]… [--path P]… [--tag T]… [--time T] [--json]",
		Short: "Check the repository's integrity",
		Long: `verify checks that every index, snapshot and tree can be read, and that every
pack a snapshot needs is present with the size the index records. With
--read-data (and --identity) it also downloads every pack and checks that each
blob decrypts and hashes to its ID. Each problem is printed on one line with
the object at fault and the files it affects; any problem exits with 1.

--host, --path, --tag and --time (as for restore) limit the walk to the
snapshots they select: only their trees and files are checked. The index and
the packs are checked in full either way (--read-data reads every pack). A
--host that no snapshot has, or a selection of no snapshot, is an error.

--json prints {"snapshots","packs","packs_read","blobs","unreferenced",
"problems":[{"object","error","files"}],"ok"}; the exit code is the same.`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if readData && f.Identity == "" {
				return cli.Usage("--read-data needs the data identity: use --identity FILE or SYNCD_IDENTITY")
			}
			ctx := cmd.Context()
			repo, _, err := f.Open(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			opts := checker.Options{ReadData: readData}
			if sel.set() {
				snaps, bad, err := repo.Snapshots(ctx)
				if err != nil {
					return err
				}
				keep, err := sel.narrow(snaps, len(bad))
				if err != nil {
					return err
				}
				chosen := map[chunkstore.ID]bool{}
				for _, sn := range keep {
					chosen[sn.ID()] = true
				}
				opts.Select = func(sn *chunkstore.Snapshot) bool { return chosen[sn.ID()] }
			}
			var read atomic.Int64
			opts.PacksRead = &read
			tick := cli.StartTicker(func(d time.Duration) string {
				return fmt.Sprintf("[%s] %d packs read", d.Truncate(time.Second), read.Load())
			})
			rep, err := checker.Check(ctx, repo, opts)
			tick.Stop()
			if err != nil {
				return f.KeyError(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				type problem struct {
					Object string   `json:"object"`
					Error  string   `json:"error"`
					Files  []string `json:"files"`
				}
				probs := []problem{}
				for _, p := range rep.Problems {
					probs = append(probs, problem{p.Object, p.Err, append([]string{}, p.Files...)})
				}
				if err := cli.PrintJSON(out, map[string]any{"snapshots": rep.Snapshots, "packs": rep.Packs, "packs_read": rep.PacksRead,
					"blobs": rep.Blobs, "unreferenced": rep.Unused, "problems": probs, "ok": rep.OK()}); err != nil {
					return err
				}
				if !rep.OK() {
					return fmt.Errorf("repository %s has %d problem(s)", f.Repo, len(rep.Problems))
				}
				return nil
			}
			for _, p := range rep.Problems {
				fmt.Fprintln(out, "error:", p)
			}
			fmt.Fprintf(out, "%d snapshots, %d packs (%d read), %d blobs; %d unreferenced packs\n",
				rep.Snapshots, rep.Packs, rep.PacksRead, rep.Blobs, rep.Unused)
			if !rep.OK() {
				return fmt.Errorf("repository %s has %d problem(s)", f.Repo, len(rep.Problems))
			}
			fmt.Fprintln(out, "no problems found")
			return nil
		},
	}
	f.Register(cmd, true)
	sel.register(cmd, true)
	cli.AddJSON(cmd, &asJSON)
	cmd.Flags().BoolVar(&readData, "read-data", false, "download and verify every pack (needs --identity)")
	return cmd
}
