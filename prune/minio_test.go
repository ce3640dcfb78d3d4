package prune

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/s3"
	"github.com/syncd/syncd/internal/miniotest"
)

// Issue 7's bar: against MinIO, 3 writers and 200 snapshots over a
// simulated year, forget and prune running concurrently with the backups;
// afterwards verify --read-data passes, every kept snapshot restores, and
// the repository is within 10% of a fresh backup of the kept snapshots.
// Without the minio binary it skips (fails under CI=true); `make tools`
// installs it.
func TestConcurrentWritersAndPruneMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	create := func(t testing.TB, url string) backend.Backend {
		t.Helper()
		be, err := s3.Create(ctx, s3.Config{URL: url, PathStyle: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { be.Close() })
		return be
	}
	create(t, "s3://prune/repo")
	var fresh atomic.Int32
	scenario{
		writers: 3, snapshots: 67,
		be: func(t testing.TB) backend.Backend {
			be, err := s3.Open(ctx, s3.Config{URL: "s3://prune/repo", PathStyle: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { be.Close() })
			return be
		},
		fresh: func(t testing.TB) backend.Backend {
			return create(t, fmt.Sprintf("s3://fresh%d/repo", fresh.Add(1)))
		},
		sizeOf: objectBytes,
	}.run(t)
}
