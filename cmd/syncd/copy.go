package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/copier"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/cli"
)

func copyCmd() *cobra.Command {
	var f cli.RepoFlags
	var tf cli.TargetFlags
	var to string
	var hosts []string
	var lockWait time.Duration
	var workers int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "copy --repo R --index-key F --to URL [--to-endpoint E …] [--host H]… [SNAPSHOT…]",
		Short: "Copy snapshots to a second repository (another bucket, region or provider)",
		Long: `copy copies the snapshots of the repository that the target (--to) lacks,
with every pack they need that the target lacks: packs, trees and snapshots
travel as they are, still encrypted, so the index key is all it needs. Given
SNAPSHOTs (IDs or unique prefixes) or --host, only those are copied.

The target must be a copy target of the repository: made with
syncd init --repo URL --copy-from R --index-key F, which gives it the same
chunker, chunk-ID key, index key and data recipients. Any other is refused
before anything is written.

copy uploads packs first, then the index object listing them, then the
snapshots, so a copy stopped at any point leaves no snapshot in the target
that points at missing data; the next copy sends only the packs still
missing. Each repository keeps its own retention: forget and prune on one
do not touch the other.

The source is reached the standard AWS way (AWS_ENDPOINT_URL, AWS_REGION,
AWS_ACCESS_KEY_ID, SYNCD_S3_*; docs/S3.md). A target in another store, or
with other credentials, takes its own settings from the --to- flags, or
else from the variables SYNCD_COPY_ENDPOINT, SYNCD_COPY_REGION, … (the key
of each flag in capitals): those are the keys of a repository.copies entry
of the daemon's configuration. A setting neither gives is the
environment's, as for the source. With --to-credentials-file, only that
file's keys are used for the target.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return cli.Usage("no copy target given: use --to URL")
			}
			target, err := tf.Target(to)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			src, err := f.OpenNoIndex(ctx)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := openCopyTarget(ctx, src, target)
			if err != nil {
				return err
			}
			defer dst.Close()
			sel, err := copySelection(ctx, src, hosts, args)
			if err != nil {
				return err
			}
			prog := new(copier.Progress)
			tick := cli.StartTicker(func(d time.Duration) string {
				return fmt.Sprintf("[%s] %d trees read, %d of %d packs sent, %s",
					d.Truncate(time.Second), prog.Trees.Load(), prog.Packs.Load(), prog.PacksToCopy.Load(), cli.Bytes(prog.Bytes.Load()))
			})
			start := time.Now()
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			res, err := copier.Copy(ctx, src, dst, copier.Options{
				Select:     sel,
				SourceLock: cli.LockLogger(os.Stderr, chunkstore.LockOptions{Program: "syncd copy", Wait: lockWait}),
				TargetLock: cli.LockLogger(os.Stderr, chunkstore.LockOptions{Program: "syncd copy", Wait: lockWait}),
				Workers:    workers,
				Logger:     log,
				Progress:   prog,
				Hook:       cli.KillHook(os.Getenv("SYNCD_TEST_COPY_KILL")),
			})
			tick.Stop()
			if err != nil {
				return fmt.Errorf("copy %s to %s: %w", f.Repo, to, err)
			}
			if err := printCopy(cmd.OutOrStdout(), to, res, time.Since(start), asJSON); err != nil {
				return err
			}
			if n := len(res.Failed); n > 0 {
				return fmt.Errorf("%d snapshot(s) not copied, the source cannot provide all of them; first: %s: %s",
					n, res.Failed[0].Snapshot[:8], res.Failed[0].Error)
			}
			return nil
		},
	}
	f.Register(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&to, "to", "", "the copy target: a directory or s3://BUCKET[/PREFIX], made with syncd init --copy-from")
	fl.StringArrayVar(&hosts, "host", nil, "copy only the snapshots of this host (repeatable)")
	fl.DurationVar(&lockWait, "wait", time.Hour, "how long to wait for a running prune of either repository to finish")
	fl.IntVar(&workers, "workers", 8, "packs copied at once (each takes one pack's size in memory, about 16 MiB)")
	fl.BoolVar(&asJSON, "json", false, `print one JSON object: {"target","snapshots":[…],"packs_copied","bytes_copied",…}`)
	tf.Register(cmd)
	return cmd
}

// openCopyTarget opens the repository of t as a copy target of src.
func openCopyTarget(ctx context.Context, src *chunkstore.Repository, t config.CopyTarget) (*chunkstore.Repository, error) {
	be, err := cli.OpenTarget(ctx, t, false)
	if err != nil {
		return nil, err
	}
	dst, err := src.OpenCopyTarget(ctx, be)
	if err != nil {
		be.Close()
		return nil, fmt.Errorf("copy target %s: %w", t.Name(), err)
	}
	return dst, nil
}

// copySelection returns the Select of a copy: the snapshots named by refs
// (IDs or unique prefixes), of the given hosts; nil selects every one.
func copySelection(ctx context.Context, src *chunkstore.Repository, hosts, refs []string) (func(*chunkstore.Snapshot) bool, error) {
	if len(hosts) == 0 && len(refs) == 0 {
		return nil, nil
	}
	var ids map[chunkstore.ID]bool
	if len(refs) > 0 {
		snaps, _, err := src.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		ids = map[chunkstore.ID]bool{}
		for _, ref := range refs {
			sn, err := chunkstore.FindSnapshot(snaps, ref)
			if err != nil {
				return nil, err
			}
			ids[sn.ID()] = true
		}
	}
	return func(sn *chunkstore.Snapshot) bool {
		if len(hosts) > 0 && !slices.Contains(hosts, sn.Host) {
			return false
		}
		return ids == nil || ids[sn.ID()]
	}, nil
}

// copyJSON is what copy --json prints.
type copyJSON struct {
	Target    string         `json:"target"`
	Snapshots []copySnapshot `json:"snapshots"`
	*copier.Result
	Seconds float64 `json:"seconds"`
}

type copySnapshot struct {
	ID    string    `json:"id"`
	Host  string    `json:"host"`
	Time  time.Time `json:"time"`
	Paths []string  `json:"paths"`
}

func printCopy(w io.Writer, to string, res *copier.Result, took time.Duration, asJSON bool) error {
	if asJSON {
		out := copyJSON{Target: to, Snapshots: []copySnapshot{}, Result: res, Seconds: took.Seconds()}
		for _, sn := range res.Copied {
			out.Snapshots = append(out.Snapshots, copySnapshot{ID: sn.ID().String(), Host: sn.Host, Time: sn.Time, Paths: sn.Paths})
		}
		return json.NewEncoder(w).Encode(out)
	}
	for _, sn := range res.Copied {
		fmt.Fprintf(w, "copied snapshot %s (%s, %s, %s)\n", sn.ID().Short(), sn.Host,
			sn.Time.Format(time.DateTime), strings.Join(sn.Paths, " "))
	}
	resumed := ""
	if res.Resumed > 0 {
		resumed = fmt.Sprintf(", %d already uploaded by an interrupted copy", res.Resumed)
	}
	fmt.Fprintf(w, "copied %d snapshot(s) to %s in %s: %d pack(s) sent (%s)%s; %d snapshot(s) already there\n",
		len(res.Copied), to, took.Round(time.Millisecond), res.Packs, cli.Bytes(res.Bytes), resumed, res.Present)
	return nil
}

// initCopyFrom initializes the repository of t as a copy target of the
// repository at from (syncd init --copy-from).
func initCopyFrom(ctx context.Context, out io.Writer, t config.CopyTarget, from, keyPath string) error {
	key, err := crypto.LoadIndexKey(keyPath)
	if err != nil {
		return err
	}
	sbe, err := cli.Backend(ctx, from, false)
	if err != nil {
		return fmt.Errorf("--copy-from: %w", err)
	}
	defer sbe.Close()
	src, err := chunkstore.LoadConfig(ctx, sbe, key)
	if err != nil {
		return fmt.Errorf("--copy-from %s: %w", from, err)
	}
	be, err := cli.OpenTarget(ctx, t, true)
	if err != nil {
		return err
	}
	defer be.Close()
	cfg, err := chunkstore.InitCopy(ctx, be, key, src, time.Time{})
	if err != nil {
		return fmt.Errorf("repository %s: %w", t.Name(), err)
	}
	fmt.Fprintf(out, "initialized repository %s (id %s) as a copy target of %s (id %s)\n", t.Name(), cfg.ID[:16], from, src.ID[:16])
	return nil
}
