package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/prune"
)

// PruneFlags are the flags of `syncd prune` and `restore prune`.
type PruneFlags struct {
	MaxUnused string        // e.g. "10%"
	DryRun    bool          // plan only
	Repack    bool          // rewrite partly used content packs (restore prune)
	Reseal    bool          // rewrite packs sealed to other recipients than the config's (restore prune)
	Wait      time.Duration // how long to wait for running snapshots
	JSON      bool          // print the summary as JSON
}

// Register adds the prune flags to cmd; withRepack adds --repack and
// --reseal.
func (p *PruneFlags) Register(cmd *cobra.Command, withRepack bool) {
	cmd.Flags().StringVar(&p.MaxUnused, "max-unused", "10%", "rewrite a partly used pack when more than this share of it is unused")
	cmd.Flags().BoolVar(&p.DryRun, "dry-run", false, "show what would be deleted, change nothing")
	cmd.Flags().DurationVar(&p.Wait, "wait", time.Hour, "how long to wait for running snapshots to finish")
	cmd.Flags().BoolVar(&p.JSON, "json", false, `print {"dry_run","snapshots","packs_before","packs_deleted","unreferenced","packs_rewritten","packs_written","packs_resealed","bytes_resealed","resealed":[{"type","sealed_to","packs","bytes"}],"packs_partly_used","unused_kept","index_removed","index_written","bytes_before","bytes_after","seconds"}`)
	if withRepack {
		cmd.Flags().BoolVar(&p.Repack, "repack", false, "also rewrite partly used content packs (needs --identity)")
		cmd.Flags().BoolVar(&p.Reseal, "reseal", false, "also rewrite every pack not recorded as sealed to the config's recipients (needs --identity that opens them)")
	}
}

// ParsePercent parses "10%" or "10" as 0.10.
func ParsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, Usage("--max-unused %q: want a percentage from 0%% to 100%%", s)
	}
	return v / 100, nil
}

// LockLogger returns lock options that report waits and stale locks on w.
func LockLogger(w io.Writer, opts chunkstore.LockOptions) chunkstore.LockOptions {
	opts.OnWait = func(h []chunkstore.LockInfo) {
		for _, l := range h {
			fmt.Fprintf(w, "waiting for the %s\n", l)
		}
	}
	opts.OnStale = func(name string, l chunkstore.LockInfo, why string) {
		fmt.Fprintf(w, "removing stale lock %s: %s; %s\n", name, why, l)
	}
	return opts
}

// RunPrune begins the exclusive write session of a prune on repo (none
// for a dry run, which writes nothing) and prunes it, printing a progress
// line on a terminal and a summary on out. url names the repository in
// errors.
func RunPrune(ctx context.Context, repo *chunkstore.Repository, url string, p PruneFlags, program string, out io.Writer) error {
	maxUnused, err := ParsePercent(p.MaxUnused)
	if err != nil {
		return err
	}
	opts := prune.Options{Repack: p.Repack, Reseal: p.Reseal, MaxUnused: maxUnused, DryRun: p.DryRun, Progress: new(prune.Progress),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if !p.DryRun {
		sess, err := repo.BeginExclusive(ctx, chunkstore.WriteOptions{
			LockOptions: LockLogger(os.Stderr, chunkstore.LockOptions{Program: program, Wait: p.Wait})})
		if err != nil {
			return fmt.Errorf("repository %s: %w", url, err)
		}
		defer sess.Close()
		WarnSealedKey(sess)
		opts.Lock = sess.Lock()
	}
	opts.Hook = KillHook(os.Getenv("SYNCD_TEST_PRUNE_KILL"))
	prog := opts.Progress
	tick := StartTicker(func(d time.Duration) string {
		return fmt.Sprintf("[%s] %s: %d trees read, %d packs rewritten, %d objects deleted",
			d.Truncate(time.Second), prog.Phase(), prog.Trees.Load(), prog.Packs.Load(), prog.Deleted.Load())
	})
	start := time.Now()
	st, err := prune.Run(ctx, repo, opts)
	tick.Stop()
	if err != nil {
		return err
	}
	if p.JSON {
		return PrintJSON(out, map[string]any{"dry_run": p.DryRun, "snapshots": st.Snapshots, "packs_before": st.PacksBefore,
			"packs_deleted": st.PacksDeleted, "unreferenced": st.Unreferenced, "packs_rewritten": st.PacksRewritten,
			"packs_written": st.PacksWritten, "packs_resealed": st.PacksResealed, "bytes_resealed": st.BytesResealed,
			"resealed": resealed(st.Resealed), "packs_partly_used": st.PacksPartly, "unused_kept": st.UnusedKept,
			"index_removed": st.IndexRemoved, "index_written": st.IndexWritten, "bytes_before": st.BytesBefore,
			"bytes_after": st.BytesAfter, "seconds": time.Since(start).Seconds()})
	}
	verb, freed := "freed", st.Freed()
	if p.DryRun {
		verb = "would free"
	}
	if freed < 0 { // nothing to delete; the new index is larger than the old ones
		verb, freed = "grew by", -freed
	}
	fmt.Fprintf(out, "%d snapshots kept; %d packs: %d deleted (%d unreferenced), %d rewritten into %d, %d partly used kept (%s unused)\n",
		st.Snapshots, st.PacksBefore, st.PacksDeleted, st.Unreferenced, st.PacksRewritten,
		st.PacksWritten, st.PacksPartly, Bytes(st.UnusedKept))
	if p.Reseal {
		printResealed(out, st, repo.SealedTo(chunkstore.DataBlob), p.DryRun)
	}
	fmt.Fprintf(out, "%s %s: %s → %s in %s\n", verb, Bytes(freed), Bytes(st.BytesBefore), Bytes(st.BytesAfter),
		time.Since(start).Round(time.Millisecond))
	return nil
}

// printResealed says what a reseal rewrote (dry: would rewrite), by type
// and the recipients the packs were recorded as sealed to; data is what
// content packs are sealed to now.
func printResealed(out io.Writer, st *prune.Stats, data []string, dry bool) {
	verb := "resealed"
	if dry {
		verb = "would reseal"
	}
	fmt.Fprintf(out, "%s %d packs (%s) to the config's recipients (content packs: %s; tree packs: the index recipient too)\n",
		verb, st.PacksResealed, Bytes(st.BytesResealed), strings.Join(data, " "))
	for _, g := range st.Resealed {
		what := "content"
		if g.Type == chunkstore.TreeBlob {
			what = "tree"
		}
		from := "with no record of their recipients (written before syncd recorded them, or recorded differently by two index objects)"
		if g.SealedTo != nil {
			from = "sealed to " + strings.Join(g.SealedTo, " ")
		}
		fmt.Fprintf(out, "  %d %s packs (%s) %s\n", g.Packs, what, Bytes(g.Bytes), from)
	}
}

// resealed is st.Resealed for --json: never null.
func resealed(gs []prune.ResealGroup) []prune.ResealGroup {
	if gs == nil {
		return []prune.ResealGroup{}
	}
	return gs
}

// KillHook returns, for spec "EVENT:N" (SYNCD_TEST_PRUNE_KILL,
// SYNCD_TEST_COPY_KILL), a hook that kills the process (SIGKILL, as kill
// -9) at the Nth EVENT; the end-to-end tests use it to stop a prune or a
// copy at a chosen point. Empty: no hook. The hook is not safe for
// concurrent use.
func KillHook(spec string) func(string) {
	event, n, ok := strings.Cut(spec, ":")
	count, err := strconv.Atoi(n)
	if spec == "" || !ok || err != nil {
		return nil
	}
	return func(e string) {
		if e == event {
			if count--; count == 0 {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
}
