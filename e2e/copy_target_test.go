package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/syncd/syncd/internal/miniotest"
)

// Copy targets with settings of their own (docs/S3.md, "Copies to a
// second bucket, region or provider"): another endpoint, region and
// credentials than the source's, in one command or in the daemon.

// credentialsFile writes a credentials file of mode perm holding the keys
// of user under [default].
func credentialsFile(t *testing.T, perm os.FileMode, user, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), user+".credentials")
	data := "[default]\naws_access_key_id = " + user + "\naws_secret_access_key = " + secret + "\n"
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// makeBucket creates bucket on srv, in its region, as root; lock: with
// object lock.
func makeBucket(t *testing.T, srv *miniotest.Server, bucket string, lock bool) {
	t.Helper()
	in := &awss3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(lock)}
	if srv.Region != miniotest.Region {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(srv.Region)}
	}
	if _, err := rootS3(t, srv).CreateBucket(context.Background(), in); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
}

// TestCopyToAnotherStore: one syncd copy reads the source in one MinIO
// (the environment's endpoint, region and root keys) and writes the
// target in another: its own endpoint, region eu-west-1, and the keys of
// a user who may use bucket offsite only, from a credentials file. init
// --copy-from and the first copy take the target's settings from the --to-
// flags, the second copy from the SYNCD_COPY_* variables; the target then
// verifies with --read-data and restores, read with its own environment.
func TestCopyToAnotherStore(t *testing.T) {
	a := miniotest.Start(t)
	b := miniotest.StartWith(t, miniotest.Options{Region: "eu-west-1"})
	r, env := newS3Repo(t, a, "s3://backups/web")
	makeBucket(t, b, "offsite", false)
	b.AddUser(t, "offsite", "offsite-secret", strings.ReplaceAll(webNodePolicy, "BUCKET", "offsite"))
	creds := credentialsFile(t, 0o600, "offsite", "offsite-secret")
	const to = "s3://offsite/web"
	toFlags := []string{"--to-endpoint", b.Endpoint, "--to-region", "eu-west-1", "--to-credentials-file", creds}
	ok(t, env, "syncd", append([]string{"init", "--repo", to, "--copy-from", r.url, "--index-key", r.indexKey}, toFlags...)...)

	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	writeRandom(t, filepath.Join(src, "big"), 10<<20, 1)
	snapS3(t, env, r, src)
	// without the target's region, the environment's is refused by b
	res := run(t, env, "syncd", append([]string{"copy", "--to", to, "--to-endpoint", b.Endpoint, "--to-credentials-file", creds}, r.flags()...)...)
	oneLine(t, "copy without --to-region", res, 1, "copy target "+to, "wrong region us-east-1 for bucket offsite")

	out := ok(t, env, "syncd", append(append([]string{"copy", "--json", "--to", to}, toFlags...), r.flags()...)...)
	c := parseCopy(t, out)
	if packs := len(s3Packs(t, a, r.url)); len(c.Snapshots) != 1 || c.Packs != packs {
		t.Errorf("first copy: %+v; want 1 snapshot and all %d packs of the source", c, packs)
	}

	os.WriteFile(filepath.Join(src, "new.txt"), []byte("one more\n"), 0o644)
	snapS3(t, env, r, src)
	byEnv := append(append([]string{}, env...), "SYNCD_COPY_ENDPOINT="+b.Endpoint, "SYNCD_COPY_REGION=eu-west-1",
		"SYNCD_COPY_CREDENTIALS_FILE="+creds)
	if c = runCopy(t, byEnv, r, to); len(c.Snapshots) != 1 || c.Present != 1 {
		t.Errorf("second copy, settings from SYNCD_COPY_*: %+v; want 1 snapshot copied, 1 present", c)
	}

	envB := s3Env(t, b, "offsite", "offsite-secret")
	flags := []string{"--repo", to, "--index-key", r.indexKey, "--identity", r.dataKey}
	out = ok(t, envB, "restore", append([]string{"verify", "--read-data"}, flags...)...)
	if !strings.Contains(out, "no problems found") || !strings.Contains(out, "2 snapshots") {
		t.Errorf("verify --read-data of the target: %s", out)
	}
	target := t.TempDir()
	ok(t, envB, "restore", append([]string{"latest", "--target", target}, flags...)...)
	sameTree(t, src, filepath.Join(target, src))
	// the source's environment could not have written there: b does not
	// know a's keys; and the copies left no lock in either repository
	res = run(t, s3Env(t, b, a.AccessKey, a.SecretKey), "restore", "snapshots", "--repo", to, "--index-key", r.indexKey)
	oneLine(t, "the source's keys on the target's store", res, 1, "does not know the access key")
	if n := len(s3Objects(t, a, r.url, "locks/")) + len(s3Objects(t, b, to, "locks/")); n != 0 {
		t.Errorf("%d lock(s) left after the copies", n)
	}
}

// parseCopy decodes what syncd copy --json printed.
func parseCopy(t *testing.T, out string) copyOut {
	t.Helper()
	var c copyOut
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("copy --json: %v: %s", err, out)
	}
	return c
}

// TestCopyTargetBadInput: a copy target's bad settings are refused in one
// line naming what is wrong and where, before anything is written to
// either repository: a credentials file others may read, an endpoint
// nothing listens on, a bad flag or variable, an unknown key in a
// repository.copies entry.
func TestCopyTargetBadInput(t *testing.T) {
	srv := miniotest.Start(t)
	r, env := newS3Repo(t, srv, "s3://backups/web")
	const to = "s3://offsite/web"
	ok(t, env, "syncd", "init", "--repo", to, "--copy-from", r.url, "--index-key", r.indexKey)
	src := t.TempDir()
	writeRandom(t, filepath.Join(src, "f"), 1<<20, 1)
	snapS3(t, env, r, src)
	before, srcBefore := s3Objects(t, srv, to, ""), s3Objects(t, srv, r.url, "")
	copyArgs := func(extra ...string) []string {
		return append(append([]string{"copy", "--to", to}, extra...), r.flags()...)
	}

	open := credentialsFile(t, 0o644, srv.AccessKey, srv.SecretKey)
	res := run(t, env, "syncd", copyArgs("--to-credentials-file", open)...)
	oneLine(t, "credentials file of mode 0644", res, 1, "copy target "+to, "credentials file "+open+" is accessible by others (mode 0644)", "chmod 600")
	if strings.Contains(res.stderr, srv.SecretKey) {
		t.Errorf("the error shows the secret key: %s", res.stderr)
	}

	closed := "http://" + miniotest.FreeAddr(t)
	start := time.Now()
	res = run(t, env, "syncd", copyArgs("--to-endpoint", closed)...)
	oneLine(t, "unreachable target endpoint", res, 1, "copy target "+to+" ("+closed+")", "cannot reach endpoint "+closed, "connection refused")
	t.Logf("unreachable endpoint refused in %v", time.Since(start).Round(time.Millisecond))

	for _, bad := range []struct {
		what string
		env  []string
		args []string
		want []string
	}{
		{"endpoint without scheme", nil, copyArgs("--to-endpoint", "minio:9000"), []string{"--to-endpoint=minio:9000", "want http:// or https://"}},
		{"region for a directory", nil, []string{"copy", "--to", "/mnt/copy", "--to-region", "eu-west-1", "--repo", r.url, "--index-key", r.indexKey},
			[]string{"--to-region=eu-west-1", `only for an s3:// copy target, not "/mnt/copy"`}},
		{"bad SYNCD_COPY_SSE", []string{"SYNCD_COPY_SSE=kms"}, copyArgs(), []string{"SYNCD_COPY_SSE=kms", `server-side encryption "kms"`}},
		{"bad SYNCD_COPY_PATH_STYLE", []string{"SYNCD_COPY_PATH_STYLE=yes"}, copyArgs(), []string{"SYNCD_COPY_PATH_STYLE=yes", "want 1, true, 0 or false"}},
		{"--to- flag on a plain init", nil, []string{"init", "--repo", "s3://offsite/other", "--index-key", r.indexKey, "--data-recipient", r.recipient, "--to-region", "eu-west-1"},
			[]string{"--to-region", "only for init --copy-from"}},
	} {
		res := run(t, append(append([]string{}, env...), bad.env...), "syncd", bad.args...)
		oneLine(t, bad.what, res, 2, bad.want...)
	}

	// the daemon: an unknown key in a copies entry is a config error with
	// its line, and the daemon does not start
	dir := t.TempDir()
	cfg := filepath.Join(dir, "syncd.yaml")
	os.Mkdir(filepath.Join(dir, "www"), 0o755)
	yaml := fmt.Sprintf("node:\n  name: web1\n  state_dir: %s\n  listen: %s\n  http: %s\nfolders:\n  - {id: www, path: %s}\n"+
		"repository:\n  url: %s\n  index_key: %s\n  copies:\n    - url: %s\n      endpoint_url: %s\n",
		filepath.Join(dir, "state"), miniotest.FreeAddr(t), miniotest.FreeAddr(t), filepath.Join(dir, "www"), r.url, r.indexKey, to, srv.Endpoint)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	res = run(t, env, "syncd", "run", "--config", cfg)
	oneLine(t, "unknown key in a copies entry", res, 1, cfg+`:13: unknown key "endpoint_url" in repository.copies[0]`)

	if after := s3Objects(t, srv, to, ""); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused copies changed the target: %v, was %v", after, before)
	}
	if after := s3Objects(t, srv, r.url, ""); fmt.Sprint(after) != fmt.Sprint(srcBefore) {
		t.Errorf("refused copies changed the source: %v, was %v", after, srcBefore)
	}
}

// TestDaemonCopyTargetSettings: a daemon whose web-node user may use
// bucket backups only copies to bucket offsite with that target's own
// credentials file, storage class and SSE-KMS: every object of the copy
// carries them (HeadObject), the source's objects do not, and the target
// verifies. A second target, in an object-lock bucket, gets its own
// retention on every object but locks/. A third, whose credentials file
// others may read, is refused with the file named in the log and the
// alert, and no secret key is ever logged.
func TestDaemonCopyTargetSettings(t *testing.T) {
	srv := miniotest.StartWith(t, miniotest.Options{KMS: true})
	r, rootEnv := newS3Repo(t, srv, "s3://backups/web")
	makeBucket(t, srv, "offsite", false)
	makeBucket(t, srv, "locked", true)
	srv.AddUser(t, "web", "web-secret-key", strings.ReplaceAll(webNodePolicy, "BUCKET", "backups"))
	srv.AddUser(t, "offsite", "offsite-secret-key", strings.ReplaceAll(webNodePolicy, "BUCKET", "offsite"))
	creds := credentialsFile(t, 0o600, "offsite", "offsite-secret-key")
	open := credentialsFile(t, 0o644, "offsite", "offsite-secret-key")
	rootCreds := credentialsFile(t, 0o600, srv.AccessKey, srv.SecretKey)
	const to, locked, bad = "s3://offsite/web", "s3://locked/web", "s3://offsite/bad"
	env := s3Env(t, srv, "web", "web-secret-key")
	ok(t, env, "syncd", "init", "--repo", to, "--copy-from", r.url, "--index-key", r.indexKey, "--to-credentials-file", creds)
	ok(t, rootEnv, "syncd", "init", "--repo", bad, "--copy-from", r.url, "--index-key", r.indexKey)
	ok(t, rootEnv, "syncd", "init", "--repo", locked, "--copy-from", r.url, "--index-key", r.indexKey)
	c := rootS3(t, srv)
	initial, initialLocked := headAll(t, c, "offsite", "web/"), headAll(t, c, "locked", "web/")

	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // the daemon's environment: the web node's keys
	}
	dir := t.TempDir()
	n := &node{t: t, r: r, folder: filepath.Join(dir, "www"), http: miniotest.FreeAddr(t), cfg: filepath.Join(dir, "syncd.yaml")}
	os.MkdirAll(n.folder, 0o755)
	yaml := fmt.Sprintf(`node:
  name: web1
  state_dir: %s
  listen: %s
  http: %s
folders:
  - {id: www, path: %s}
repository:
  url: %s
  index_key: %s
  data_recipients: []
  copies:
    - url: %s
      credentials_file: %s
      storage_class: REDUCED_REDUNDANCY
      sse: aws:kms
      sse_kms_key_id: %s
    - {url: %s, credentials_file: %s, object_lock_mode: GOVERNANCE, object_lock_retain: 1d}
    - {url: %s, credentials_file: %s}
`, filepath.Join(dir, "state"), miniotest.FreeAddr(t), n.http, n.folder, r.url, r.indexKey, to, creds, srv.KMSKeyID, locked, rootCreds, bad, open)
	if err := os.WriteFile(n.cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	n.write("a.txt", "first version\n")
	writeRandom(t, filepath.Join(n.folder, "big"), 10<<20, 7) // a pack over the part size: a multipart upload
	n.start()
	n.waitIndexed()
	start := time.Now()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	okCount := func(url string) string { return n.metric(`syncd_copies_total{result="ok",target="` + url + `"}`) }
	// one copy at start (nothing yet), one after the snapshot
	for _, url := range []string{to, locked} {
		if !waitFor(60*time.Second, func() bool { return okCount(url) == "2" }) {
			t.Fatalf("copies to %s counted ok: %q, want 2; log:\n%s", url, okCount(url), n.logText())
		}
	}

	copied := 0
	for key, got := range headAll(t, c, "offsite", "web/") {
		if _, was := initial[key]; was {
			continue // config and keys/, written by init
		}
		copied++
		if want := "REDUCED_REDUNDANCY/aws:kms/"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, srv.KMSKeyID) {
			t.Errorf("%s in the copy: %s, want %s…%s", key, got, want, srv.KMSKeyID)
		}
	}
	if copied < 4 { // a content pack, a tree pack, an index, a snapshot
		t.Errorf("the copy wrote %d objects, want 4 or more", copied)
	}
	lockedObjs := s3Objects(t, srv, locked, "")
	for name := range lockedObjs {
		key := "web/" + name
		if _, was := initialLocked[key]; was {
			continue
		}
		h, err := c.HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String("locked"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		until := aws.ToTime(h.ObjectLockRetainUntilDate)
		if h.ObjectLockMode != types.ObjectLockModeGovernance || until.Before(start.Add(24*time.Hour-time.Minute)) || until.After(time.Now().Add(24*time.Hour+time.Minute)) {
			t.Errorf("%s in the locked copy: retention %s until %v, want GOVERNANCE for 1d", key, h.ObjectLockMode, until)
		}
	}
	if len(lockedObjs) < len(initialLocked)+4 {
		t.Errorf("the locked copy holds %d objects, want 4 more than the %d init wrote", len(lockedObjs), len(initialLocked))
	}
	for key, got := range headAll(t, c, "backups", "web/") {
		if got != "STANDARD//" {
			t.Errorf("%s in the source: %s; the copy target's options are not the repository's", key, got)
		}
	}
	flags := []string{"--repo", to, "--index-key", r.indexKey, "--identity", r.dataKey}
	out := ok(t, rootEnv, "restore", append([]string{"verify", "--read-data"}, flags...)...)
	if !strings.Contains(out, "no problems found") {
		t.Errorf("verify --read-data of the copy: %s", out)
	}

	if !waitFor(30*time.Second, func() bool { return strings.Contains(n.alerts(), "chmod 600 "+open) }) {
		t.Errorf("no copy failed alert naming %s: %s", open, n.alerts())
	}
	if got := n.metric(`syncd_copies_total{result="ok",target="` + bad + `"}`); got != "0" {
		t.Errorf("copies to %s counted ok: %q, want 0", bad, got)
	}
	if objs := s3Objects(t, srv, bad, "snapshots/"); len(objs) != 0 {
		t.Errorf("the refused target holds snapshots: %v", objs)
	}
	log := n.logText()
	if !strings.Contains(log, open) {
		t.Errorf("the log does not name %s:\n%s", open, log)
	}
	for _, secret := range []string{"offsite-secret-key", "web-secret-key"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds a secret key (%s)", secret)
		}
	}
}
