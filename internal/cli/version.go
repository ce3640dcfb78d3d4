package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/internal/version"
)

// VersionInfo is what a binary was built from (module version, VCS
// revision, Go); its String is the line `version` prints. It is
// [version.Info]: packages that must not import cli (the daemon's /status
// and /metrics) call [version.Read] for the same value.
type VersionInfo = version.Info

// Version returns the build information of the running binary, named
// program ("syncd" or "restore"). A binary built without VCS stamping
// (go run, tests, -buildvcs=false) has Version "devel" and no Revision.
func Version(program string) VersionInfo { return version.Read(program) }

// AddVersion gives root a --version flag that prints the one-line
// Version(program), and a `version [--json]` subcommand.
func AddVersion(root *cobra.Command, program string) {
	root.Version = Version(program).String()
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(versionCmd(program))
}

func versionCmd(program string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print the version, VCS revision and Go version of this binary",
		Long: `version prints what this binary was built from on one line: the module
version, the VCS revision (with "modified" when the tree had uncommitted
changes), the commit time and the Go version. --json prints the same as a
JSON object (program, version, revision, modified, commit_time, go). A
binary built without VCS information (go run, -buildvcs=false) says devel
and has no revision.`,
		Args: Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := Version(program)
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			_, err := fmt.Fprintln(out, v)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
