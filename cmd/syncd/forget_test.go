package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/internal/cli"
)

// TestForgetBadSpan: each bad span given to a --keep-within flag is one
// line that names the flag, the value and what is wrong, before any
// repository is opened. (An "invalid argument" error exits with
// cli.ExitUsage; e2e.TestForgetBadInput checks the exit status.)
func TestForgetBadSpan(t *testing.T) {
	const units = "want units y, m (months), d or h, like 30d or 1y2m3d4h"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--keep-within", "-3d"}, `invalid argument "-3d" for "--keep-within" flag: negative values are not allowed: ` + units},
		{[]string{"--keep-within", "2w"}, `invalid argument "2w" for "--keep-within" flag: unknown unit "w" after 2: ` + units},
		{[]string{"--keep-within", ""}, `invalid argument "" for "--keep-within" flag: empty: ` + units},
		{[]string{"--keep-within", "99999999999999999999d"}, `invalid argument "99999999999999999999d" for "--keep-within" flag: 99999999999999999999d is too large (at most 1000000 of a unit)`},
		{[]string{"--keep-within-hourly", "-1h"}, `invalid argument "-1h" for "--keep-within-hourly" flag: negative values are not allowed: ` + units},
		{[]string{"--keep-within-daily", "30min"}, `invalid argument "30min" for "--keep-within-daily" flag: unknown unit "min" after 30: ` + units},
		{[]string{"--keep-within-weekly", ""}, `invalid argument "" for "--keep-within-weekly" flag: empty: ` + units},
		{[]string{"--keep-within-monthly", "2000000m"}, `invalid argument "2000000m" for "--keep-within-monthly" flag: 2000000m is too large (at most 1000000 of a unit)`},
		{[]string{"--keep-within-yearly", "1y1y"}, `invalid argument "1y1y" for "--keep-within-yearly" flag: unit "y" given twice: ` + units},
		{[]string{"--group-by", "host,node"}, `invalid argument "host,node" for "--group-by" flag: unknown field "node": want host, paths and/or tags separated by commas, or "" for one group`},
	} {
		err := runForget(t, tc.args...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("forget %q: %v\nwant %s", tc.args, err, tc.want)
		}
	}
}

// runForget runs syncd forget with args as main does, without a
// repository: what it tests must fail before one is opened.
func runForget(t *testing.T, args ...string) error {
	t.Helper()
	root := &cobra.Command{Use: "syncd"}
	root.AddCommand(forgetCmd())
	cli.Prepare(root)
	root.SetOut(io.Discard)
	root.SetArgs(append([]string{"forget", "--repo", t.TempDir() + "/none", "--index-key", "/none"}, args...))
	err := root.Execute()
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("forget %q: an error of more than one line: %q", args, err)
	}
	return err
}
