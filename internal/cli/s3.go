package cli

import (
	"context"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/s3"
)

// openS3 opens an s3:// repository; endpoint, region and credentials come
// the standard AWS way (docs/S3.md).
func openS3(ctx context.Context, url string, create bool) (backend.Backend, error) {
	cfg := s3.Config{URL: url}
	if create {
		return s3.Create(ctx, cfg)
	}
	return s3.Open(ctx, cfg)
}
