package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/s3"
	"github.com/syncd/syncd/internal/miniotest"
)

// webNodePolicy is docs/S3.md's policy for web nodes: put, get, list;
// delete only locks (for any prefix).
const webNodePolicy = `{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::BUCKET"]},
  {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"], "Resource": ["arn:aws:s3:::BUCKET/*"]},
  {"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::BUCKET/*/locks/*"]}]}`

// s3Env is the environment of a child using srv with the given
// credentials, isolated from any AWS configuration of the machine.
func s3Env(t *testing.T, srv *miniotest.Server, access, secret string) []string {
	none := filepath.Join(t.TempDir(), "none")
	return []string{
		"AWS_ENDPOINT_URL=" + srv.Endpoint, "AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_REGION=" + srv.Region, "SYNCD_S3_PATH_STYLE=1", "AWS_PROFILE=", "AWS_SESSION_TOKEN=",
		"AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none, "AWS_EC2_METADATA_DISABLED=true",
	}
}

// newS3Repo initializes a repository at url with root credentials.
func newS3Repo(t *testing.T, srv *miniotest.Server, url string) (*repo, []string) {
	t.Helper()
	env := s3Env(t, srv, srv.AccessKey, srv.SecretKey)
	dir := t.TempDir()
	r := &repo{dir: dir, url: url, indexKey: filepath.Join(dir, "index.key"), dataKey: filepath.Join(dir, "data.key")}
	r.recipient = strings.TrimSpace(ok(t, nil, "syncd", "keygen", r.dataKey))
	ok(t, env, "syncd", append([]string{"init"}, r.flags("--data-recipient", r.recipient)...)...)
	return r, env
}

func TestS3RoundTrip(t *testing.T) {
	srv := miniotest.Start(t)
	r, env := newS3Repo(t, srv, "s3://backups/web1")
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	ok(t, env, "syncd", append([]string{"snapshot"}, append(r.flags(), src)...)...)
	out := ok(t, env, "syncd", append([]string{"snapshot"}, append(r.flags(), src)...)...)
	if !strings.Contains(out, "read 0 files") {
		t.Errorf("second snapshot over S3 read files again: %s", out)
	}
	target := t.TempDir()
	ok(t, env, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", target)...)...)
	sameTree(t, src, filepath.Join(target, src))
	ok(t, env, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", r.dataKey)...)...)
}

// TestS3NoDeleteUser backs up as a web node whose credentials may put, get
// and list but not delete: what a compromised node would hold.
func TestS3NoDeleteUser(t *testing.T) {
	srv := miniotest.Start(t)
	r, _ := newS3Repo(t, srv, "s3://backups/site")
	srv.AddUser(t, "webnode", "webnode-secret", strings.ReplaceAll(webNodePolicy, "BUCKET", "backups"))
	env := s3Env(t, srv, "webnode", "webnode-secret")
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	ok(t, env, "syncd", append([]string{"snapshot"}, append(r.flags(), src)...)...)
	os.WriteFile(filepath.Join(src, "plain.txt"), []byte("edited\n"), 0o644)
	ok(t, env, "syncd", append([]string{"snapshot"}, append(r.flags(), src)...)...)
	if list := snapshotsJSONEnv(t, r, env); len(list) != 2 {
		t.Fatalf("web node sees %d snapshots, want 2", len(list))
	}
	target := t.TempDir()
	ok(t, env, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", target)...)...)
	sameTree(t, src, filepath.Join(target, src))
	// The same user cannot init over the repository or create buckets.
	res := run(t, env, "syncd", "init", "--repo", "s3://other-bucket", "--index-key", r.indexKey, "--data-recipient", r.recipient)
	oneLine(t, "init of a new bucket as the web node", res, 1, "other-bucket")
}

func snapshotsJSONEnv(t *testing.T, r *repo, env []string) []string {
	t.Helper()
	out := ok(t, env, "restore", append([]string{"snapshots"}, r.flags()...)...)
	var ids []string
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 && len(f[0]) == 8 {
			ids = append(ids, f[0])
		}
	}
	return ids
}

// TestS3KilledMidSnapshot kills MinIO while a snapshot uploads: the
// snapshot fails cleanly and soon, the next one succeeds, and nothing the
// failed run wrote is referenced by a snapshot.
func TestS3KilledMidSnapshot(t *testing.T) {
	srv := miniotest.Start(t)
	r, env := newS3Repo(t, srv, "s3://backups/crash")
	src := t.TempDir()
	for i := range 6 { // 60 MiB of incompressible data: several packs
		writeRandom(t, filepath.Join(src, fmt.Sprintf("f%d", i)), 10<<20, int64(i))
	}
	cmd := exec.Command(filepath.Join(binDir, "syncd"), append([]string{"snapshot"}, append(r.flags(), src)...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForObject(t, srv, "s3://backups/crash", "data/")
	srv.Kill()
	killed := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the snapshot succeeded although MinIO was killed during it")
		}
		if took := time.Since(killed); took > 90*time.Second {
			t.Errorf("snapshot took %v to fail after MinIO died", took)
		}
		if n := strings.Count(strings.TrimSpace(stderr.String()), "\n"); n != 0 || !strings.Contains(stderr.String(), "127.0.0.1") {
			t.Errorf("failed snapshot: want one line naming the endpoint, got %q", stderr.String())
		}
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("snapshot still running 3 minutes after MinIO died")
	}
	srv.Restart(t)
	if ids := snapshotsJSONEnv(t, r, env); len(ids) != 0 {
		t.Fatalf("the failed snapshot left snapshot objects %v", ids)
	}
	ok(t, env, "syncd", append([]string{"snapshot"}, append(r.flags(), src)...)...)
	out := ok(t, env, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", r.dataKey)...)...)
	if !strings.Contains(out, "no problems found") || !strings.Contains(out, "1 snapshots") {
		t.Errorf("verify after the crash: %s", out)
	}
	target := t.TempDir()
	ok(t, env, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", target)...)...)
	sameTree(t, src, filepath.Join(target, src))
}

func TestS3BadInputs(t *testing.T) {
	srv := miniotest.Start(t)
	r, env := newS3Repo(t, srv, "s3://backups/bad")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)

	wrong := s3Env(t, srv, srv.AccessKey, "not-the-secret")
	res := run(t, wrong, "syncd", append([]string{"snapshot"}, append(r.flags(), src)...)...)
	oneLine(t, "wrong secret key", res, 1, "credentials")

	srv.AddUser(t, "nocreate", "nocreate-secret", strings.ReplaceAll(webNodePolicy, "BUCKET", "*"))
	res = run(t, s3Env(t, srv, "nocreate", "nocreate-secret"), "syncd", "init", "--repo", "s3://missing-bucket/x",
		"--index-key", r.indexKey, "--data-recipient", r.recipient)
	oneLine(t, "missing bucket without permission to create it", res, 1, "missing-bucket", "does not exist")

	region := append(append([]string(nil), env...), "AWS_REGION=eu-west-1")
	res = run(t, region, "restore", append([]string{"snapshots"}, r.flags()...)...)
	oneLine(t, "wrong region", res, 1, "region")

	// an endpoint where nothing listens: a clear error, soon
	dead := append(append([]string(nil), env...), "AWS_ENDPOINT_URL=http://127.0.0.1:1")
	start := time.Now()
	res = run(t, dead, "restore", append([]string{"snapshots"}, r.flags()...)...)
	oneLine(t, "unreachable endpoint", res, 1, "127.0.0.1:1")
	if took := time.Since(start); took > 60*time.Second {
		t.Errorf("unreachable endpoint took %v to fail", took)
	}
}

// waitForObject returns once an object under prefix exists at url: the
// snapshot is uploading.
func waitForObject(t *testing.T, srv *miniotest.Server, url, prefix string) {
	t.Helper()
	for _, kv := range s3Env(t, srv, srv.AccessKey, srv.SecretKey) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	be, err := s3.Open(ctx, s3.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		found := false
		be.List(ctx, prefix, func(backend.Info) error { found = true; return nil })
		if found {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s object appeared at %s within a minute", prefix, url)
}

// writeRandom writes n pseudo-random, incompressible bytes.
func writeRandom(t *testing.T, path string, n int, seed int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x := uint64(seed)*0x9E3779B97F4A7C15 + 1
	buf := make([]byte, 1<<20)
	for written := 0; written < n; written += len(buf) {
		for i := 0; i+8 <= len(buf); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for k := range 8 {
				buf[i+k] = byte(x >> (8 * k))
			}
		}
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
}
