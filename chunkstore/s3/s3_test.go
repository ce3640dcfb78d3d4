package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/backendtest"
	"github.com/syncd/syncd/internal/miniotest"
)

// Policies as in docs/S3.md, for the bucket named BUCKET.
const (
	webNodePolicy = `{"Version": "2012-10-17", "Statement": [
	  {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::BUCKET"]},
	  {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"], "Resource": ["arn:aws:s3:::BUCKET/*"]},
	  {"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::BUCKET/repo/locks/*"]}]}`
	prunePolicy = `{"Version": "2012-10-17", "Statement": [
	  {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::BUCKET"]},
	  {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:DeleteObject"], "Resource": ["arn:aws:s3:::BUCKET/*"]}]}`
)

func policyFor(policy, bucket string) string { return strings.ReplaceAll(policy, "BUCKET", bucket) }

// useEnv points the AWS configuration of this process at endpoint with the
// given credentials, isolated from the user's own AWS files and variables.
func useEnv(t *testing.T, endpoint, accessKey, secretKey string) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            endpoint,
		"AWS_ACCESS_KEY_ID":           accessKey,
		"AWS_SECRET_ACCESS_KEY":       secretKey,
		"AWS_REGION":                  miniotest.Region,
		"SYNCD_S3_PATH_STYLE":         "1",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_ENDPOINT_URL_S3":         "",
		"AWS_CA_BUNDLE":               "",
		"SYNCD_S3_CA_BUNDLE":          "",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
}

// useServer is useEnv with the server's root credentials, checking that
// Env carries the same settings.
func useServer(t *testing.T, srv *miniotest.Server) {
	t.Helper()
	useEnv(t, srv.Endpoint, srv.AccessKey, srv.SecretKey)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustCreate(t *testing.T, cfg Config) *Backend {
	t.Helper()
	b, err := Create(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Create(%s): %v", cfg.URL, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func readRange(t *testing.T, b backend.Backend, name string, off, n int64) []byte {
	t.Helper()
	rd, err := b.Open(context.Background(), name, off, n)
	if err != nil {
		t.Fatalf("Open(%s, %d, %d): %v", name, off, n, err)
	}
	defer rd.Close()
	got, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return got
}

// checkOneLine fails t unless err is a one-line error that matches kind
// and whose message holds every one of words.
func checkOneLine(t *testing.T, err, kind error, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one matching %v", kind)
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %q does not match %v", msg, kind)
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
}

func TestConformance(t *testing.T) {
	srv := miniotest.Start(t)
	useServer(t, srv)
	var n atomic.Int32
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		// A fresh bucket per subtest; a prefix, so keys are mapped.
		return mustCreate(t, Config{URL: fmt.Sprintf("s3://conformance-%d/repo/one", n.Add(1))})
	})
}

func TestPrefixesAreSeparate(t *testing.T) {
	srv := miniotest.Start(t)
	useServer(t, srv)
	ctx := context.Background()
	a := mustCreate(t, Config{URL: "s3://shared/a"})
	a2 := mustCreate(t, Config{URL: "s3://shared/a2/"})
	root := mustCreate(t, Config{URL: "s3://shared"})
	for _, b := range []*Backend{a, a2} {
		if err := backend.SaveBytes(ctx, b, "data/x", []byte(b.prefix)); err != nil {
			t.Fatal(err)
		}
	}
	list := func(b *Backend, prefix string) []string {
		var names []string
		err := b.List(ctx, prefix, func(fi backend.Info) error { names = append(names, fi.Name); return nil })
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	if got := list(a, ""); fmt.Sprint(got) != "[data/x]" {
		t.Errorf("s3://shared/a lists %v, want [data/x]", got)
	}
	if got := string(readRange(t, a2, "data/x", 0, 0)); got != "a2/" {
		t.Errorf("s3://shared/a2 data/x holds %q, want a2/", got)
	}
	if got := list(root, "a"); fmt.Sprint(got) != "[a/data/x a2/data/x]" {
		t.Errorf("s3://shared lists %v under a, want [a/data/x a2/data/x]", got)
	}
}

func TestParseURL(t *testing.T) {
	good := []struct{ in, bucket, prefix string }{
		{"s3://bucket", "bucket", ""},
		{"s3://bucket/", "bucket", ""},
		{"s3://my.bucket-1/repo", "my.bucket-1", "repo"},
		{"s3://bucket/a/b/c/", "bucket", "a/b/c"},
	}
	for _, c := range good {
		b, p, err := ParseURL(c.in)
		if err != nil || b != c.bucket || p != c.prefix {
			t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q, nil", c.in, b, p, err, c.bucket, c.prefix)
		}
	}
	bad := []struct{ in, want string }{
		{"", "does not start with s3://"},
		{"bucket/prefix", "does not start with s3://"},
		{"https://bucket/prefix", `scheme "https" is not s3`},
		{"S3://bucket", `scheme "S3" is not s3`},
		{"s3://", "no bucket name"},
		{"s3:///prefix", "no bucket name"},
		{"s3://ab", "3 to 63 characters"},
		{"s3://" + strings.Repeat("a", 64), "3 to 63 characters"},
		{"s3://My_Bucket", "only a-z, 0-9"},
		{"s3://-bucket", "start and end with a letter or digit"},
		{"s3://bucket./x", "start and end with a letter or digit"},
		{"s3://a..b", "two dots"},
		{"s3://bucket/a//b", "empty, . or .. segment"},
		{"s3://bucket/a/../b", "empty, . or .. segment"},
		{"s3://bucket/a?x=1", "may not hold ?"},
	}
	for _, c := range bad {
		_, _, err := ParseURL(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseURL(%q): err = %v, want one line saying %q", c.in, err, c.want)
		}
	}
}

func TestConfigChecks(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "s3://bucket", PartSize: 1 << 20}, "part size"},
		{Config{URL: "s3://bucket", UploadConcurrency: -1}, "upload concurrency"},
		{Config{URL: "s3://bucket", Timeout: -time.Second}, "negative timeout"},
		{Config{URL: "s3://bucket", CABundle: "/nonexistent/ca.pem"}, "CA bundle"},
	} {
		_, err := Open(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v): err = %v, want it to mention %q", c.cfg, err, c.want)
		}
	}
}

func TestCABundle(t *testing.T) {
	srv := miniotest.StartWith(t, miniotest.Options{TLS: true})
	useServer(t, srv)
	ctx := context.Background()

	_, err := Open(ctx, Config{URL: "s3://tls"})
	checkOneLine(t, err, ErrUnreachable, "cannot reach endpoint "+srv.Endpoint, "certificate signed by unknown authority")
	var retried *retry.MaxAttemptsError
	if errors.As(err, &retried) {
		t.Errorf("an untrusted certificate was retried %d times, want no retries", retried.Attempt)
	}

	data := random(t, 1000)
	b := mustCreate(t, Config{URL: "s3://tls", CABundle: srv.CAFile})
	if err := backend.SaveBytes(ctx, b, "keys/one", data); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvCABundle, srv.CAFile)
	b2, err := Open(ctx, Config{URL: "s3://tls"})
	if err != nil {
		t.Fatalf("Open with %s set: %v", EnvCABundle, err)
	}
	defer b2.Close()
	if got := readRange(t, b2, "keys/one", 0, 0); !bytes.Equal(got, data) {
		t.Fatal("keys/one reads back different over TLS")
	}
}

func TestNoCredentials(t *testing.T) {
	srv := miniotest.Start(t)
	useEnv(t, srv.Endpoint, "", "") // and no config files, no instance metadata
	start := time.Now()
	_, err := Open(context.Background(), Config{URL: "s3://bucket"})
	checkOneLine(t, err, ErrAccessDenied, "no usable AWS credentials", "AWS_ACCESS_KEY_ID")
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("failing for want of credentials took %v", elapsed)
	}
}

func TestWrongRegion(t *testing.T) {
	srv := miniotest.Start(t)
	useServer(t, srv)
	mustCreate(t, Config{URL: "s3://regional"})
	t.Setenv("AWS_REGION", "eu-west-1")
	_, err := Open(context.Background(), Config{URL: "s3://regional"})
	checkOneLine(t, err, ErrWrongRegion, "wrong region eu-west-1 for bucket regional")
}

func TestMissingBucketWithoutCreatePermission(t *testing.T) {
	srv := miniotest.Start(t)
	// May list, read and write any bucket, but not create one.
	srv.AddUser(t, "nocreate", "nocreate-secret", policyFor(webNodePolicy, "*"))
	useEnv(t, srv.Endpoint, "nocreate", "nocreate-secret")
	ctx := context.Background()

	_, err := Open(ctx, Config{URL: "s3://missing-bucket/repo"})
	checkOneLine(t, err, ErrBucketNotExist, "bucket missing-bucket does not exist")

	_, err = Create(ctx, Config{URL: "s3://missing-bucket/repo"})
	checkOneLine(t, err, ErrBucketNotExist, "bucket missing-bucket does not exist", "may not create it")

	// Root may create it, after which the user can use it.
	useServer(t, srv)
	mustCreate(t, Config{URL: "s3://missing-bucket/repo"})
	useEnv(t, srv.Endpoint, "nocreate", "nocreate-secret")
	b, err := Open(ctx, Config{URL: "s3://missing-bucket/repo"})
	if err != nil {
		t.Fatalf("Open after root created the bucket: %v", err)
	}
	b.Close()
}

func TestMultipart(t *testing.T) {
	srv := miniotest.Start(t)
	useServer(t, srv)
	ctx := context.Background()
	const part = 5 << 20
	b := mustCreate(t, Config{URL: "s3://multipart/repo", PartSize: part, UploadConcurrency: 3})

	large := random(t, 20<<20+17) // 4 whole parts and 17 bytes
	small := random(t, part)      // exactly one part: a single PutObject
	for name, data := range map[string][]byte{"data/large": large, "data/small": small} {
		if err := backend.SaveBytes(ctx, b, name, data); err != nil {
			t.Fatalf("Save(%s): %v", name, err)
		}
	}
	// S3 gives a multipart object the ETag "<md5 of part md5s>-<parts>".
	for name, want := range map[string]string{"data/large": `-5"`, "data/small": ""} {
		head, err := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.prefix + name)})
		if err != nil {
			t.Fatal(err)
		}
		etag := aws.ToString(head.ETag)
		if want != "" && !strings.HasSuffix(etag, want) || want == "" && strings.Contains(etag, "-") {
			t.Errorf("%s: ETag %s, want a %s upload", name, etag, map[bool]string{true: "5-part", false: "single-part"}[want != ""])
		}
	}
	if got := readRange(t, b, "data/large", 0, 0); !bytes.Equal(got, large) {
		t.Fatalf("data/large: read %d bytes back, want the %d saved", len(got), len(large))
	}
	fi, err := b.Stat(ctx, "data/large")
	if err != nil || fi.Size != int64(len(large)) {
		t.Fatalf("Stat(data/large) = %+v, %v; want size %d", fi, err, len(large))
	}
	for _, r := range []struct{ off, n int64 }{
		{0, 1},
		{part - 10, 20},        // across the first part boundary
		{3*part - 1, part + 2}, // across two boundaries
		{4 * part, 0},          // the 17-byte tail
		{int64(len(large)) - 1, 1},
	} {
		want := large[r.off:]
		if r.n > 0 {
			want = large[r.off : r.off+r.n]
		}
		if got := readRange(t, b, "data/large", r.off, r.n); !bytes.Equal(got, want) {
			t.Errorf("Open(data/large, %d, %d): got %d bytes, want %d (or different content)", r.off, r.n, len(got), len(want))
		}
	}
}

func TestNoDeletePolicy(t *testing.T) {
	srv := miniotest.Start(t)
	useServer(t, srv)
	ctx := context.Background()
	mustCreate(t, Config{URL: "s3://backups"})
	srv.AddUser(t, "webnode", "webnode-secret", policyFor(webNodePolicy, "backups"))
	srv.AddUser(t, "pruner", "pruner-secret", policyFor(prunePolicy, "backups"))

	useEnv(t, srv.Endpoint, "webnode", "webnode-secret")
	web, err := Open(ctx, Config{URL: "s3://backups/repo", PartSize: MinPartSize})
	if err != nil {
		t.Fatalf("web node Open: %v", err)
	}
	defer web.Close()
	data := random(t, 1000)
	if err := backend.SaveBytes(ctx, web, "snapshots/one", data); err != nil {
		t.Fatalf("web node Save: %v", err)
	}
	// s3:PutObject covers the requests of a multipart upload too.
	if err := backend.SaveBytes(ctx, web, "data/big", random(t, MinPartSize+1)); err != nil {
		t.Fatalf("web node multipart Save: %v", err)
	}
	if got := readRange(t, web, "snapshots/one", 0, 0); !bytes.Equal(got, data) {
		t.Fatal("web node reads back different content")
	}
	var names []string
	if err := web.List(ctx, "snapshots/", func(fi backend.Info) error { names = append(names, fi.Name); return nil }); err != nil {
		t.Fatalf("web node List: %v", err)
	}
	if fmt.Sprint(names) != "[snapshots/one]" {
		t.Errorf("web node lists %v, want [snapshots/one]", names)
	}
	err = web.Remove(ctx, "snapshots/one")
	checkOneLine(t, err, ErrAccessDenied, "s3: remove snapshots/one", "access denied for bucket backups")
	if _, err := web.Stat(ctx, "snapshots/one"); err != nil {
		t.Fatalf("object gone after a denied Remove: %v", err)
	}
	err = web.Remove(ctx, "data/big")
	checkOneLine(t, err, ErrAccessDenied, "s3: remove data/big", "access denied for bucket backups")
	// Its own lock is the one thing a web node deletes.
	if err := backend.SaveBytes(ctx, web, "locks/mine", data); err != nil {
		t.Fatalf("web node Save lock: %v", err)
	}
	if err := web.Remove(ctx, "locks/mine"); err != nil {
		t.Fatalf("web node Remove lock: %v", err)
	}

	useEnv(t, srv.Endpoint, "pruner", "pruner-secret")
	pruner, err := Open(ctx, Config{URL: "s3://backups/repo"})
	if err != nil {
		t.Fatalf("pruner Open: %v", err)
	}
	defer pruner.Close()
	if err := pruner.Remove(ctx, "snapshots/one"); err != nil {
		t.Fatalf("pruner Remove: %v", err)
	}
	if _, err := pruner.Stat(ctx, "snapshots/one"); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("Stat after the pruner's Remove: %v, want ErrNotExist", err)
	}
}

// TestObjectLock checks what docs/S3.md promises for a bucket with object
// lock (governance mode, so versioning too): saves work, single-part and
// multipart; Remove hides an object behind a delete marker; the locked
// version cannot be deleted; removing the marker brings the object back.
func TestObjectLock(t *testing.T) {
	srv := miniotest.Start(t)
	useServer(t, srv)
	ctx := context.Background()
	admin := mustCreate(t, Config{URL: "s3://setup"}).client
	bucket := aws.String("locked")
	if _, err := admin.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: bucket, ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	_, err := admin.PutObjectLockConfiguration(ctx, &awss3.PutObjectLockConfigurationInput{
		Bucket: bucket,
		ObjectLockConfiguration: &types.ObjectLockConfiguration{
			ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{
				Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1),
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	b, err := Open(ctx, Config{URL: "s3://locked/repo", PartSize: MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	small, large := random(t, 1000), random(t, MinPartSize+1)
	for name, data := range map[string][]byte{"data/small": small, "data/large": large} {
		if err := backend.SaveBytes(ctx, b, name, data); err != nil {
			t.Fatalf("Save(%s) under object lock: %v", name, err)
		}
	}

	if err := b.Remove(ctx, "data/small"); err != nil {
		t.Fatalf("Remove under object lock: %v", err)
	}
	if _, err := b.Stat(ctx, "data/small"); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Stat after Remove: %v, want ErrNotExist", err)
	}
	versions, err := admin.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: bucket, Prefix: aws.String("repo/data/small")})
	if err != nil {
		t.Fatal(err)
	}
	if len(versions.Versions) != 1 || len(versions.DeleteMarkers) != 1 {
		t.Fatalf("after Remove: %d versions and %d delete markers, want 1 and 1", len(versions.Versions), len(versions.DeleteMarkers))
	}
	_, err = admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: bucket, Key: versions.Versions[0].Key, VersionId: versions.Versions[0].VersionId})
	// AWS answers AccessDenied, MinIO InvalidRequest "Object is WORM protected".
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") && !strings.Contains(err.Error(), "WORM protected") {
		t.Fatalf("deleting a locked version: err = %v, want it refused", err)
	}
	_, err = admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: bucket, Key: versions.DeleteMarkers[0].Key, VersionId: versions.DeleteMarkers[0].VersionId})
	if err != nil {
		t.Fatalf("removing the delete marker: %v", err)
	}
	if got := readRange(t, b, "data/small", 0, 0); !bytes.Equal(got, small) {
		t.Fatal("data/small differs after recovering it")
	}
	if got := readRange(t, b, "data/large", 0, 0); !bytes.Equal(got, large) {
		t.Fatal("data/large (multipart, locked) reads back different")
	}
}
