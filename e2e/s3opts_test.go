package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/syncd/syncd/internal/miniotest"
)

// rootS3 is an S3 client of srv's root user, to look at what the binaries
// stored.
func rootS3(t *testing.T, srv *miniotest.Server) *awss3.Client {
	return awss3.New(awss3.Options{
		Region: srv.Region, BaseEndpoint: aws.String(srv.Endpoint), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}, nil
		}),
	})
}

// headAll returns "storage class / encryption / KMS key" of every object
// under prefix in bucket, by key.
func headAll(t *testing.T, c *awss3.Client, bucket, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	list, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range list.Contents {
		h, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		class := h.StorageClass
		if class == "" {
			class = types.StorageClassStandard
		}
		out[aws.ToString(o.Key)] = fmt.Sprintf("%s/%s/%s", class, h.ServerSideEncryption, aws.ToString(h.SSEKMSKeyId))
	}
	return out
}

// TestS3UploadOptions: the storage class and server-side encryption of
// the SYNCD_S3_* variables (syncd snapshot) and of the config's
// repository section (the daemon) are on every object they upload, and
// the repository reads back. A bad value is one line naming the variable,
// exit 2, nothing uploaded. MinIO serves SSE with a static KMS key
// (MINIO_KMS_SECRET_KEY) and has no storage class but STANDARD and
// REDUCED_REDUNDANCY: a real KMS and AWS's other classes are not tested.
func TestS3UploadOptions(t *testing.T) {
	srv := miniotest.StartWith(t, miniotest.Options{KMS: true})
	c := rootS3(t, srv)
	r, env := newS3Repo(t, srv, "s3://backups/web1")
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	envOpts := append(append([]string{}, env...), "SYNCD_S3_SSE=AES256", "SYNCD_S3_STORAGE_CLASS=REDUCED_REDUNDANCY")
	ok(t, envOpts, "syncd", append([]string{"snapshot"}, append(r.flags(), src)...)...)
	before := headAll(t, c, "backups", "web1/")
	n := 0
	for key, got := range before {
		if strings.HasPrefix(key, "web1/config") || strings.HasPrefix(key, "web1/keys/") {
			continue // written by init, without the variables
		}
		n++
		if got != "REDUCED_REDUNDANCY/AES256/" {
			t.Errorf("%s: %s, want REDUCED_REDUNDANCY/AES256/", key, got)
		}
	}
	if n < 4 { // a data pack, a tree pack, an index, a snapshot
		t.Errorf("only %d objects written by the snapshot: %v", n, before)
	}

	for _, bad := range []struct{ env, want string }{
		{"SYNCD_S3_SSE=kms", `SYNCD_S3_SSE=kms: server-side encryption "kms": want AES256 (SSE-S3) or aws:kms (SSE-KMS)`},
		{"SYNCD_S3_STORAGE_CLASS=GLACIER", "SYNCD_S3_STORAGE_CLASS=GLACIER: storage class GLACIER: its objects must be restored"},
		{"SYNCD_S3_OBJECT_LOCK_RETAIN=30 days", `SYNCD_S3_OBJECT_LOCK_RETAIN="30 days": want a duration above 0`},
		{"SYNCD_S3_OBJECT_LOCK_MODE=COMPLIANCE", "SYNCD_S3_OBJECT_LOCK_MODE=COMPLIANCE: object-lock mode COMPLIANCE without a retention period"},
	} {
		os.WriteFile(filepath.Join(src, "new.txt"), []byte(bad.env), 0o644)
		res := run(t, append(append([]string{}, env...), bad.env), "syncd", append([]string{"snapshot"}, append(r.flags(), src)...)...)
		oneLine(t, bad.env, res, 2, bad.want)
	}
	if after := headAll(t, c, "backups", "web1/"); len(after) != len(before) {
		t.Errorf("the refused snapshots left objects: %d, before %d", len(after), len(before))
	}

	// the daemon: the config's keys
	dir := t.TempDir()
	folder := filepath.Join(dir, "www")
	os.Mkdir(folder, 0o755)
	os.WriteFile(filepath.Join(folder, "a.txt"), []byte("a"), 0o644)
	cfg := runDaemon(t, dir, env, fmt.Sprintf("folders:\n  - {id: www, path: %s}\nrepository:\n  url: %s\n  index_key: %s\n  data_recipients: []\n"+
		"  storage_class: REDUCED_REDUNDANCY\n  sse: aws:kms\n  sse_kms_key_id: %s\n", folder, r.url, r.indexKey, srv.KMSKeyID))
	waitFolder(t, cfg, "www", "ok")
	ok(t, nil, "syncd", "snapshot", "--config", cfg)
	kms := 0
	for key, got := range headAll(t, c, "backups", "web1/") {
		if _, old := before[key]; old {
			continue
		}
		kms++
		if want := "REDUCED_REDUNDANCY/aws:kms/"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, srv.KMSKeyID) {
			t.Errorf("%s from the daemon: %s, want %s…%s", key, got, want, srv.KMSKeyID)
		}
	}
	if kms < 3 {
		t.Errorf("the daemon's snapshot wrote %d objects, want 3 or more", kms)
	}
	target := t.TempDir()
	ok(t, env, "restore", append([]string{"latest", "--host", "web1"}, r.flags("--identity", r.dataKey, "--target", target)...)...)
	ok(t, env, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", r.dataKey)...)...)
}
