package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/drill"
	"github.com/syncd/syncd/internal/cli"
	"github.com/syncd/syncd/internal/span"
)

// drillFlags are the flags of restore drill.
type drillFlags struct {
	repo        cli.RepoFlags
	sel         pick
	include     []string
	sample      int
	target      string
	keep        bool
	compare     string
	maxAge      string
	asJSON      bool
	metricsFile string
	noRecord    bool
	wait        time.Duration

	metricsWritten bool // the report went to metricsFile
}

func drillCmd() *cobra.Command {
	var f drillFlags
	cmd := &cobra.Command{
		Use:   "drill --repo R [--index-key F] --identity F [--host H]… [--path P]… [--tag T]… [--time T] [--sample N [--include PATH]…] [--target DIR] [--compare ROOT] [--max-age D] [--json] [--metrics-file F] [--no-record]",
		Short: "Restore the latest snapshot of each host to a scratch directory and verify it (a restore drill)",
		Long: `drill restores the latest snapshot of each host (--host, --path, --tag and
--time narrow them as for restore: with --time, each host's newest taken at or
before it; a --host that no snapshot has is an error) into a scratch directory, checks every restored byte against the snapshot's
content IDs, removes the scratch directory, and reports per snapshot: its age
(the recovery point), the restore's time and throughput (the recovery time),
files, bytes, and any damage: each pack at fault with the paths it affects.

--sample N restores N files chosen at random (up to half of them the files of
whole packs drawn at random, the others drawn by size, up to 2% of the bytes)
plus every file under --include, and estimates the full restore's time from
the CPU time per tree entry of its planning and per file and per byte of
the rest that it measured (docs/DRILL.md).
Without --sample, --include narrows the drill to those paths.

--target DIR restores under DIR (new or empty; a scratch directory
syncd-drill-* is made in it and removed afterwards, and DIR too if the drill
made it); without it the scratch directory is made in $TMPDIR. Scratch
directories of drills that no longer run (killed) are removed by the next
drill. --keep leaves the restored files for inspection.

--compare ROOT also lists the files of the live tree (ROOT/<snapshot path>:
--compare / on the host that was backed up) that differ from the snapshot:
changed, added or removed since (drift; not a failure).

--max-age D (e.g. 26h, 2d) fails the drill when a host's newest snapshot is
older than D.

The drill writes a record of what it measured (no file contents; readable
with the index key) to drills/ in the repository, and holds a shared lock in
locks/ for its whole run so that a prune deletes nothing under it: it needs
write access to locks/ and drills/. --no-record drills with read-only
credentials: no lock, no record.

--json prints the report as JSON, --metrics-file F writes it in the
Prometheus textfile-collector format (atomically); docs/DRILL.md describes
both. Exit code 3 means the drill completed and found damage; 1 that it
failed (including --max-age exceeded).`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			err := runDrill(cmd, &f)
			if err != nil && f.metricsFile != "" && !f.metricsWritten {
				// a drill that could not run is a failed drill to the
				// collector too, not the last good one's numbers
				rep := &drill.Report{Time: start, Seconds: time.Since(start).Seconds(), Sample: f.sample}
				if werr := writeMetrics(f.metricsFile, &drillOutput{Report: rep, Error: err.Error()}); werr != nil {
					fmt.Fprintf(os.Stderr, "warning: --metrics-file %s: %v\n", f.metricsFile, werr)
				}
			}
			return err
		},
	}
	f.repo.Register(cmd, true)
	fl := cmd.Flags()
	f.sel.register(cmd, true)
	fl.StringArrayVar(&f.include, "include", nil, "snapshot path to restore, with everything below it (repeatable)")
	fl.IntVar(&f.sample, "sample", 0, "restore N files chosen at random and estimate the full restore's time")
	fl.StringVarP(&f.target, "target", "t", "", "new or empty directory to restore under (default: a scratch directory in $TMPDIR)")
	fl.BoolVar(&f.keep, "keep", false, "keep the restored files (the scratch directory is printed)")
	fl.StringVar(&f.compare, "compare", "", "list the files of the live tree under ROOT that differ from the snapshot")
	fl.StringVar(&f.maxAge, "max-age", "", "fail when a host's newest snapshot is older than this (e.g. 26h, 2d)")
	fl.BoolVar(&f.asJSON, "json", false, "print the report as JSON (docs/DRILL.md)")
	fl.StringVar(&f.metricsFile, "metrics-file", "", "write the report to this file in the Prometheus textfile-collector format")
	fl.BoolVar(&f.noRecord, "no-record", false, "write nothing to the repository: no lock, no drill record (read-only credentials)")
	fl.DurationVar(&f.wait, "wait", time.Hour, "how long to wait for a running prune")
	return cmd
}

// parseAge reads a --max-age value, an elapsed span above 0
// ([span.ParseElapsed]: Go's units and d, such as 26h, 2d or 1d12h).
func parseAge(s string) (time.Duration, error) {
	d, err := span.ParseElapsed(s)
	if err != nil {
		return 0, cli.Usage("--max-age %q: %v", s, err)
	}
	if d <= 0 {
		return 0, cli.Usage("--max-age %q: want a duration above 0, such as 26h or 2d", s)
	}
	return d, nil
}

// checkTarget refuses a --target that is not a new or empty directory
// once the scratch directories of dead drills are gone from it; it
// reports whether the drill makes it.
func checkTarget(dir string) (create bool, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, cli.Usage("--target %s: %v", dir, err)
	}
	if !fi.IsDir() {
		return false, cli.Usage("--target %s: not a directory", dir)
	}
	if _, err := drill.CleanStale(dir, time.Now()); err != nil {
		return false, fmt.Errorf("--target %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, cli.Usage("--target %s: %v", dir, err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), drill.ScratchPrefix) { // a running drill's is fine
			return false, cli.Usage("--target %s is not empty: a drill restores into a new or empty directory", dir)
		}
	}
	return false, nil
}

func runDrill(cmd *cobra.Command, f *drillFlags) error {
	if f.repo.Identity == "" {
		return cli.Usage("a drill restores file contents: it needs the data identity: use --identity FILE or SYNCD_IDENTITY")
	}
	if f.sample < 0 {
		return cli.Usage("--sample %d: want a number of files, 0 or more", f.sample)
	}
	if f.sample == 0 && cmd.Flags().Changed("sample") {
		return cli.Usage("--sample 0: want 1 or more files (leave it out for a full drill)")
	}
	var maxAge time.Duration
	if f.maxAge != "" {
		var err error
		if maxAge, err = parseAge(f.maxAge); err != nil {
			return err
		}
	}
	if f.compare != "" {
		if fi, err := os.Stat(f.compare); err != nil || !fi.IsDir() {
			return cli.Usage("--compare %s: not a directory", f.compare)
		}
	}
	if f.metricsFile != "" {
		if fi, err := os.Stat(filepath.Dir(f.metricsFile)); err != nil || !fi.IsDir() {
			return cli.Usage("--metrics-file %s: its directory does not exist", f.metricsFile)
		}
	}
	parent, created := os.TempDir(), false
	if f.target != "" {
		var err error
		if created, err = checkTarget(f.target); err != nil {
			return err
		}
		parent = f.target
	}

	ctx := cmd.Context()
	var repo *chunkstore.Repository
	var sess *chunkstore.Session
	var err error
	// The index is loaded once the snapshots are listed (SnapshotsAndIndex).
	if f.noRecord {
		repo, err = f.repo.OpenNoIndex(ctx)
	} else {
		// The session's shared lock keeps a prune from deleting packs under
		// the drill; the index is loaded as it is, every pack named in it
		// kept, so that a missing pack is named as damage.
		repo, sess, err = f.repo.BeginWrite(ctx, "restore drill", f.wait, true)
		if err == nil {
			defer repo.Close() // after the session's, deferred below
			defer sess.Close()
		}
	}
	if f.noRecord && repo != nil {
		defer repo.Close()
	}
	if err != nil {
		return err
	}
	snaps, bad, badIdx, err := repo.SnapshotsAndIndex(ctx)
	if err != nil {
		return fmt.Errorf("repository %s: %w", f.repo.Repo, err)
	}
	for _, e := range badIdx {
		fmt.Fprintf(os.Stderr, "warning: %s\n", e.Err)
	}
	if err := repo.CheckDataIdentity(ctx); err != nil {
		return fmt.Errorf("repository %s: %w", f.repo.Repo, f.repo.KeyError(err))
	}
	var warnings []string
	for _, e := range bad {
		warnings = append(warnings, e.Err.Error())
		fmt.Fprintf(os.Stderr, "warning: %s\n", e.Err)
	}
	chosen, err := f.sel.narrow(snaps, len(bad))
	if err != nil {
		return fmt.Errorf("repository %s: %w", f.repo.Repo, err)
	}
	picked := drill.Select(chosen, nil, nil)
	if len(picked) == 0 {
		return fmt.Errorf("repository %s: no snapshot to drill (restore snapshots lists them)", f.repo.Repo)
	}

	if removed, err := drill.CleanStale(parent, time.Now()); err != nil {
		fmt.Fprintf(os.Stderr, "warning: %v\n", err)
	} else {
		for _, d := range removed {
			fmt.Fprintf(os.Stderr, "removed %s, left by a drill that no longer runs\n", d)
		}
	}
	if created {
		if err := os.MkdirAll(f.target, 0o700); err != nil {
			return fmt.Errorf("--target %s: %w", f.target, err)
		}
	}
	scratch, err := drill.MakeScratch(parent)
	if err != nil {
		return err
	}
	cleanup := func() {
		if f.keep {
			drill.Keep(scratch)
			fmt.Fprintf(os.Stderr, "restored files kept in %s\n", scratch)
			return
		}
		if err := drill.RemoveScratch(scratch); err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v\n", err)
		}
		if created {
			os.Remove(f.target)
		}
	}
	host, _ := os.Hostname()
	rep, runErr := drill.Run(ctx, repo, picked, drill.Options{
		Include: f.include, Sample: f.sample, Compare: f.compare, MaxAge: maxAge, Scratch: scratch,
		OnStart: func(sn *chunkstore.Snapshot) {
			if !f.asJSON {
				fmt.Fprintf(os.Stderr, "drilling snapshot %s of %s…\n", sn.ID().Short(), sn.Host)
			}
		},
	})
	cleanup()
	rep.Warnings = warnings
	if runErr != nil && ctx.Err() != nil {
		return runErr // interrupted: no record of a drill that did not run
	}
	out := drillOutput{Report: rep, Host: host, OK: rep.OK() && runErr == nil}
	if runErr != nil {
		out.Error = runErr.Error()
	} else if old := tooOld(rep); old != "" {
		out.Error = old
	} else if dmg := damageSummary(rep); dmg != "" {
		out.Error = dmg
	}
	if !f.noRecord {
		var recErr error
		if out.Error != "" {
			recErr = errors.New(out.Error)
		}
		id, err := repo.SaveDrill(ctx, rep.Record(host, recErr))
		if err != nil {
			out.RecordErr = err.Error()
		} else {
			out.Record = chunkstore.DrillName(id)
		}
	}
	if err := writeDrill(cmd, f, &out); err != nil {
		return err
	}
	return drillExit(&out, runErr)
}

// drillOutput is the --json output: the report and what the command adds.
type drillOutput struct {
	*drill.Report
	Host      string `json:"host"`             // the machine that ran the drill
	OK        bool   `json:"ok"`               // every snapshot restored intact, within --max-age
	Error     string `json:"error,omitempty"`  // why not, when the drill failed
	Record    string `json:"record,omitempty"` // "drills/<id>"; empty with --no-record
	RecordErr string `json:"record_error,omitempty"`
}

func tooOld(rep *drill.Report) string {
	for _, s := range rep.Snapshots {
		if s.TooOld {
			return fmt.Sprintf("newest snapshot %s of %s is %s old, more than --max-age %s", s.ID.Short(), s.Host,
				ageString(s.AgeSeconds), ageString(rep.MaxAge))
		}
	}
	return ""
}

// drillExit maps the outcome to the exit code: 1 for a failed drill
// (including a snapshot over --max-age or a record that could not be
// written), 3 for damage found by a drill that completed.
func drillExit(out *drillOutput, runErr error) error {
	if runErr != nil {
		return runErr
	}
	if msg := tooOld(out.Report); msg != "" {
		return errors.New(msg)
	}
	if out.RecordErr != "" {
		return fmt.Errorf("the drill ran, but its record could not be written: %s (--no-record to drill without one)", out.RecordErr)
	}
	if !out.OK {
		return cli.Partial{Msg: damageSummary(out.Report)}
	}
	return nil
}

// damageSummary says in one line what damage the drill found, or "".
func damageSummary(rep *drill.Report) string {
	var files int64
	var packs []string
	for _, s := range rep.Snapshots {
		files += s.DamagedFiles
		for _, d := range s.Damaged {
			if d.Pack != "" && !slices.Contains(packs, d.Pack) {
				packs = append(packs, d.Pack)
			}
		}
	}
	if files == 0 && len(packs) == 0 {
		return ""
	}
	msg := fmt.Sprintf("drill found damage: %d file(s) could not be restored intact", files)
	if len(packs) > 0 {
		msg += "; damaged pack(s): " + strings.Join(packs, ", ")
	}
	return msg
}

// writeDrill prints the report (text or JSON) and writes the metrics file.
func writeDrill(cmd *cobra.Command, f *drillFlags, out *drillOutput) error {
	w := cmd.OutOrStdout()
	if f.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printDrill(w, out)
	}
	if f.metricsFile != "" {
		if err := writeMetrics(f.metricsFile, out); err != nil {
			return fmt.Errorf("--metrics-file %s: %w", f.metricsFile, err)
		}
		f.metricsWritten = true
	}
	return nil
}
