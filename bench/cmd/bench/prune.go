package main

import (
	"context"
	"fmt"
)

// pruneRounds is how many mutation rounds follow the initial backup: the
// history has pruneRounds+1 snapshots, and forget keeps the newest half.
const pruneRounds = 3

// pruneMetricDefs are the rows of the prune section.
var pruneMetricDefs = []metric{
	{id: "prune", title: "forget half the snapshots and prune: `syncd forget --prune` (index key only) vs `restic forget --prune`", unit: seconds, bar: 1.0},
	{id: "repack", title: "the same, then `restore prune --repack --max-unused 5%` (data identity; sum of both) vs `restic forget --prune`", unit: seconds, bar: 1.0},
	{id: "size-before", title: "repository size before (informational)", unit: byteCount},
	{id: "size-prune", title: "repository size after `syncd forget --prune` (informational)", unit: byteCount},
	{id: "size-repack", title: "repository size after the repack (informational)", unit: byteCount},
}

// pruneBackend is the prune section: local repositories below root.
func pruneBackend(root string) Backend {
	b := localBackend(root)
	b.Name = "prune"
	b.Title = "Prune after forgetting half the snapshots"
	b.Defs = pruneMetricDefs
	b.Procedure = fmt.Sprintf("Each pair works on a fresh copy of the data set (cp -a, at the same path for both tools) "+
		"and fresh local repositories. Each tool backs the copy up (untimed), then %d times applies the next mutation "+
		"round (mkdata.py --mutate --round k, k = 1…%d) to it and backs it up again (untimed): %d snapshots, the "+
		"same history for both. Then ours times `syncd forget --keep-last %d --prune` (index key only: unused "+
		"packs deleted, partly used tree packs rewritten, partly used content packs kept) and restic times "+
		"`restic forget --keep-last %d --prune` (its defaults: max-unused 5%%, repacking partly used packs). Ours "+
		"then times `restore prune --repack --max-unused 5%%` (with the data identity: rewrites the content packs "+
		"more than 5%% unused); the repack row is the sum of ours' two runs against restic's one. Repository sizes "+
		"are du -sb.", pruneRounds, pruneRounds, pruneRounds+1, (pruneRounds+1)/2, (pruneRounds+1)/2)
	return b
}

// pairPrune builds the same history in a repository of each tool, then
// forgets half of it and prunes (see pruneBackend's Procedure).
func (s *suite) pairPrune(ctx context.Context, p int) error {
	dir, repos, done, err := s.freshCopy(ctx, p, "prune")
	if err != nil {
		return err
	}
	defer done()
	for k := 0; k <= pruneRounds; k++ {
		if k > 0 {
			if err := s.data.mutate(ctx, s.run, dir, k); err != nil {
				return err
			}
		}
		if err := s.untimedBackups(ctx, p, repos, dir, "history", fmt.Sprintf("backup %d of the history", k+1)); err != nil {
			return err
		}
	}
	keep := fmt.Sprint((pruneRounds + 1) / 2)
	ours, restic := repos[0], repos[1]
	for i, r := range repos {
		size, err := r.Size(ctx)
		if err != nil {
			return err
		}
		s.record("size-before", i, float64(size))
	}

	res, err := s.run.run(ctx, ours.Env, s.ours.syncd, "forget", "--repo", ours.URL, "--index-key", s.ours.indexKey(ours),
		"--keep-last", keep, "--prune")
	if err != nil {
		return err
	}
	s.recordRun(p, "prune", 0, res, " | "+lastLine(res.Stdout))
	pruneWall := res.Wall.Seconds()
	size, err := ours.Size(ctx)
	if err != nil {
		return err
	}
	s.record("size-prune", 0, float64(size))
	res, err = s.run.run(ctx, ours.Env, s.ours.restoreBin, "prune", "--repo", ours.URL, "--index-key", s.ours.indexKey(ours),
		"--identity", s.ours.dataKey, "--repack", "--max-unused", "5%")
	if err != nil {
		return err
	}
	s.say(p, "%-9s %-6s %7.2f s (cpu %6.2f s) restore prune --repack | %s", "repack", "ours", res.Wall.Seconds(), res.CPU.Seconds(), lastLine(res.Stdout))
	s.record("repack", 0, pruneWall+res.Wall.Seconds())
	if size, err = ours.Size(ctx); err != nil {
		return err
	}
	s.record("size-repack", 0, float64(size))

	res, err = s.restic.exec(ctx, restic, "forget", "--keep-last", keep, "--prune")
	if err != nil {
		return err
	}
	s.recordRun(p, "prune", 1, res, " | "+lastLine(res.Stdout))
	s.record("repack", 1, res.Wall.Seconds())
	if size, err = restic.Size(ctx); err != nil {
		return err
	}
	s.record("size-prune", 1, float64(size))
	s.record("size-repack", 1, float64(size))

	// Both repositories must still restore the newest snapshot.
	if p == 1 {
		for i := range s.tools() {
			if err := s.restoreAndCheck(ctx, p, i, repos[i], dir, "", "after the prune, the latest snapshot restores to the mutated copy"); err != nil {
				return err
			}
		}
	}
	return nil
}
