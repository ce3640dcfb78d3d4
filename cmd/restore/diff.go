package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
)

// changeJSON is one entry of diff --json's "changes".
type changeJSON struct {
	Change  string   `json:"change"` // added, removed or changed
	Path    string   `json:"path"`
	Type    string   `json:"type"`
	What    []string `json:"what,omitempty"` // for changed: content, mode, mtime, owner, target
	Size    uint64   `json:"size"`           // the entry's size in the newer snapshot (the older for removed)
	OldSize *uint64  `json:"old_size,omitempty"`
}

// diffCount is what was added or removed.
type diffCount struct {
	Entries int64 `json:"entries"`
	Files   int64 `json:"files"`
	Bytes   int64 `json:"bytes"` // of the files
}

// diffChanged is what changed in entries present in both snapshots.
type diffChanged struct {
	Entries  int64 `json:"entries"`
	Content  int64 `json:"content"`
	Mode     int64 `json:"mode"`
	MTime    int64 `json:"mtime"`
	Owner    int64 `json:"owner"`
	Target   int64 `json:"target"`
	OldBytes int64 `json:"old_bytes"` // size of the changed files in the older snapshot
	Bytes    int64 `json:"bytes"`     // and in the newer
}

// diffSummary counts a diff.
type diffSummary struct {
	Added   diffCount   `json:"added"`
	Removed diffCount   `json:"removed"`
	Changed diffChanged `json:"changed"`
}

func diffCmd() *cobra.Command {
	var f cli.RepoFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff --repo R --index-key F|--identity F SNAPSHOT1 SNAPSHOT2 [--json]",
		Short: "Show what changed between two snapshots",
		Long: `diff lists what changed from SNAPSHOT1 to SNAPSHOT2 (each an ID, a unique ID
prefix, or "latest"), one entry per line in path order, then a summary line:

    + PATH (SIZE)                      added (a directory: and each entry below it)
    - PATH (SIZE)                      removed
    M PATH: content, mtime (OLD -> NEW) changed, and in what

A file changed in content (its chunks), mode, mtime, owner; a symlink in
target, mode, mtime, owner; a directory in mode or owner (its mtime follows
from its entries, which are listed). An entry whose type changed is removed
and added. Directories end in "/".

diff compares the trees' metadata and chunk IDs, never file contents: the
index key is enough. Directories whose tree IDs are equal are equal and are
not read, so a diff costs what changed, not the size of the snapshots.
--json prints one object: {"from","to","changes":[…],"summary":{…}}.`,
		Args: cli.Args(2, 2, "two SNAPSHOTs (ID, ID prefix or latest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, _, err := f.Open(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			a, err := findSnapshot(ctx, repo, args[0])
			if err != nil {
				return err
			}
			b, err := findSnapshot(ctx, repo, args[1])
			if err != nil {
				return err
			}
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			d := &differ{ctx: ctx, repo: repo, out: out, json: asJSON}
			if err := d.run(a, b); err != nil {
				return err
			}
			return out.Flush()
		},
	}
	f.Register(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print one JSON object: {"from","to","changes":[…],"summary":{…}}`)
	return cmd
}

// differ walks two trees side by side and prints what differs.
type differ struct {
	ctx  context.Context
	repo *chunkstore.Repository
	out  *bufio.Writer
	json bool

	n   int64 // changes printed
	sum diffSummary
}

func (d *differ) run(a, b *chunkstore.Snapshot) error {
	if d.json {
		fmt.Fprintf(d.out, "{\"from\":%q,\"to\":%q,\"changes\":[", a.ID().String(), b.ID().String())
	}
	if err := d.trees("/", a.Tree, b.Tree); err != nil {
		return err
	}
	if d.json {
		s, err := json.Marshal(d.sum)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(d.out, "],\"summary\":%s}\n", s)
		return err
	}
	_, err := fmt.Fprintln(d.out, d.sum.line())
	return err
}

// trees compares the directories at dir whose trees are a and b.
func (d *differ) trees(dir string, a, b chunkstore.ID) error {
	if a == b {
		return nil // same ID, same listing, same everything below
	}
	ta, err := d.repo.LoadTree(d.ctx, a)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	tb, err := d.repo.LoadTree(d.ctx, b)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	i, j := 0, 0
	for i < len(ta.Nodes) || j < len(tb.Nodes) {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		c := 0
		switch {
		case i == len(ta.Nodes):
			c = 1
		case j == len(tb.Nodes):
			c = -1
		default:
			c = strings.Compare(ta.Nodes[i].FileName(), tb.Nodes[j].FileName())
		}
		switch {
		case c < 0:
			err = d.all("-", dir, &ta.Nodes[i])
			i++
		case c > 0:
			err = d.all("+", dir, &tb.Nodes[j])
			j++
		default:
			err = d.both(dir, &ta.Nodes[i], &tb.Nodes[j])
			i++
			j++
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// both compares an entry present in both snapshots.
func (d *differ) both(dir string, na, nb *chunkstore.Node) error {
	p := path.Join(dir, nb.FileName())
	if na.Type != nb.Type {
		if err := d.all("-", dir, na); err != nil {
			return err
		}
		return d.all("+", dir, nb)
	}
	var what []string
	if nb.Type == chunkstore.NodeFile && (na.Size != nb.Size || !slices.Equal(na.Content, nb.Content)) {
		what = append(what, "content")
		d.sum.Changed.Content++
	}
	if nb.Type == chunkstore.NodeSymlink && na.LinkTarget() != nb.LinkTarget() {
		what = append(what, "target")
		d.sum.Changed.Target++
	}
	if na.Mode != nb.Mode {
		what = append(what, "mode")
		d.sum.Changed.Mode++
	}
	if nb.Type != chunkstore.NodeDir && !na.ModTime.Equal(nb.ModTime) {
		what = append(what, "mtime")
		d.sum.Changed.MTime++
	}
	if na.UID != nb.UID || na.GID != nb.GID {
		what = append(what, "owner")
		d.sum.Changed.Owner++
	}
	if len(what) > 0 {
		d.sum.Changed.Entries++
		if nb.Type == chunkstore.NodeFile {
			d.sum.Changed.OldBytes += int64(na.Size)
			d.sum.Changed.Bytes += int64(nb.Size)
		}
		if err := d.changed(p, na, nb, what); err != nil {
			return err
		}
	}
	if nb.Type == chunkstore.NodeDir && na.Subtree != nil && nb.Subtree != nil {
		return d.trees(p, *na.Subtree, *nb.Subtree)
	}
	return nil
}

// all prints n (op "+" added or "-" removed) and, for a directory, every
// entry below it.
func (d *differ) all(op, dir string, n *chunkstore.Node) error {
	c := &d.sum.Added
	if op == "-" {
		c = &d.sum.Removed
	}
	c.Entries++
	if n.Type == chunkstore.NodeFile {
		c.Files++
		c.Bytes += int64(n.Size)
	}
	p := path.Join(dir, n.FileName())
	if err := d.print(op, p, n); err != nil {
		return err
	}
	if n.Type != chunkstore.NodeDir || n.Subtree == nil {
		return nil
	}
	t, err := d.repo.LoadTree(d.ctx, *n.Subtree)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for i := range t.Nodes {
		if err := d.all(op, p, &t.Nodes[i]); err != nil {
			return err
		}
	}
	return nil
}

var changeWords = map[string]string{"+": "added", "-": "removed", "M": "changed"}

func (d *differ) print(op, p string, n *chunkstore.Node) error {
	if d.json {
		return d.emit(changeJSON{Change: changeWords[op], Path: p, Type: n.Type, Size: n.Size})
	}
	_, err := fmt.Fprintf(d.out, "%s %s%s\n", op, displayPath(p, n), sizeText(n))
	return err
}

func (d *differ) changed(p string, na, nb *chunkstore.Node, what []string) error {
	if d.json {
		c := changeJSON{Change: "changed", Path: p, Type: nb.Type, What: what, Size: nb.Size}
		if nb.Type == chunkstore.NodeFile {
			c.OldSize = &na.Size
		}
		return d.emit(c)
	}
	words := slices.Clone(what)
	for i, w := range words {
		switch w {
		case "mode":
			words[i] = fmt.Sprintf("mode %04o -> %04o", na.Mode, nb.Mode)
		case "owner":
			words[i] = fmt.Sprintf("owner %d:%d -> %d:%d", na.UID, na.GID, nb.UID, nb.GID)
		}
	}
	size := sizeText(nb)
	if nb.Type == chunkstore.NodeFile && na.Size != nb.Size {
		size = fmt.Sprintf(" (%s -> %s)", cli.Bytes(int64(na.Size)), cli.Bytes(int64(nb.Size)))
	}
	_, err := fmt.Fprintf(d.out, "M %s: %s%s\n", displayPath(p, nb), strings.Join(words, ", "), size)
	return err
}

func (d *differ) emit(c changeJSON) error {
	if d.n > 0 {
		d.out.WriteByte(',')
	}
	d.n++
	d.out.WriteByte('\n')
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = d.out.Write(b)
	return err
}

// displayPath is p as printed: quoted when not printable, with a "/" after
// a directory.
func displayPath(p string, n *chunkstore.Node) string {
	if n.Type == chunkstore.NodeDir {
		p += "/"
	}
	return printable(p)
}

// sizeText is a file's size in parentheses; nothing for other types.
func sizeText(n *chunkstore.Node) string {
	if n.Type != chunkstore.NodeFile {
		return ""
	}
	return " (" + cli.Bytes(int64(n.Size)) + ")"
}

// line is the summary as one line of text.
func (s diffSummary) line() string {
	if s.Added.Entries == 0 && s.Removed.Entries == 0 && s.Changed.Entries == 0 {
		return "no changes"
	}
	ch := fmt.Sprintf("%d changed", s.Changed.Entries)
	var what []string
	for _, w := range []struct {
		n    int64
		name string
	}{{s.Changed.Content, "content"}, {s.Changed.Mode, "mode"}, {s.Changed.MTime, "mtime"}, {s.Changed.Owner, "owner"}, {s.Changed.Target, "target"}} {
		if w.n > 0 {
			what = append(what, fmt.Sprintf("%d %s", w.n, w.name))
		}
	}
	if len(what) > 0 {
		ch += fmt.Sprintf(" (%s; files %s -> %s)", strings.Join(what, ", "), cli.Bytes(s.Changed.OldBytes), cli.Bytes(s.Changed.Bytes))
	}
	return fmt.Sprintf("%d added (%d files, %s), %d removed (%d files, %s), %s",
		s.Added.Entries, s.Added.Files, cli.Bytes(s.Added.Bytes),
		s.Removed.Entries, s.Removed.Files, cli.Bytes(s.Removed.Bytes), ch)
}
