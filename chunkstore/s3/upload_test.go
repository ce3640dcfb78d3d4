package s3

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/internal/miniotest"
)

// webLockPolicy is docs/S3.md's web-node policy for a repository whose
// uploads carry an object-lock retention: s3:PutObjectRetention added,
// s3:BypassGovernanceRetention and s3:DeleteObjectVersion still not.
const webLockPolicy = `{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::BUCKET"]},
  {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:PutObjectRetention"], "Resource": ["arn:aws:s3:::BUCKET/*"]},
  {"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::BUCKET/repo/locks/*"]}]}`

func TestUploadOptionsValidate(t *testing.T) {
	for _, tt := range []struct {
		o    UploadOptions
		want string // "" for valid
	}{
		{UploadOptions{}, ""},
		{UploadOptions{StorageClass: "STANDARD_IA", SSE: SSEKMS, SSEKMSKeyID: "k", LockMode: LockCompliance, LockRetain: time.Hour}, ""},
		{UploadOptions{StorageClass: "GLACIER"}, "storage class GLACIER: its objects must be restored before they can be read"},
		{UploadOptions{StorageClass: "DEEP_ARCHIVE"}, "storage class DEEP_ARCHIVE: its objects must be restored"},
		{UploadOptions{StorageClass: "standard_ia"}, `storage class "standard_ia": want an S3 storage class in capitals`},
		{UploadOptions{SSE: "kms"}, `server-side encryption "kms": want AES256 (SSE-S3) or aws:kms (SSE-KMS)`},
		{UploadOptions{SSE: SSES3, SSEKMSKeyID: "k"}, "a KMS key ID is only for server-side encryption aws:kms"},
		{UploadOptions{LockMode: "governance", LockRetain: time.Hour}, `object-lock mode "governance": want GOVERNANCE or COMPLIANCE`},
		{UploadOptions{LockMode: LockGovernance}, "object-lock mode GOVERNANCE without a retention period above 0"},
		{UploadOptions{LockRetain: time.Hour}, "object-lock retention 1h0m0s without a mode"},
	} {
		err := tt.o.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.o, err, tt.want)
		}
	}
}

// TestUploadOptions: what MinIO can show of each option, single-part and
// multipart. MinIO has the storage classes STANDARD and REDUCED_REDUNDANCY
// only, and SSE only with a KMS: here its static key, which serves SSE-S3
// and SSE-KMS with that key's name. A real KMS (AWS KMS, Vault, KES) and
// AWS's other storage classes are not tested.
func TestUploadOptions(t *testing.T) {
	srv := miniotest.StartWith(t, miniotest.Options{KMS: true})
	useServer(t, srv)
	ctx := context.Background()
	admin := mustCreate(t, Config{URL: "s3://opts"}).client
	for _, tt := range []struct {
		name string
		o    UploadOptions
		want func(h *awss3.HeadObjectOutput) string // "" when h shows o
	}{
		{"storage class", UploadOptions{StorageClass: "REDUCED_REDUNDANCY"}, func(h *awss3.HeadObjectOutput) string {
			if h.StorageClass != types.StorageClassReducedRedundancy {
				return "storage class " + string(h.StorageClass)
			}
			return ""
		}},
		{"SSE-S3", UploadOptions{SSE: SSES3}, func(h *awss3.HeadObjectOutput) string {
			if h.ServerSideEncryption != types.ServerSideEncryptionAes256 {
				return "encryption " + string(h.ServerSideEncryption)
			}
			return ""
		}},
		{"SSE-KMS", UploadOptions{SSE: SSEKMS, SSEKMSKeyID: srv.KMSKeyID}, func(h *awss3.HeadObjectOutput) string {
			if h.ServerSideEncryption != types.ServerSideEncryptionAwsKms || !strings.HasSuffix(aws.ToString(h.SSEKMSKeyId), srv.KMSKeyID) {
				return "encryption " + string(h.ServerSideEncryption) + " key " + aws.ToString(h.SSEKMSKeyId)
			}
			return ""
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := "repo-" + strings.ReplaceAll(tt.name, " ", "-")
			b, err := Open(ctx, Config{URL: "s3://opts/" + prefix, PartSize: MinPartSize, Upload: tt.o})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			for name, data := range map[string][]byte{"data/small": random(t, 1000), "data/large": random(t, MinPartSize+1)} {
				if err := backend.SaveBytes(ctx, b, name, data); err != nil {
					t.Fatalf("Save(%s): %v", name, err)
				}
				h, err := admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("opts"), Key: aws.String(prefix + "/" + name)})
				if err != nil {
					t.Fatal(err)
				}
				if msg := tt.want(h); msg != "" {
					t.Errorf("%s: HEAD shows %s, want %+v", name, msg, tt.o)
				}
				if got := readRange(t, b, name, 0, 0); !bytes.Equal(got, data) {
					t.Errorf("%s reads back different", name)
				}
			}
		})
	}
}

// TestObjectLockOnUpload: with UploadOptions' object lock, each upload
// (single-part and multipart) carries its own retention, in a bucket with
// object lock but no default retention; locks/ carry none. Uploading with
// a retention needs s3:PutObjectRetention (docs/S3.md's policy without it
// is refused). In COMPLIANCE mode a web node's credentials can neither
// delete a locked version nor shorten its retention, with or without
// asking to bypass; not even the root user deletes it. In GOVERNANCE mode
// MinIO lets s3:PutObjectRetention shorten the retention when the request
// asks to bypass governance, without s3:BypassGovernanceRetention: the
// test pins that, as docs/S3.md tells operators to use COMPLIANCE.
func TestObjectLockOnUpload(t *testing.T) {
	srv := miniotest.Start(t)
	useServer(t, srv)
	ctx := context.Background()
	admin := mustCreate(t, Config{URL: "s3://setup"}).client
	for _, mode := range []string{LockCompliance, LockGovernance} {
		t.Run(mode, func(t *testing.T) {
			useServer(t, srv)
			name := "worm-" + strings.ToLower(mode)
			bucket := aws.String(name)
			if _, err := admin.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: bucket, ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
				t.Fatal(err)
			}
			srv.AddUser(t, "plain-"+name, "webnode-secret", policyFor(webNodePolicy, name))
			srv.AddUser(t, "web-"+name, "webnode-secret", policyFor(webLockPolicy, name))
			upload := UploadOptions{LockMode: mode, LockRetain: 24 * time.Hour}

			useEnv(t, srv.Endpoint, "plain-"+name, "webnode-secret")
			plain, err := Open(ctx, Config{URL: "s3://" + name + "/repo", Upload: upload})
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			err = backend.SaveBytes(ctx, plain, "data/x", []byte("x"))
			checkOneLine(t, err, ErrAccessDenied, "s3: save data/x", "access denied")

			useEnv(t, srv.Endpoint, "web-"+name, "webnode-secret")
			start := time.Now()
			web, err := Open(ctx, Config{URL: "s3://" + name + "/repo", PartSize: MinPartSize, Upload: upload})
			if err != nil {
				t.Fatal(err)
			}
			defer web.Close()
			for obj, n := range map[string]int{"data/small": 1000, "data/large": MinPartSize + 1, "locks/mine": 100} {
				if err := backend.SaveBytes(ctx, web, obj, random(t, n)); err != nil {
					t.Fatalf("web node Save(%s) with retention: %v", obj, err)
				}
			}
			version := func(key string) (*string, *types.ObjectLockRetention) {
				t.Helper()
				v, err := admin.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: bucket, Prefix: aws.String(key)})
				if err != nil || len(v.Versions) != 1 {
					t.Fatalf("versions of %s: %v %v", key, v, err)
				}
				r, err := admin.GetObjectRetention(ctx, &awss3.GetObjectRetentionInput{Bucket: bucket, Key: aws.String(key), VersionId: v.Versions[0].VersionId})
				if err != nil {
					return v.Versions[0].VersionId, nil
				}
				return v.Versions[0].VersionId, r.Retention
			}
			for _, key := range []string{"repo/data/small", "repo/data/large"} {
				id, ret := version(key)
				if ret == nil || string(ret.Mode) != mode ||
					ret.RetainUntilDate.Before(start.Add(24*time.Hour-time.Minute)) || ret.RetainUntilDate.After(time.Now().Add(24*time.Hour+time.Minute)) {
					t.Fatalf("%s retention %+v, want %s until a day after its upload", key, ret, mode)
				}
				for _, bypass := range []bool{false, true} {
					_, err := web.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: bucket, Key: aws.String(key), VersionId: id, BypassGovernanceRetention: aws.Bool(bypass)})
					if err == nil {
						t.Fatalf("web node deleted the locked version of %s (bypass %v)", key, bypass)
					}
				}
				_, err := web.client.PutObjectRetention(ctx, &awss3.PutObjectRetentionInput{Bucket: bucket, Key: aws.String(key), VersionId: id,
					Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionMode(mode), RetainUntilDate: aws.Time(time.Now().Add(time.Minute))}})
				if err == nil {
					t.Fatalf("web node shortened the retention of %s", key)
				}
				_, err = admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: bucket, Key: aws.String(key), VersionId: id})
				if err == nil || !strings.Contains(err.Error(), "AccessDenied") && !strings.Contains(err.Error(), "WORM protected") {
					t.Fatalf("root deleting the locked version of %s: %v, want it refused", key, err)
				}
				if _, after := version(key); after == nil || !after.RetainUntilDate.Equal(*ret.RetainUntilDate) {
					t.Fatalf("%s retention changed to %+v, want %v", key, after, ret.RetainUntilDate)
				}
				_, err = web.client.PutObjectRetention(ctx, &awss3.PutObjectRetentionInput{Bucket: bucket, Key: aws.String(key), VersionId: id,
					BypassGovernanceRetention: aws.Bool(true),
					Retention:                 &types.ObjectLockRetention{Mode: types.ObjectLockRetentionMode(mode), RetainUntilDate: aws.Time(time.Now().Add(time.Minute))}})
				if mode == LockCompliance && err == nil {
					t.Fatalf("web node shortened the COMPLIANCE retention of %s asking to bypass", key)
				}
				if mode == LockGovernance && err != nil {
					t.Fatalf("MinIO refused a GOVERNANCE bypass to s3:PutObjectRetention (%v): docs/S3.md says it allows it; update it", err)
				}
			}
			// a lock carries no retention: the web node removes it as before
			if _, ret := version("repo/locks/mine"); ret != nil {
				t.Errorf("locks/mine has retention %+v, want none", ret)
			}
			if err := web.Remove(ctx, "locks/mine"); err != nil {
				t.Errorf("web node Remove(locks/mine): %v", err)
			}
		})
	}
}
