package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/archiver"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
	"github.com/syncd/syncd/retention"
)

func snapshotCmd() *cobra.Command {
	var f cli.RepoFlags
	var host, at string
	var tags []string
	var force, asJSON bool
	var cfgPath string
	var lockWait time.Duration
	cmd := &cobra.Command{
		Use:   "snapshot --repo R --index-key F [--host H] [--tag T]… [--time T] [--json] PATH… | snapshot --config FILE [--json]",
		Short: "Write a snapshot of PATHs into the repository",
		Long: `snapshot writes a snapshot of the given files and directories. Files whose
size, mtime, ctime and inode match the previous snapshot of the same host and
paths are not read again. Files that cannot be read are listed on stderr and
the snapshot is marked partial (exit code 3).

With --config, the running daemon (syncd run) writes the snapshot from its
index instead: no walk, only what changed since its last snapshot is read.

--json prints {"id","short_id","time","host","paths","tags","stats":{…},
"seconds","skipped":[…]}; with --config, the daemon's answer
{"id","time","result","error","files_read","took"}.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cfgPath != "" {
				return cli.Args(0, 0, "no PATH with --config")(cmd, args)
			}
			return cli.Args(1, -1, "at least one PATH")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfgPath != "" {
				for _, name := range []string{"host", "tag", "time", "force"} {
					if cmd.Flags().Changed(name) {
						return cli.Usage("--%s is not taken with --config: the daemon snapshots its folders as configured", name)
					}
				}
				return snapshotFromDaemon(cmd, cfgPath, asJSON)
			}
			ctx := cmd.Context()
			when := time.Now()
			if at != "" {
				t, err := time.ParseInLocation(time.DateTime, at, time.Local)
				if err != nil {
					return cli.Usage("--time %q: want \"YYYY-MM-DD HH:MM:SS\"", at)
				}
				when = t
			}
			if host == "" {
				host, _ = os.Hostname()
			}
			// The write session's shared lock keeps a prune from deleting
			// what this snapshot references; the index is read under it,
			// without the blobs of missing packs (stored again).
			repo, sess, err := f.BeginWrite(ctx, "syncd snapshot", lockWait, false)
			if err != nil {
				return err
			}
			defer repo.Close()
			defer sess.Close()
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			for _, e := range sess.BadIndex {
				log.Warn("index object unreadable; its blobs will be stored again", "object", e.Name, "err", e.Err)
			}
			for _, name := range sess.Dropped {
				log.Warn("pack missing or truncated; its blobs will be stored again", "object", name)
			}
			var parent *chunkstore.Snapshot
			if !force {
				if parent, err = findParent(cmd, repo, host, args); err != nil {
					return err
				}
			}
			prog := new(archiver.Progress)
			tick := cli.StartTicker(func(d time.Duration) string {
				return fmt.Sprintf("[%s] %d files, %d read, %s read, %s",
					d.Truncate(time.Second), prog.Files.Load(), prog.FilesRead.Load(),
					cli.Bytes(prog.BytesRead.Load()), cli.Rate(prog.BytesRead.Load(), d))
			})
			start := time.Now()
			res, err := archiver.Snapshot(ctx, repo, args, archiver.Options{
				Host: host, Tags: splitTags(tags), Time: when, Parent: parent, Logger: log, Progress: prog,
			})
			tick.Stop()
			if err != nil {
				return err
			}
			st := res.Snapshot.Stats
			out := cmd.OutOrStdout()
			if asJSON {
				skipped := []string{}
				for _, e := range res.Errors {
					skipped = append(skipped, e.Error())
				}
				sn := res.Snapshot
				if err := cli.PrintJSON(out, map[string]any{"id": res.ID.String(), "short_id": res.ID.Short(), "time": sn.Time,
					"host": sn.Host, "paths": sn.Paths, "tags": append([]string{}, sn.Tags...), "stats": st,
					"seconds": time.Since(start).Seconds(), "skipped": skipped}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "snapshot %s saved: %d files, %d dirs, %s; read %d files, added %d blobs (%s stored) in %s\n",
					res.ID.Short(), st.Files, st.Dirs, cli.Bytes(st.Bytes), st.FilesRead, st.BlobsAdded,
					cli.Bytes(st.BytesAdded), time.Since(start).Round(time.Millisecond))
			}
			if len(res.Errors) > 0 {
				for _, e := range res.Errors {
					fmt.Fprintf(os.Stderr, "skipped: %s\n", e)
				}
				return cli.Partial{Msg: fmt.Sprintf("snapshot %s is partial: %d file(s) could not be read", res.ID.Short(), len(res.Errors))}
			}
			return nil
		},
	}
	f.Register(cmd, false)
	cmd.Flags().StringVar(&host, "host", "", "host name recorded in the snapshot (default: this host)")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tags for the snapshot, comma-separated (repeatable): --tag a,b is the two tags a and b")
	cmd.Flags().StringVar(&at, "time", "", `snapshot time, "YYYY-MM-DD HH:MM:SS" in local time (default: now)`)
	cmd.Flags().DurationVar(&lockWait, "wait", time.Hour, "how long to wait for a running prune to finish")
	cli.AddJSON(cmd, &asJSON)
	cmd.Flags().BoolVar(&force, "force", false, "read every file, ignoring the previous snapshot")
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "ask the daemon of this configuration for a snapshot from its index")
	return cmd
}

// findParent returns the newest snapshot of the same host and paths.
func findParent(cmd *cobra.Command, repo *chunkstore.Repository, host string, paths []string) (*chunkstore.Snapshot, error) {
	var abs []string
	for _, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		abs = append(abs, a)
	}
	slices.Sort(abs)
	snaps, _, err := repo.Snapshots(cmd.Context())
	if err != nil {
		return nil, err
	}
	for i := len(snaps) - 1; i >= 0; i-- {
		if snaps[i].Host == host && slices.Equal(snaps[i].Paths, abs) {
			return snaps[i], nil
		}
	}
	return nil, nil
}

// splitTags turns --tag values into tags, as restic does: each value is a
// comma-separated list; spaces around a tag and empty tags are dropped, and
// a tag given twice is kept once.
func splitTags(flags []string) []string {
	var tags []string
	for _, l := range retention.TagLists(flags) {
		for _, t := range l {
			if t != "" && !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
	}
	return tags
}
