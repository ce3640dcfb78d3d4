package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/s3"
	"github.com/syncd/syncd/internal/miniotest"
)

// copyOut is what syncd copy --json prints.
type copyOut struct {
	Target    string `json:"target"`
	Snapshots []struct {
		ID string `json:"id"`
	} `json:"snapshots"`
	Present int   `json:"snapshots_present"`
	Packs   int   `json:"packs_copied"`
	Bytes   int64 `json:"bytes_copied"`
	Resumed int   `json:"packs_resumed"`
}

// s3Objects lists the objects under prefix of the repository at url with
// root credentials: name → size.
func s3Objects(t *testing.T, srv *miniotest.Server, url, prefix string) map[string]int64 {
	t.Helper()
	for _, kv := range s3Env(t, srv, srv.AccessKey, srv.SecretKey) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	be, err := s3.Open(context.Background(), s3.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	out := map[string]int64{}
	err = be.List(context.Background(), prefix, func(fi backend.Info) error { out[fi.Name] = fi.Size; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// s3Packs lists the packs (data/ and tree/) of the repository at url.
func s3Packs(t *testing.T, srv *miniotest.Server, url string) map[string]int64 {
	t.Helper()
	out := s3Objects(t, srv, url, "data/")
	for n, s := range s3Objects(t, srv, url, "tree/") {
		out[n] = s
	}
	return out
}

// snapS3 snapshots paths into r with env and returns the short ID.
func snapS3(t *testing.T, env []string, r *repo, paths ...string) string {
	t.Helper()
	out := ok(t, env, "syncd", append(append([]string{"snapshot"}, r.flags("--host", "test")...), paths...)...)
	f := strings.Fields(out)
	if len(f) < 2 || f[0] != "snapshot" {
		t.Fatalf("unexpected snapshot output %q", out)
	}
	return f[1]
}

func runCopy(t *testing.T, env []string, r *repo, to string) copyOut {
	t.Helper()
	return parseCopy(t, ok(t, env, "syncd", append([]string{"copy", "--json", "--to", to}, r.flags()...)...))
}

// TestCopyToSecondBucket copies to another bucket, then after one more
// snapshot copies only that snapshot's new packs; the copy verifies,
// restores equal to the source, and outlives the source's forget and
// prune.
func TestCopyToSecondBucket(t *testing.T) {
	srv := miniotest.Start(t)
	r, env := newS3Repo(t, srv, "s3://backups/web")
	const to = "s3://offsite/web"
	ok(t, env, "syncd", "init", "--repo", to, "--copy-from", r.url, "--index-key", r.indexKey)
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	for i := range 3 {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("big%d", i)), 12<<20, int64(i))
	}
	first := snapS3(t, env, r, src)
	firstTree := filepath.Join(t.TempDir(), "first")
	ok(t, nil, "/bin/cp", "-a", src, firstTree)

	c := runCopy(t, env, r, to)
	srcPacks := s3Packs(t, srv, r.url)
	if len(c.Snapshots) != 1 || c.Packs != len(srcPacks) || c.Resumed != 0 {
		t.Errorf("first copy: %+v; want 1 snapshot, all %d packs of the source", c, len(srcPacks))
	}

	// one more snapshot: a file gone, one new; the second copy sends the
	// new snapshot's packs and nothing else
	if err := os.Remove(filepath.Join(src, "big0")); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(src, "big3"), 10<<20, 3)
	snapS3(t, env, r, src)
	var fresh []string
	var freshBytes int64
	for n, size := range s3Packs(t, srv, r.url) {
		if _, ok := srcPacks[n]; !ok {
			fresh = append(fresh, n)
			freshBytes += size
		}
	}
	before := s3Packs(t, srv, to)
	c = runCopy(t, env, r, to)
	// the packs of the first snapshot are not even looked at (resumed):
	// the target's index says it has their blobs
	if len(c.Snapshots) != 1 || c.Present != 1 || c.Packs != len(fresh) || c.Bytes != freshBytes || c.Resumed != 0 {
		t.Errorf("second copy: %d snapshots, %d present, %d packs (%d bytes), %d resumed; want 1, 1, the %d new packs (%d bytes), 0",
			len(c.Snapshots), c.Present, c.Packs, c.Bytes, c.Resumed, len(fresh), freshBytes)
	}
	after := s3Packs(t, srv, to)
	for _, n := range fresh {
		if _, was := before[n]; was {
			t.Errorf("new pack %s was in the target before the copy", n)
		}
		if _, is := after[n]; !is {
			t.Errorf("new pack %s is not in the target after the copy", n)
		}
	}
	if len(after) != len(before)+len(fresh) {
		t.Errorf("target has %d packs after the copy, want %d + %d", len(after), len(before), len(fresh))
	}

	// the copy verifies and restores equal to the source, with the keys alone
	copyFlags := func(extra ...string) []string {
		return append([]string{"--repo", to, "--index-key", r.indexKey, "--identity", r.dataKey}, extra...)
	}
	out := ok(t, env, "restore", append([]string{"verify", "--read-data"}, copyFlags()...)...)
	if !strings.Contains(out, "no problems found") || !strings.Contains(out, "2 snapshots") {
		t.Errorf("verify --read-data of the copy: %s", out)
	}
	target := t.TempDir()
	ok(t, env, "restore", append([]string{"latest"}, copyFlags("--target", target)...)...)
	sameTree(t, src, filepath.Join(target, src))

	// the source forgets the first snapshot and prunes the data only it
	// used: the copy keeps it, whole
	ok(t, env, "syncd", append([]string{"forget", "--keep-last", "1", "--prune"}, r.flags()...)...)
	if n := len(s3Objects(t, srv, r.url, "snapshots/")); n != 1 {
		t.Fatalf("source has %d snapshots after forget, want 1", n)
	}
	gone := 0
	for n := range srcPacks {
		if _, ok := s3Packs(t, srv, r.url)[n]; !ok {
			gone++
		}
	}
	if gone == 0 {
		t.Fatalf("the source's prune deleted no pack of the first snapshot; the test proves nothing")
	}
	out = ok(t, env, "restore", append([]string{"verify", "--read-data"}, copyFlags()...)...)
	if !strings.Contains(out, "no problems found") || !strings.Contains(out, "2 snapshots") {
		t.Errorf("verify --read-data of the copy after the source's prune: %s", out)
	}
	target = t.TempDir()
	ok(t, env, "restore", append([]string{first}, copyFlags("--target", target)...)...)
	sameTree(t, firstTree, filepath.Join(target, src))
	// and a copy now sends nothing: the target has what the source has
	if c = runCopy(t, env, r, to); len(c.Snapshots) != 0 || c.Packs != 0 {
		t.Errorf("copy after the source's prune: %+v, want nothing sent", c)
	}
}

// TestCopyRefusesOtherChunker: a target made by a plain init (its own
// chunker polynomial) is refused in one line before anything is written
// to it.
func TestCopyRefusesOtherChunker(t *testing.T) {
	srv := miniotest.Start(t)
	r, env := newS3Repo(t, srv, "s3://backups/web")
	src := t.TempDir()
	writeRandom(t, filepath.Join(src, "f"), 1<<20, 1)
	snapS3(t, env, r, src)
	const to = "s3://offsite/web"
	ok(t, env, "syncd", "init", "--repo", to, "--index-key", r.indexKey, "--data-recipient", r.recipient)
	before, srcBefore := s3Objects(t, srv, to, ""), s3Objects(t, srv, r.url, "")
	res := run(t, env, "syncd", append([]string{"copy", "--to", to}, r.flags()...)...)
	oneLine(t, "copy to a target with another chunker", res, 1, to, "chunks differently", "--copy-from")
	if after := s3Objects(t, srv, to, ""); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused copy changed the target: %v, was %v", after, before)
	}
	// not even a lock in the source
	if after := s3Objects(t, srv, r.url, ""); fmt.Sprint(after) != fmt.Sprint(srcBefore) {
		t.Errorf("refused copy changed the source: %v, was %v", after, srcBefore)
	}
	// a target that is no repository at all, and a missing --to
	res = run(t, env, "syncd", append([]string{"copy", "--to", "s3://offsite/nothing"}, r.flags()...)...)
	oneLine(t, "copy to an empty prefix", res, 1, "s3://offsite/nothing", "syncd init")
	res = run(t, env, "syncd", append([]string{"copy"}, r.flags()...)...)
	oneLine(t, "copy without --to", res, 2, "--to")
	res = run(t, env, "syncd", "init", "--repo", "s3://offsite/x", "--copy-from", r.url, "--index-key", r.indexKey, "--data-recipient", r.recipient)
	oneLine(t, "init --copy-from with a recipient", res, 2, "--copy-from")
}

// TestCopyKilled kills a copy (kill -9) after its second pack: the target
// then holds no snapshot; the next copy does not send those packs again,
// completes, and the target verifies and restores.
func TestCopyKilled(t *testing.T) {
	srv := miniotest.Start(t)
	r, env := newS3Repo(t, srv, "s3://backups/web")
	const to = "s3://offsite/web"
	ok(t, env, "syncd", "init", "--repo", to, "--copy-from", r.url, "--index-key", r.indexKey)
	src := t.TempDir()
	for i := range 6 { // 72 MiB of incompressible data: several packs
		writeRandom(t, filepath.Join(src, fmt.Sprintf("f%d", i)), 12<<20, int64(i))
	}
	snapS3(t, env, r, src)
	total := len(s3Packs(t, srv, r.url))
	kill := append(append([]string(nil), env...), "SYNCD_TEST_COPY_KILL=pack copied:2")
	res := run(t, kill, "syncd", append([]string{"copy", "--workers", "1", "--to", to}, r.flags()...)...)
	if res.code != -1 { // killed by a signal
		t.Fatalf("copy with the kill hook was not killed: %s", res)
	}
	if n := len(s3Objects(t, srv, to, "snapshots/")); n != 0 {
		t.Fatalf("the killed copy left %d snapshot(s) in the target", n)
	}
	uploaded := len(s3Packs(t, srv, to))
	if uploaded < 2 || uploaded >= total {
		t.Fatalf("the killed copy uploaded %d of %d packs, want 2 or more, not all", uploaded, total)
	}
	c := runCopy(t, env, r, to)
	if len(c.Snapshots) != 1 || c.Resumed != uploaded || c.Packs != total-uploaded {
		t.Errorf("copy after the kill: %+v; want 1 snapshot, %d packs resumed, %d sent", c, uploaded, total-uploaded)
	}
	flags := []string{"--repo", to, "--index-key", r.indexKey, "--identity", r.dataKey}
	out := ok(t, env, "restore", append([]string{"verify", "--read-data"}, flags...)...)
	if !strings.Contains(out, "no problems found") {
		t.Errorf("verify --read-data after the resumed copy: %s", out)
	}
	target := t.TempDir()
	ok(t, env, "restore", append([]string{"latest", "--target", target}, flags...)...)
	sameTree(t, src, filepath.Join(target, src))
}
