// Command syncd is the agent on each web node: it snapshots content folders
// into an encrypted, deduplicated repository (and, as a daemon, mirrors
// them to peers). See `syncd --help`.
package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/internal/cli"
)

func main() {
	// The heap is mostly byte buffers without pointers, cheap to collect:
	// collecting at 50% growth instead of 100% keeps the peak memory of a
	// snapshot below restic's at a negligible CPU cost. GOGC overrides it.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	cli.Main("syncd", func(ctx context.Context) error {
		root := &cobra.Command{
			Use:   "syncd",
			Short: "Mirror content folders between web nodes and back them up",
			Long: `syncd mirrors content folders between web nodes and backs them up into an
encrypted, deduplicated repository (a directory or S3-compatible storage).`,
		}
		root.AddCommand(keygenCmd(), initCmd(), snapshotCmd(), runCmd(), statusCmd(), pruneCmd())
		root.AddCommand(idCmd(), revertCmd(), confirmDeletesCmd())
		root.AddCommand(forgetCmd(), copyCmd())
		cli.AddVersion(root, "syncd")
		cli.Prepare(root)
		return root.ExecuteContext(ctx)
	})
}
