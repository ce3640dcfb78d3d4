package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// drillSample is the --sample of the sample drill.
const drillSample = 500

// drillMetricDefs are the rows of the drill section.
var drillMetricDefs = []metric{
	{id: "drill", title: "full drill: `restore drill` vs `restic restore latest` then `restic check --read-data` (sum of both)", unit: seconds, bar: 0.6},
	{id: "sample", title: fmt.Sprintf("`restore drill --sample %d` vs a full `restore drill` (ours both: the ratio is the sample's share)", drillSample), unit: seconds, bar: 0.1},
	{id: "estimate", title: "the sample drill's estimated full restore time vs the full drill's measured one (ours both; goal: ratio within 0.75–1.25, each pair in the checks below)", unit: seconds},
	{id: "restore-part", title: "the full drill's restore alone (its report's seconds) vs `restic restore latest` (informational)", unit: seconds},
}

// drillEstimateCheck is the check row of the estimate's lower bound.
const drillEstimateCheck = "the sample's estimate is within 25% of the measured full restore (each pair)"

// drillBackend is the drill section: local repositories below root.
func drillBackend(root string) Backend {
	b := localBackend(root)
	b.Name = "drill"
	b.Title = "Restore drill (`restore drill`) against a restic restore and `check --read-data`"
	b.Defs = drillMetricDefs
	b.Procedure = fmt.Sprintf("Each pair works on a fresh copy of the data set (cp -a, at the same path for both tools) "+
		"and fresh local repositories, into which each tool backs the copy up (untimed). Then, in this order: ours times "+
		"`restore drill --target DIR --json` (a full drill: restores the latest snapshot into a scratch directory "+
		"under DIR, verifies every byte, removes it and writes its record); restic times `restic restore latest "+
		"--target DIR` and then `restic check --read-data` (restic verifies what it restores only by the check of "+
		"every pack), and the drill row compares ours with the sum of the two; ours times `restore drill --sample %d "+
		"--target DIR --json`, whose wall time is compared with the full drill's and whose estimated_seconds is "+
		"compared with the full drill's measured restore seconds (both from --json). The targets are on the work "+
		"file system and removed between runs.", drillSample)
	return b
}

// drillReport is the part of `restore drill --json` the section reads.
type drillReport struct {
	OK        bool `json:"ok"`
	Snapshots []struct {
		Files      int64   `json:"files"`
		Bytes      int64   `json:"bytes"`
		Seconds    float64 `json:"seconds"`
		EstSeconds float64 `json:"estimated_seconds"`
	} `json:"snapshots"`
}

// pairDrill backs the data set up with both tools and runs the drills (see
// drillBackend's Procedure).
func (s *suite) pairDrill(ctx context.Context, p int) error {
	dir, repos, done, err := s.freshCopy(ctx, p, "drill")
	if err != nil {
		return err
	}
	defer done()
	if err := s.untimedBackups(ctx, p, repos, dir, "backup", "backup"); err != nil {
		return err
	}
	ours, restic := repos[0], repos[1]
	target := filepath.Join(s.work, "drill-target")
	defer os.RemoveAll(target)

	drill := func(extra ...string) (runResult, *drillReport, error) {
		if err := os.RemoveAll(target); err != nil {
			return runResult{}, nil, err
		}
		args := append([]string{"drill", "--repo", ours.URL, "--index-key", s.ours.indexKey(ours), "--identity", s.ours.dataKey,
			"--target", target, "--json"}, extra...)
		res, err := s.run.run(ctx, ours.Env, s.ours.restoreBin, args...)
		if err != nil {
			return res, nil, err
		}
		var rep drillReport
		if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil || !rep.OK || len(rep.Snapshots) != 1 {
			return res, nil, fmt.Errorf("restore drill %v: want an OK report of one snapshot (%v): %s", extra, err, tail(res.Stdout, 5))
		}
		return res, &rep, nil
	}

	full, fullRep, err := drill()
	if err != nil {
		return err
	}
	fs := fullRep.Snapshots[0]
	s.recordRun(p, "drill", 0, full, fmt.Sprintf(" | %d files, %s restored in %.2f s", fs.Files, iec(fs.Bytes), fs.Seconds))
	s.record("restore-part", 0, fs.Seconds)
	s.record("sample", 1, full.Wall.Seconds())
	s.record("estimate", 1, fs.Seconds)

	if err := os.RemoveAll(target); err != nil {
		return err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	rr, err := s.restic.exec(ctx, restic, "restore", "latest", "--target", target)
	if err != nil {
		return err
	}
	s.say(p, "%-9s %-6s %7.2f s (cpu %6.2f s) restic restore latest", "restore", "restic", rr.Wall.Seconds(), rr.CPU.Seconds())
	s.record("restore-part", 1, rr.Wall.Seconds())
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	rc, err := s.restic.exec(ctx, restic, "check", "--read-data")
	if err != nil {
		return err
	}
	s.say(p, "%-9s %-6s %7.2f s (cpu %6.2f s) restic check --read-data | %s", "check", "restic", rc.Wall.Seconds(), rc.CPU.Seconds(), lastLine(rc.Stdout))
	s.record("drill", 1, rr.Wall.Seconds()+rc.Wall.Seconds())
	for _, m := range s.metrics {
		if m.id == "drill" {
			m.cpu[1] = append(m.cpu[1], rr.CPU.Seconds()+rc.CPU.Seconds())
		}
	}
	s.say(p, "%-9s %-6s %7.2f s (cpu %6.2f s) restore + check", "drill", "restic", rr.Wall.Seconds()+rc.Wall.Seconds(), rr.CPU.Seconds()+rc.CPU.Seconds())

	sample, sampleRep, err := drill("--sample", fmt.Sprint(drillSample))
	if err != nil {
		return err
	}
	ss := sampleRep.Snapshots[0]
	s.recordRun(p, "sample", 0, sample, fmt.Sprintf(" | sample: %d files, %s restored in %.2f s; estimate %.2f s", ss.Files, iec(ss.Bytes), ss.Seconds, ss.EstSeconds))
	s.record("estimate", 0, ss.EstSeconds)
	ratio := ss.EstSeconds / fs.Seconds
	result := "pass"
	if math.Abs(ratio-1) > 0.25 {
		result = "FAIL"
	}
	prev := ""
	for _, c := range s.checks {
		if c.title == drillEstimateCheck {
			prev = c.result[0] + ", "
		}
	}
	s.note(drillEstimateCheck, 0, fmt.Sprintf("%s%s (%.2f)", prev, result, ratio))
	s.note(drillEstimateCheck, 1, "n/a")
	s.say(p, "estimate %.2f s vs measured %.2f s: ratio %.2f, %s", ss.EstSeconds, fs.Seconds, ratio, result)
	return nil
}
