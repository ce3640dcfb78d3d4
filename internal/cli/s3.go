package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/s3"
	"github.com/syncd/syncd/internal/span"
)

// Environment variables of the S3 upload options (docs/S3.md), for every
// command; the daemon's repository.storage_class, sse, sse_kms_key_id,
// object_lock_mode and object_lock_retain take precedence, key by key.
const (
	EnvStorageClass     = "SYNCD_S3_STORAGE_CLASS"
	EnvSSE              = "SYNCD_S3_SSE"
	EnvSSEKMSKeyID      = "SYNCD_S3_SSE_KMS_KEY_ID"
	EnvObjectLockMode   = "SYNCD_S3_OBJECT_LOCK_MODE"
	EnvObjectLockRetain = "SYNCD_S3_OBJECT_LOCK_RETAIN"
)

// UploadFromEnv returns the upload options the environment sets, over
// which the non-empty fields of over win. An invalid value is an error
// naming its variable (or, for a combination, the options).
func UploadFromEnv(over s3.UploadOptions) (s3.UploadOptions, error) {
	o := s3.UploadOptions{StorageClass: os.Getenv(EnvStorageClass), SSE: os.Getenv(EnvSSE),
		SSEKMSKeyID: os.Getenv(EnvSSEKMSKeyID), LockMode: os.Getenv(EnvObjectLockMode)}
	if v := os.Getenv(EnvObjectLockRetain); v != "" {
		d, err := span.ParseElapsed(v)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("%s=%q: want a duration above 0, like 30d or 720h", EnvObjectLockRetain, v)
		}
		o.LockRetain = d
	}
	for _, f := range []struct{ dst, src *string }{{&o.StorageClass, &over.StorageClass}, {&o.SSE, &over.SSE},
		{&o.SSEKMSKeyID, &over.SSEKMSKeyID}, {&o.LockMode, &over.LockMode}} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	if over.LockRetain != 0 {
		o.LockRetain = over.LockRetain
	}
	if err := o.Validate(); err != nil {
		var set []string
		for _, k := range []string{EnvStorageClass, EnvSSE, EnvSSEKMSKeyID, EnvObjectLockMode, EnvObjectLockRetain} {
			if v := os.Getenv(k); v != "" {
				set = append(set, k+"="+v)
			}
		}
		if len(set) == 0 {
			return o, err
		}
		return o, fmt.Errorf("%s: %w", strings.Join(set, " "), err)
	}
	return o, nil
}

// openS3 opens the s3:// repository of cfg: the endpoint, region and
// credentials that cfg leaves out come the standard AWS way, and the
// upload options it leaves out from the environment (docs/S3.md).
func openS3(ctx context.Context, cfg s3.Config, create bool) (backend.Backend, error) {
	o, err := UploadFromEnv(cfg.Upload)
	if err != nil {
		return nil, Usage("repository %s: %v", cfg.URL, err)
	}
	cfg.Upload = o
	if create {
		return s3.Create(ctx, cfg)
	}
	return s3.Open(ctx, cfg)
}
