package cli

import "github.com/spf13/cobra"

// Prepare sets the conventions every command tree shares: errors are
// printed once by Main, flag errors exit with ExitUsage.
func Prepare(root *cobra.Command) {
	root.SilenceUsage = true
	root.SilenceErrors = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return Usage("%v", err) })
	root.SetHelpTemplate(root.HelpTemplate() + "\n" + ExitCodesHelp + "\n")
}

// Args returns a cobra.PositionalArgs that accepts between min and max
// arguments (max < 0: any number) and explains a mismatch as usage.
func Args(min, max int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || (max >= 0 && len(args) > max) {
			return Usage("%s: expects %s", cmd.CommandPath(), what)
		}
		return nil
	}
}
