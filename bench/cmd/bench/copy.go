package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// copyMetricDefs are the rows of the copy section.
var copyMetricDefs = []metric{
	{id: "copy", title: "copy of the repository (the data set's snapshot) to a second bucket: `syncd copy` vs `restic copy`", unit: seconds, bar: 0.5},
	{id: "copy2", title: "second copy, after one more snapshot (mutation round 1): `syncd copy` vs `restic copy` (last pair only)", unit: seconds},
	{id: "copy2-bytes", title: "bytes the second copy sent (ours: packs_copied's bytes; restic: the new snapshot's `Added to the repository`, stored) (last pair only)", unit: byteCount},
}

// Check rows of the copy section.
const (
	copyOnlyNew  = "the second copy sends exactly the packs the new snapshot added to the source (count and bytes)"
	copyVerifies = "the copy passes `restore verify --read-data` / `restic check --read-data`"
	copyRestores = "a restore of the copy's latest snapshot equals the mutated tree"
)

// copyBackend describes the copy section.
func copyBackend(m *minioServer) Backend {
	return Backend{
		Name:  "copy",
		Title: "Copy to a second bucket (`syncd copy` vs `restic copy`, MinIO)",
		Defs:  copyMetricDefs,
		Procedure: fmt.Sprintf("One MinIO server (%s, on 127.0.0.1, its data in the run's scratch space); every repository "+
			"in a bucket of its own under the prefix `%s/`. Once: a fresh copy of the data set is backed up (untimed) by "+
			"each tool into its source repository. Each pair: fresh target buckets; ours runs `syncd init --repo TARGET "+
			"--copy-from SOURCE` and restic `restic init --from-repo SOURCE --copy-chunker-params` (untimed), then ours "+
			"times `syncd copy --repo SOURCE --to TARGET --json` and restic times `restic -r TARGET copy --from-repo "+
			"SOURCE`. In the last pair the copied tree gets mutation round 1, both tools back it up into their source "+
			"(untimed), and the second copy into the same targets is timed; ours' packs sent are compared with the "+
			"packs the new snapshot added to the source bucket (S3 listing before and after it). Then both targets are "+
			"checked with `--read-data`, and ours' target and restic's are restored and compared with the mutated "+
			"tree. Both tools use the same MinIO credentials for both buckets.", m.version, repoPrefix),
	}
}

// copySection runs the copy section: MinIO, the pairs, the report.
func (s *suite) copySection(ctx context.Context, c *config, env *envInfo, work string) error {
	progress("starting MinIO (%s)", filepath.Join(c.bin, "minio"))
	m, err := startMinio(ctx, filepath.Join(c.bin, "minio"), filepath.Join(work, "minio-server-copy"))
	if err != nil {
		return err
	}
	defer m.stop()
	mb := minioBackend(m)
	s.backend = copyBackend(m)
	s.backend.Repo = mb.Repo
	if !s.any() {
		return nil
	}
	s.selectMetrics()
	if err := os.MkdirAll(s.work, 0o755); err != nil {
		return err
	}
	dir, srcs, done, err := s.freshCopy(ctx, 0, "src")
	if err != nil {
		return err
	}
	defer done()
	if err := s.untimedBackups(ctx, 0, srcs, dir, "backup", "the source repository"); err != nil {
		return err
	}
	for p := 1; p <= s.pairs; p++ {
		if err := s.pairCopy(ctx, p, m, dir, srcs); err != nil {
			return err
		}
	}
	return s.publish(env, c.out)
}

// copyReport is the part of `syncd copy --json` the section reads.
type copyReport struct {
	Packs int   `json:"packs_copied"`
	Bytes int64 `json:"bytes_copied"`
}

// pairCopy times one copy of each source into a fresh target; the last
// pair also times a second copy after a mutation and checks the copies.
func (s *suite) pairCopy(ctx context.Context, p int, m *minioServer, dir string, srcs *[2]*Repo) error {
	var dsts [2]*Repo
	defer removeRepos(&dsts)
	for i, t := range s.tools() {
		r, err := s.backend.Repo(ctx, t.name, fmt.Sprintf("p%d-dst", p))
		if err != nil {
			return err
		}
		dsts[i] = r
	}
	ours, restic := srcs[0], srcs[1]
	key := s.ours.indexKey(ours)
	// the target's key is the source's: the tool finds it under the target's name
	kb, err := os.ReadFile(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.ours.indexKey(dsts[0]), kb, 0o600); err != nil {
		return err
	}
	dsts[1].Env = append(dsts[1].Env, "RESTIC_FROM_PASSWORD=x")
	if _, err := s.run.run(ctx, dsts[0].Env, s.ours.syncd, "init", "--repo", dsts[0].URL, "--copy-from", ours.URL, "--index-key", key); err != nil {
		return err
	}
	if _, err := s.restic.exec(ctx, dsts[1], "init", "--from-repo", restic.URL, "--copy-chunker-params"); err != nil {
		return err
	}
	oursCopy := func() (runResult, copyReport, error) {
		res, err := s.run.run(ctx, dsts[0].Env, s.ours.syncd, "copy", "--repo", ours.URL, "--index-key", key, "--to", dsts[0].URL, "--json")
		var rep copyReport
		if err == nil {
			err = json.Unmarshal([]byte(res.Stdout), &rep)
		}
		return res, rep, err
	}
	resticCopy := func() (runResult, error) {
		return s.restic.exec(ctx, dsts[1], "copy", "--from-repo", restic.URL)
	}
	res, rep, err := oursCopy()
	if err != nil {
		return err
	}
	s.recordRun(p, "copy", 0, res, fmt.Sprintf(" | %d packs, %s", rep.Packs, iec(rep.Bytes)))
	rr, err := resticCopy()
	if err != nil {
		return err
	}
	s.recordRun(p, "copy", 1, rr, " | "+lastLine(rr.Stdout))
	if p != s.pairs {
		return nil
	}

	// one more snapshot in each source, then the second copy
	client := minioBackendClient(m)
	bucket := func(r *Repo) string { return strings.TrimSuffix(strings.TrimPrefix(r.URL, "s3://"), "/"+repoPrefix) }
	before, err := packSizes(ctx, client, bucket(ours))
	if err != nil {
		return err
	}
	if err := s.data.mutate(ctx, s.run, dir, 1); err != nil {
		return err
	}
	var added [2]int64
	for i, t := range s.tools() {
		br, err := t.backup(ctx, srcs[i], dir)
		if err != nil {
			return err
		}
		s.say(p, "%-9s %-6s %7.2f s (cpu %6.2f s) untimed: backup of the mutated tree | %s", "backup", t.name, br.Wall.Seconds(), br.CPU.Seconds(), t.summary(br))
		if i == 1 {
			added[1] = resticAdded(br.Stdout)
		}
	}
	after, err := packSizes(ctx, client, bucket(ours))
	if err != nil {
		return err
	}
	newPacks := 0
	for name, size := range after {
		if _, ok := before[name]; !ok {
			newPacks++
			added[0] += size
		}
	}
	res, rep, err = oursCopy()
	if err != nil {
		return err
	}
	s.recordRun(p, "copy2", 0, res, fmt.Sprintf(" | %d packs, %s; the new snapshot added %d packs, %s", rep.Packs, iec(rep.Bytes), newPacks, iec(added[0])))
	s.record("copy2-bytes", 0, float64(rep.Bytes))
	result := fmt.Sprintf("pass (%d of %d packs, %s)", rep.Packs, newPacks, iec(rep.Bytes))
	if rep.Packs != newPacks || rep.Bytes != added[0] {
		result = fmt.Sprintf("FAIL: sent %d packs (%s), the snapshot added %d (%s)", rep.Packs, iec(rep.Bytes), newPacks, iec(added[0]))
	}
	s.note(copyOnlyNew, 0, result)
	s.note(copyOnlyNew, 1, "n/a")
	rr, err = resticCopy()
	if err != nil {
		return err
	}
	s.recordRun(p, "copy2", 1, rr, " | "+lastLine(rr.Stdout))
	s.record("copy2-bytes", 1, float64(added[1]))

	// the copies verify and restore to the mutated tree
	vr, err := s.run.run(ctx, dsts[0].Env, s.ours.restoreBin, "verify", "--read-data", "--repo", dsts[0].URL, "--index-key", key, "--identity", s.ours.dataKey)
	s.note(copyVerifies, 0, verdict(err, lastLine(vr.Stdout)))
	vr, err = s.restic.exec(ctx, dsts[1], "check", "--read-data")
	s.note(copyVerifies, 1, verdict(err, lastLine(vr.Stdout)))
	for i, t := range s.tools() {
		target := filepath.Join(s.work, "restore-"+t.name)
		os.RemoveAll(target)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if _, err := t.restore(ctx, dsts[i], target); err != nil {
			s.note(copyRestores, i, "FAIL: "+err.Error())
			continue
		}
		problems := compareTrees(ctx, dir, filepath.Join(target, dir))
		result := "pass"
		if len(problems) > 0 {
			result = fmt.Sprintf("FAIL (%d): %s", len(problems), summarize(problems, 3))
		}
		s.note(copyRestores, i, result)
		os.RemoveAll(target)
	}
	return nil
}

// verdict is a check's result from a command's error and last line.
func verdict(err error, last string) string {
	if err != nil {
		return "FAIL: " + err.Error()
	}
	return "pass (" + last + ")"
}

// resticAdded returns the stored bytes of restic backup's "Added to the
// repository: X (Y stored)" line, 0 when it is missing.
func resticAdded(out string) int64 {
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "Added to the repository:") {
			continue
		}
		_, stored, ok := strings.Cut(l, "(")
		if !ok {
			return 0
		}
		stored = strings.TrimSuffix(strings.TrimSpace(stored), "stored)")
		return parseIEC(strings.TrimSpace(stored))
	}
	return 0
}

// parseIEC parses restic's "12.345 MiB".
func parseIEC(s string) int64 {
	var v float64
	var u string
	if _, err := fmt.Sscanf(s, "%f %s", &v, &u); err != nil {
		return 0
	}
	mult := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[u]
	return int64(v * mult)
}

// minioBackendClient is an S3 client of m with its root credentials.
func minioBackendClient(m *minioServer) *s3.Client {
	return s3.New(s3.Options{
		Region:       minioRegion,
		BaseEndpoint: aws.String(m.endpoint),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: m.access, SecretAccessKey: m.secret}, nil
		}),
	})
}

// packSizes lists the packs (data/ and tree/) of the repository in bucket.
func packSizes(ctx context.Context, client *s3.Client, bucket string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, dir := range []string{"data/", "tree/"} {
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(repoPrefix + "/" + dir)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list bucket %s: %v", bucket, err)
			}
			for _, o := range page.Contents {
				out[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
			}
		}
	}
	return out, nil
}
