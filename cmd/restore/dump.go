package main

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/cli"
)

func dumpCmd() *cobra.Command {
	var f cli.RepoFlags
	var sel pick
	cmd := &cobra.Command{
		Use:   "dump SNAPSHOT PATH --repo R [--index-key F] --identity F [--host H]… [--path P]… [--tag T]… [--time T]",
		Short: "Write a file of a snapshot to stdout, or a directory as a tar stream",
		Long: `dump writes the contents of the file PATH of SNAPSHOT (an ID, a unique ID
prefix, or "latest") to stdout, blob by blob, each checked against its ID
before it is written. A directory (PATH / for the whole snapshot) is written
as a tar stream of its regular files, directories and symlinks, with their
modes, owners and mtimes, named by their full snapshot paths without the
leading / (var/www/index.php).

    restore dump latest /var/www/wp-config.php > wp-config.php
    restore dump latest /var/www/uploads | tar -x -C /tmp/r

A PATH that is not in the snapshot is an error before anything is written.
An error found later (a damaged pack) stops the stream with exit 1: what
was written up to then is correct, the rest is missing.

--host, --path, --tag and --time choose "latest" as for restore.`,
		Args: cli.Args(2, 2, "SNAPSHOT and a PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.Identity == "" {
				return cli.Usage("dumping file contents needs the data identity: use --identity FILE or SYNCD_IDENTITY")
			}
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
			p := path.Clean("/" + args[1])
			n, err := lookup(ctx, repo, sn, p)
			if err != nil {
				return err
			}
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<20)
			d := &dumper{ctx: ctx, repo: repo, h: repo.NewHasher()}
			switch n.Type {
			case chunkstore.NodeFile:
				err = d.file(out, p, n)
			case chunkstore.NodeDir:
				err = d.tar(out, p, n)
			default:
				return fmt.Errorf("%s: a %s in snapshot %s, not a file or directory (restore ls shows its target)", p, n.Type, sn.ID().Short())
			}
			if err != nil {
				return f.KeyError(err)
			}
			return out.Flush()
		},
	}
	f.Register(cmd, true)
	sel.register(cmd, true)
	return cmd
}

// lookup returns the node at p (clean, absolute) in sn; for "/" a
// directory node of the snapshot's root tree.
func lookup(ctx context.Context, repo *chunkstore.Repository, sn *chunkstore.Snapshot, p string) (*chunkstore.Node, error) {
	root := sn.Tree
	n := &chunkstore.Node{Type: chunkstore.NodeDir, Mode: 0o755, ModTime: sn.Time, Subtree: &root}
	if p == "/" {
		return n, nil
	}
	dir := "/"
	for _, name := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if n.Type != chunkstore.NodeDir {
			return nil, fmt.Errorf("%s: %s is not a directory in snapshot %s", p, dir, sn.ID().Short())
		}
		tree, err := repo.LoadTree(ctx, *n.Subtree)
		if err != nil {
			return nil, err
		}
		var ok bool
		if n, ok = tree.Find(name); !ok {
			return nil, fmt.Errorf("%s: no such path in snapshot %s", p, sn.ID().Short())
		}
		dir = path.Join(dir, name)
	}
	return n, nil
}

// dumper streams file contents out of a repository. It keeps the pack it
// read last open, so that the blobs of a file, which sit in order in the
// same packs, cost one ranged read each rather than a new pack header.
type dumper struct {
	ctx  context.Context
	repo *chunkstore.Repository
	h    *crypto.Hasher

	buf    []byte
	copies []chunkstore.Location
	pack   *chunkstore.Pack
	packID chunkstore.ID
}

// file writes the content of file node n (at snapshot path p) to w, blob
// by blob, each checked against its ID, and checks the total against the
// size the tree records.
func (d *dumper) file(w io.Writer, p string, n *chunkstore.Node) error {
	var size uint64
	for _, id := range n.Content {
		data, err := d.blob(id)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		size += uint64(len(data))
	}
	if size != n.Size {
		return fmt.Errorf("%s: content adds up to %d bytes, the tree says %d: %w", p, size, n.Size, chunkstore.ErrCorrupt)
	}
	return nil
}

// blob returns the plaintext of data blob id, from the first of its copies
// that reads back as the blob. The slice is reused by the next call. When
// no copy does, the error says why each failed.
func (d *dumper) blob(id chunkstore.ID) ([]byte, error) {
	d.copies = d.repo.Index().Copies(d.copies[:0], id)
	var errs []string
	for _, l := range d.copies {
		if l.Type != chunkstore.DataBlob {
			continue
		}
		if d.pack == nil || d.packID != l.Pack {
			pack, err := d.repo.OpenPack(d.ctx, chunkstore.DataBlob, l.Pack, l.PackSize, false)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			d.pack, d.packID = pack, l.Pack
		}
		data, err := d.pack.ReadBlob(d.buf[:0], id, l, d.h)
		if err == nil {
			d.buf = data
			return data, nil
		}
		if d.ctx.Err() != nil {
			return nil, d.ctx.Err()
		}
		d.pack = nil
		errs = append(errs, err.Error())
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("blob %s: not in the index: %w", id.Short(), chunkstore.ErrCorrupt)
	}
	return nil, fmt.Errorf("blob %s: no copy reads back as the blob: %s: %w", id.Short(), strings.Join(errs, "; "), chunkstore.ErrCorrupt)
}

// tar writes the directory node n at snapshot path p, and everything
// below it, as a tar stream.
func (d *dumper) tar(w io.Writer, p string, n *chunkstore.Node) error {
	tw := tar.NewWriter(w)
	if err := d.tarNode(tw, p, n); err != nil {
		return err
	}
	return tw.Close()
}

func (d *dumper) tarNode(tw *tar.Writer, p string, n *chunkstore.Node) error {
	hdr := &tar.Header{
		Name: strings.TrimPrefix(p, "/"), Mode: int64(n.Mode), ModTime: n.ModTime,
		Uid: int(n.UID), Gid: int(n.GID), Format: tar.FormatPAX,
	}
	switch n.Type {
	case chunkstore.NodeDir:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case chunkstore.NodeFile:
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(n.Size)
	case chunkstore.NodeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, n.LinkTarget()
	default:
		return fmt.Errorf("%s: unknown node type %q: %w", p, n.Type, chunkstore.ErrCorrupt)
	}
	if p != "/" {
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	switch n.Type {
	case chunkstore.NodeFile:
		err := d.file(tw, p, n)
		if errors.Is(err, tar.ErrWriteTooLong) {
			err = fmt.Errorf("%s: content is longer than the %d bytes the tree says: %w", p, n.Size, chunkstore.ErrCorrupt)
		}
		return err
	case chunkstore.NodeDir:
		tree, err := d.repo.LoadTree(d.ctx, *n.Subtree)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for i := range tree.Nodes {
			c := &tree.Nodes[i]
			if err := d.tarNode(tw, path.Join(p, c.FileName()), c); err != nil {
				return err
			}
		}
	}
	return nil
}
