package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// repoPrefix is the prefix inside each repository's bucket: both tools are
// given s3://BUCKET/PREFIX, so the prefix handling is exercised too.
const repoPrefix = "repo"

// minioMetrics are the measurements BENCHMARKS.md asks of MinIO: initial
// backup and restore, plus the repository size as S3 reports it.
var minioMetrics = []string{"initial", "restore", "size"}

// minioBackend keeps each repository in its own fresh bucket on server m,
// under repoPrefix. The runner makes the bucket before the tool's init (so
// both tools start from the same empty bucket), and Remove empties and
// deletes it. Size is the sum of the sizes of the objects under the prefix
// (ListObjectsV2): the bytes the repository occupies as S3 sees it, which is
// what a bill counts. `du` of MinIO's data directory would not do: its xl
// format adds per-object metadata files and inlines small objects into them.
func minioBackend(m *minioServer) Backend {
	client := s3.New(s3.Options{
		Region:       minioRegion,
		BaseEndpoint: aws.String(m.endpoint),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: m.access, SecretAccessKey: m.secret}, nil
		}),
	})
	return Backend{
		Name:  "minio",
		Title: "MinIO repository (S3 on loopback)",
		Note: fmt.Sprintf("Backend: one MinIO server for the whole section (%s; single drive, its data directory "+
			"in the run's scratch space on the same disk as the restore targets, plain HTTP on 127.0.0.1), a fresh "+
			"bucket per repository, made by the runner before `init`, the repository under the prefix `%s/`. "+
			"Ours gets `--repo s3://BUCKET/%s` with AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "+
			"AWS_REGION=%s and SYNCD_S3_PATH_STYLE=1; restic gets `-r s3:%s/BUCKET/%s` with AWS_ACCESS_KEY_ID and "+
			"AWS_SECRET_ACCESS_KEY. Repository size is the sum of the object sizes under the prefix (S3 "+
			"ListObjectsV2), not `du` of MinIO's data directory. The CPU times are the tool's own; MinIO's "+
			"work on the same two cores is in the wall times only.",
			m.version, repoPrefix, repoPrefix, minioRegion, m.endpoint, repoPrefix),
		Metrics: minioMetrics,
		Repo: func(ctx context.Context, tool, name string) (*Repo, error) {
			if err := m.alive(); err != nil {
				return nil, err
			}
			bucket := strings.ToLower("bench-" + tool + "-" + name)
			if err := removeBucket(ctx, client, bucket); err != nil {
				return nil, err
			}
			if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
				return nil, fmt.Errorf("create bucket %s: %v", bucket, err)
			}
			r := &Repo{
				Name:   tool + "-" + name,
				Size:   func(ctx context.Context) (int64, error) { return prefixSize(ctx, client, bucket) },
				Remove: func(ctx context.Context) error { return removeBucket(ctx, client, bucket) },
			}
			switch tool {
			case "restic":
				r.URL = fmt.Sprintf("s3:%s/%s/%s", m.endpoint, bucket, repoPrefix)
				r.Env = []string{"AWS_ACCESS_KEY_ID=" + m.access, "AWS_SECRET_ACCESS_KEY=" + m.secret}
			default:
				r.URL = fmt.Sprintf("s3://%s/%s", bucket, repoPrefix)
				r.Env = []string{
					"AWS_ENDPOINT_URL=" + m.endpoint,
					"AWS_ACCESS_KEY_ID=" + m.access,
					"AWS_SECRET_ACCESS_KEY=" + m.secret,
					"AWS_REGION=" + minioRegion,
					"SYNCD_S3_PATH_STYLE=1",
				}
			}
			return r, nil
		},
	}
}

// prefixSize sums the sizes of the objects under repoPrefix/ in bucket.
func prefixSize(ctx context.Context, client *s3.Client, bucket string) (int64, error) {
	var total int64
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(repoPrefix + "/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("list bucket %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			total += aws.ToInt64(o.Size)
		}
	}
	return total, nil
}

// removeBucket deletes every object in bucket, then the bucket. A bucket
// that does not exist is not an error.
func removeBucket(ctx context.Context, client *s3.Client, bucket string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if noBucket(err) {
				return nil
			}
			return fmt.Errorf("list bucket %s: %v", bucket, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("empty bucket %s: %v", bucket, err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("empty bucket %s: %s: %s", bucket, aws.ToString(e.Key), aws.ToString(e.Message))
		}
	}
	if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil && !noBucket(err) {
		return fmt.Errorf("delete bucket %s: %v", bucket, err)
	}
	return nil
}

// noBucket reports whether err says the bucket does not exist.
func noBucket(err error) bool {
	var nsb *types.NoSuchBucket
	return errors.As(err, &nsb) || strings.Contains(err.Error(), "NoSuchBucket")
}
