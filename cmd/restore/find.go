package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
)

// matchJSON is one line of find --json.
type matchJSON struct {
	Snapshot   string `json:"snapshot"`
	SnapshotID string `json:"snapshot_id"`
	Time       string `json:"time"`
	Host       string `json:"host"`
	Path       string `json:"path"`
	Type       string `json:"type"`
	Size       uint64 `json:"size"`
	Mode       string `json:"mode"`
	MTime      string `json:"mtime"`
	Target     string `json:"target,omitempty"`
}

func findCmd() *cobra.Command {
	var f cli.RepoFlags
	var host string
	var newest int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "find PATTERN --repo R --index-key F|--identity F [--host H] [--newest N] [--json]",
		Short: "Find files by name across snapshots",
		Long: `find lists the entries of every snapshot (oldest first) whose name matches
PATTERN, a glob: * and ? (never matching /), [a-z], [^a-z], and \ to escape.
A PATTERN with a / is matched against the path: one starting with / against
the full snapshot path, any other against the path's last components
(www/*.php matches /var/www/index.php, not /var/www/a/index.php). Quote the
pattern so the shell does not expand it.

    restore find 'wp-config.php'
    restore find --host web1 --newest 10 '/var/www/uploads/2026/*'

Each match is printed with its snapshot (short ID, time, host), type, size,
mtime and path; --json prints one JSON object per match. find reads only
snapshots and trees: the index key is enough.`,
		Args: cli.Args(1, 1, "one PATTERN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := newMatcher(args[0])
			if err != nil {
				return err
			}
			if newest < 0 {
				return cli.Usage("--newest %d: want a count of snapshots, 1 or more (0: all)", newest)
			}
			ctx := cmd.Context()
			repo, _, err := f.Open(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			snaps, err := readableSnapshots(ctx, repo, "")
			if err != nil {
				return err
			}
			var sel []*chunkstore.Snapshot
			for _, s := range snaps {
				if host == "" || s.Host == host {
					sel = append(sel, s)
				}
			}
			if newest > 0 && len(sel) > newest {
				sel = sel[len(sel)-newest:]
			}
			fd := &finder{ctx: ctx, repo: repo, m: m, out: cmd.OutOrStdout(), json: asJSON, seen: map[treeAt]*found{}}
			return fd.run(sel)
		},
	}
	f.Register(cmd, true)
	cmd.Flags().StringVar(&host, "host", "", "only the snapshots of this host")
	cmd.Flags().IntVar(&newest, "newest", 0, "only the N newest snapshots (of --host, if given)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}

// matcher is a compiled find PATTERN.
type matcher struct {
	pat   string
	full  bool // matched against the path, not the name
	abs   bool // against the whole path
	parts int  // else against this many last components
}

func newMatcher(pat string) (matcher, error) {
	if pat == "" {
		return matcher{}, cli.Usage("empty pattern")
	}
	if _, err := path.Match(pat, ""); err != nil {
		return matcher{}, cli.Usage("pattern %q: %v", pat, err)
	}
	m := matcher{pat: pat, full: strings.Contains(pat, "/"), abs: strings.HasPrefix(pat, "/")}
	if m.full && !m.abs {
		m.parts = strings.Count(pat, "/") + 1
	}
	return m, nil
}

// match tells whether the entry at snapshot path p (whose last component
// is its name) matches.
func (m matcher) match(p string) bool {
	s := p[strings.LastIndexByte(p, '/')+1:]
	switch {
	case m.abs:
		s = p
	case m.full:
		i := len(p)
		for range m.parts {
			if i = strings.LastIndexByte(p[:i], '/'); i < 0 {
				return false
			}
		}
		s = p[i+1:]
	}
	ok, _ := path.Match(m.pat, s)
	return ok
}

// treeAt is a tree at a place: what a walk below it finds depends on both.
type treeAt struct {
	id  chunkstore.ID
	dir string
}

// found is what a walk found below one tree, in the order ls lists it:
// each element a match or the matches below a subdirectory.
type found struct {
	items []item
	count int
}

type item struct {
	path string
	node chunkstore.Node // without its content IDs
	sub  *found          // nil for a match
}

type finder struct {
	ctx  context.Context
	repo *chunkstore.Repository
	m    matcher
	out  io.Writer
	json bool

	// seen holds what was found below each tree already walked, so that
	// the snapshots of a host, which share most of their trees, cost a
	// walk of what changed between them. Each match is held once.
	seen   map[treeAt]*found
	failed int
}

func (fd *finder) run(snaps []*chunkstore.Snapshot) error {
	hostWidth := len("HOST")
	for _, s := range snaps {
		hostWidth = max(hostWidth, len(s.Host))
	}
	if !fd.json {
		fmt.Fprintf(fd.out, "%-8s  %-19s  %-*s  %-7s  %12s  %-19s  %s\n", "SNAPSHOT", "TIME", hostWidth, "HOST", "TYPE", "SIZE", "MTIME", "PATH")
	}
	total, in := 0, 0
	for _, sn := range snaps {
		f, err := fd.walk(sn.Tree, "/")
		if err != nil {
			return err
		}
		if f.count > 0 {
			in++
		}
		total += f.count
		if err := fd.emit(sn, hostWidth, f); err != nil {
			return err
		}
	}
	if !fd.json {
		fmt.Fprintf(fd.out, "%d match(es) in %d of %d snapshot(s)\n", total, in, len(snaps))
	}
	if fd.failed > 0 {
		return cli.Partial{Msg: fmt.Sprintf("%d tree(s) could not be read; matches below them are missing", fd.failed)}
	}
	return nil
}

// walk returns what is found below tree id at snapshot path dir. A tree
// that cannot be read is reported on stderr and skipped.
func (fd *finder) walk(id chunkstore.ID, dir string) (*found, error) {
	key := treeAt{id, dir}
	if f, ok := fd.seen[key]; ok {
		return f, nil
	}
	f := new(found)
	tree, err := fd.repo.LoadTree(fd.ctx, id)
	if err != nil {
		if fd.ctx.Err() != nil {
			return nil, fd.ctx.Err()
		}
		fmt.Fprintf(os.Stderr, "warning: %s: %v\n", dir, err)
		fd.failed++
		fd.seen[key] = f
		return f, nil
	}
	for i := range tree.Nodes {
		n := &tree.Nodes[i]
		p := path.Join(dir, n.FileName())
		if fd.m.match(p) {
			it := item{path: p, node: *n}
			it.node.Content = nil
			f.items = append(f.items, it)
			f.count++
		}
		if n.Type == chunkstore.NodeDir {
			sub, err := fd.walk(*n.Subtree, p)
			if err != nil {
				return nil, err
			}
			if sub.count > 0 {
				f.items = append(f.items, item{sub: sub})
				f.count += sub.count
			}
		}
	}
	fd.seen[key] = f
	return f, nil
}

func (fd *finder) emit(sn *chunkstore.Snapshot, hostWidth int, f *found) error {
	for i := range f.items {
		it := &f.items[i]
		var err error
		if it.sub != nil {
			err = fd.emit(sn, hostWidth, it.sub)
		} else {
			err = fd.print(sn, hostWidth, it)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (fd *finder) print(sn *chunkstore.Snapshot, hostWidth int, h *item) error {
	n := &h.node
	if fd.json {
		return json.NewEncoder(fd.out).Encode(matchJSON{
			Snapshot: sn.ID().Short(), SnapshotID: sn.ID().String(), Time: sn.Time.Format(time.RFC3339), Host: sn.Host,
			Path: h.path, Type: n.Type, Size: n.Size, Mode: fmt.Sprintf("%04o", n.Mode),
			MTime: n.ModTime.Format(time.RFC3339Nano), Target: n.LinkTarget(),
		})
	}
	line := printable(h.path)
	if n.Type == chunkstore.NodeSymlink {
		line += " -> " + printable(n.LinkTarget())
	}
	_, err := fmt.Fprintf(fd.out, "%-8s  %-19s  %-*s  %-7s  %12d  %-19s  %s\n", sn.ID().Short(), sn.Time.Local().Format(time.DateTime),
		hostWidth, sn.Host, n.Type, n.Size, n.ModTime.Local().Format(time.DateTime), line)
	return err
}
