package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/cli"
)

// statsJSON is one row of stats: one host's snapshots, or all of them.
type statsJSON struct {
	Host        string  `json:"host,omitempty"` // empty in "total"
	Snapshots   int     `json:"snapshots"`
	Files       int64   `json:"files"`        // restore size: files (a hard-link group once)
	Bytes       int64   `json:"bytes"`        // restore size: bytes of those files
	Blobs       int64   `json:"blobs"`        // distinct blobs referenced (data and tree)
	RawBytes    int64   `json:"raw_bytes"`    // their plaintext size
	StoredBytes int64   `json:"stored_bytes"` // their size as stored in packs
	Ratio       float64 `json:"dedup_ratio"`  // bytes / stored_bytes; 0 when nothing is stored
	Missing     int64   `json:"missing_blobs,omitempty"`
}

func statsCmd() *cobra.Command {
	var f cli.RepoFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats --repo R --index-key F|--identity F [SNAPSHOT…] [--json]",
		Short: "Show restore size, stored size and dedup ratio, per host",
		Long: `stats sums up SNAPSHOTs (IDs, unique ID prefixes or "latest"; default: every
snapshot), one row per host and a total:

    SNAPSHOTS     how many
    FILES, SIZE   the restore size: what restoring each snapshot writes, summed
                  (regular files only, not dirs or symlinks as restic counts;
                  a hard-link group once per snapshot, as restore writes it)
    BLOBS, STORED the distinct blobs (data and tree) those snapshots reference,
                  and their size as stored in packs (compressed), from the index
    RATIO         SIZE / STORED: what deduplication and compression save together

A blob shared by two hosts is in both hosts' STORED and once in the total's,
so the hosts' rows may add up to more than the total. stats reads snapshots,
trees and the index, never file contents: the index key is enough. --json
prints {"hosts":[…],"total":{…}} with raw_bytes, the blobs' plaintext size.`,
		Args: cli.Args(0, -1, "SNAPSHOTs (ID, ID prefix or latest), or none for all"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, badIdx, err := f.Open(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			for _, e := range badIdx {
				fmt.Fprintf(os.Stderr, "warning: %s\n", e.Err)
			}
			snaps, err := statsSnapshots(ctx, repo, args)
			if err != nil {
				return err
			}
			s := &statser{ctx: ctx, repo: repo, sums: make(map[chunkstore.ID]*treeSum), sizes: make(map[chunkstore.ID]restoreSize)}
			hosts, total, err := s.run(snaps)
			if err != nil {
				return err
			}
			if total.Missing > 0 {
				fmt.Fprintf(os.Stderr, "warning: %d blob(s) these snapshots reference are in no index; their stored size is unknown (restore verify names them)\n", total.Missing)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Hosts []statsJSON `json:"hosts"`
					Total statsJSON   `json:"total"`
				}{hosts, total})
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "HOST\tSNAPSHOTS\tFILES\tSIZE\tBLOBS\tSTORED\tRATIO")
			for _, r := range append(hosts, total) {
				name := r.Host
				if name == "" {
					name = "total"
				}
				ratio := "-"
				if r.Ratio > 0 {
					ratio = fmt.Sprintf("%.2fx", r.Ratio)
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%s\t%s\n", name, r.Snapshots, r.Files, cli.Bytes(r.Bytes),
					r.Blobs, cli.Bytes(r.StoredBytes), ratio)
			}
			return tw.Flush()
		},
	}
	f.Register(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"hosts":[…],"total":{…}}`)
	return cmd
}

// statsSnapshots resolves refs (none: every readable snapshot, with a
// warning for each unreadable one), each snapshot once.
func statsSnapshots(ctx context.Context, repo *chunkstore.Repository, refs []string) ([]*chunkstore.Snapshot, error) {
	if len(refs) == 0 {
		return readableSnapshots(ctx, repo, " (not counted)")
	}
	var out []*chunkstore.Snapshot
	for _, ref := range refs {
		sn, err := findSnapshot(ctx, repo, ref)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(out, func(s *chunkstore.Snapshot) bool { return s.ID() == sn.ID() }) {
			out = append(out, sn)
		}
	}
	return out, nil
}

// treeSum is what stats needs of one tree, read once however many
// snapshots hold it.
type treeSum struct {
	subtrees     []chunkstore.ID
	content      []chunkstore.ID // data blobs of the files in this directory
	files, bytes int64           // files with one link
	links        []linkedFile    // files with more
}

// linkedFile is a file of a hard-link group: restore writes the group once.
type linkedFile struct {
	key  [2]uint64 // device, inode
	size int64
}

// restoreSize is the restore size of a tree with no hard links below it.
type restoreSize struct{ files, bytes int64 }

// statser computes stats. It is not safe for concurrent use.
type statser struct {
	ctx   context.Context
	repo  *chunkstore.Repository
	sums  map[chunkstore.ID]*treeSum
	sizes map[chunkstore.ID]restoreSize
}

// run returns one row per host, sorted by host, and the total.
func (s *statser) run(snaps []*chunkstore.Snapshot) ([]statsJSON, statsJSON, error) {
	byHost := map[string][]*chunkstore.Snapshot{}
	for _, sn := range snaps {
		byHost[sn.Host] = append(byHost[sn.Host], sn)
	}
	names := make([]string, 0, len(byHost))
	for h := range byHost {
		names = append(names, h)
	}
	slices.Sort(names)
	allTrees, allData := map[chunkstore.ID]struct{}{}, map[chunkstore.ID]struct{}{}
	total := statsJSON{}
	rows := make([]statsJSON, 0, len(names))
	for _, h := range names {
		row := statsJSON{Host: h, Snapshots: len(byHost[h])}
		trees, data := map[chunkstore.ID]struct{}{}, map[chunkstore.ID]struct{}{}
		for _, sn := range byHost[h] {
			files, bytes, _, err := s.restoreSize(sn.Tree, map[[2]uint64]bool{})
			if err != nil {
				return nil, total, fmt.Errorf("snapshot %s: %w", sn.ID().Short(), err)
			}
			row.Files += files
			row.Bytes += bytes
			if err := s.refs(sn.Tree, trees, data); err != nil {
				return nil, total, fmt.Errorf("snapshot %s: %w", sn.ID().Short(), err)
			}
		}
		s.stored(&row, trees, data)
		rows = append(rows, row)
		total.Snapshots += row.Snapshots
		total.Files += row.Files
		total.Bytes += row.Bytes
		for id := range trees {
			allTrees[id] = struct{}{}
		}
		for id := range data {
			allData[id] = struct{}{}
		}
	}
	s.stored(&total, allTrees, allData)
	return rows, total, nil
}

// stored fills in row's blob counts and sizes from the index.
func (s *statser) stored(row *statsJSON, trees, data map[chunkstore.ID]struct{}) {
	idx := s.repo.Index()
	for _, set := range []map[chunkstore.ID]struct{}{trees, data} {
		for id := range set {
			loc, ok := idx.Lookup(id)
			if !ok {
				row.Missing++
				continue
			}
			row.Blobs++
			row.RawBytes += int64(loc.Raw)
			row.StoredBytes += int64(loc.Length)
		}
	}
	if row.StoredBytes > 0 {
		row.Ratio = float64(row.Bytes) / float64(row.StoredBytes)
	}
}

// tree returns the summary of tree id, reading it the first time.
func (s *statser) tree(id chunkstore.ID) (*treeSum, error) {
	if ts, ok := s.sums[id]; ok {
		return ts, nil
	}
	t, err := s.repo.LoadTree(s.ctx, id)
	if err != nil {
		return nil, err
	}
	ts := &treeSum{}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		switch n.Type {
		case chunkstore.NodeDir:
			if n.Subtree != nil {
				ts.subtrees = append(ts.subtrees, *n.Subtree)
			}
		case chunkstore.NodeFile:
			ts.content = append(ts.content, n.Content...)
			// As the restorer: a file with more than one link and an
			// inode is written once per (device, inode).
			if n.Links > 1 && n.Inode != 0 {
				ts.links = append(ts.links, linkedFile{key: [2]uint64{n.Device, n.Inode}, size: int64(n.Size)})
			} else {
				ts.files++
				ts.bytes += int64(n.Size)
			}
		}
	}
	s.sums[id] = ts
	return ts, nil
}

// restoreSize returns the files and bytes a restore of tree id writes,
// counting each hard-link group once among those in seen (one snapshot's),
// and whether any hard-linked file is below it. A subtree without one has
// the same size wherever it is, so it is summed once.
func (s *statser) restoreSize(id chunkstore.ID, seen map[[2]uint64]bool) (files, bytes int64, linked bool, err error) {
	if r, ok := s.sizes[id]; ok {
		return r.files, r.bytes, false, nil
	}
	if err := s.ctx.Err(); err != nil {
		return 0, 0, false, err
	}
	ts, err := s.tree(id)
	if err != nil {
		return 0, 0, false, err
	}
	files, bytes, linked = ts.files, ts.bytes, len(ts.links) > 0
	for _, l := range ts.links {
		if !seen[l.key] {
			seen[l.key] = true
			files++
			bytes += l.size
		}
	}
	for _, sub := range ts.subtrees {
		f, b, l, err := s.restoreSize(sub, seen)
		if err != nil {
			return 0, 0, false, err
		}
		files, bytes, linked = files+f, bytes+b, linked || l
	}
	if !linked {
		s.sizes[id] = restoreSize{files, bytes}
	}
	return files, bytes, linked, nil
}

// refs adds tree id, the trees below it and the data blobs of their files
// to trees and data; a tree already in trees is not walked again.
func (s *statser) refs(id chunkstore.ID, trees, data map[chunkstore.ID]struct{}) error {
	if _, ok := trees[id]; ok {
		return nil
	}
	trees[id] = struct{}{}
	ts, err := s.tree(id)
	if err != nil {
		return err
	}
	for _, c := range ts.content {
		data[c] = struct{}{}
	}
	for _, sub := range ts.subtrees {
		if err := s.refs(sub, trees, data); err != nil {
			return err
		}
	}
	return nil
}
