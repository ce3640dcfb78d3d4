package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
)

// entryJSON is one line of ls --json.
type entryJSON struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Size   uint64 `json:"size,omitempty"`
	Mode   string `json:"mode"`
	MTime  string `json:"mtime"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	Target string `json:"target,omitempty"`
}

func lsCmd() *cobra.Command {
	var f cli.RepoFlags
	var sel pick
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls --repo R --index-key F|--identity F SNAPSHOT [PATH] [--host H]… [--path P]… [--tag T]… [--time T] [--json]",
		Short: "List the files of a snapshot (below PATH)",
		Long: `ls lists every entry of SNAPSHOT below PATH (default: all), one per line.
Names that are not printable are shown quoted, Go style. --json prints one JSON
object per line. --host, --path, --tag and --time choose "latest" as for
restore.`,
		Args: cli.Args(1, 2, "SNAPSHOT and optionally a PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, _, err := f.Open(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			sn, err := sel.find(ctx, repo, args[0])
			if err != nil {
				return err
			}
			start := "/"
			if len(args) == 2 {
				start = path.Clean("/" + args[1])
			}
			l := &lister{ctx: ctx, repo: repo, out: cmd.OutOrStdout(), json: asJSON}
			return l.list(sn, start)
		},
	}
	f.Register(cmd, true)
	sel.register(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}

type lister struct {
	ctx  context.Context
	repo *chunkstore.Repository
	out  io.Writer
	json bool
}

// list prints the entries at and below start.
func (l *lister) list(sn *chunkstore.Snapshot, start string) error {
	n, err := lookup(l.ctx, l.repo, sn, start)
	if err != nil {
		return err
	}
	if start != "/" {
		if err := l.print(start, n); err != nil {
			return err
		}
		if n.Type != chunkstore.NodeDir {
			return nil
		}
	}
	tree, err := l.repo.LoadTree(l.ctx, *n.Subtree)
	if err != nil {
		return err
	}
	return l.walk(tree, start)
}

func (l *lister) walk(tree *chunkstore.Tree, dir string) error {
	for i := range tree.Nodes {
		n := &tree.Nodes[i]
		p := path.Join(dir, n.FileName())
		if err := l.print(p, n); err != nil {
			return err
		}
		if n.Type == chunkstore.NodeDir {
			sub, err := l.repo.LoadTree(l.ctx, *n.Subtree)
			if err != nil {
				return err
			}
			if err := l.walk(sub, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *lister) print(p string, n *chunkstore.Node) error {
	if l.json {
		e := entryJSON{Path: p, Type: n.Type, Size: n.Size, Mode: fmt.Sprintf("%04o", n.Mode),
			MTime: n.ModTime.Format(time.RFC3339Nano), UID: n.UID, GID: n.GID, Target: n.LinkTarget()}
		return json.NewEncoder(l.out).Encode(e)
	}
	line := printable(p)
	if n.Type == chunkstore.NodeSymlink {
		line += " -> " + printable(n.LinkTarget())
	}
	_, err := fmt.Fprintln(l.out, typeChar(n)+fs.FileMode(n.Mode).Perm().String()[1:], fmt.Sprintf("%10d", n.Size), line)
	return err
}

func typeChar(n *chunkstore.Node) string {
	switch n.Type {
	case chunkstore.NodeDir:
		return "d"
	case chunkstore.NodeSymlink:
		return "l"
	}
	return "-"
}

// printable quotes s when it holds bytes a terminal would not show as is.
func printable(s string) string {
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
