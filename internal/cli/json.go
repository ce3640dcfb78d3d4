package cli

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"
)

// JSONHelp is what each command's --json flag says.
const JSONHelp = "print the result as one JSON object instead of text"

// AddJSON adds --json to cmd, setting *on.
func AddJSON(cmd *cobra.Command, on *bool) { cmd.Flags().BoolVar(on, "json", false, JSONHelp) }

// PrintJSON writes v to w as indented JSON.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
