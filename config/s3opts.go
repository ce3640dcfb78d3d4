package config

import "strings"

// s3Options checks the upload options of repository: (storage_class, sse,
// sse_kms_key_id, object_lock_mode, object_lock_retain) with the rules of
// chunkstore/s3's UploadOptions.Validate, each error naming its key and
// line. They are only for an s3:// repository.
func (v *validator) s3Options(r *Repository) error {
	set := map[string]bool{
		"repository.storage_class": r.StorageClass != "", "repository.sse": r.SSE != "",
		"repository.sse_kms_key_id": r.SSEKMSKeyID != "", "repository.object_lock_mode": r.ObjectLockMode != "",
		"repository.object_lock_retain": r.ObjectLockRetain != 0,
	}
	if !strings.HasPrefix(r.URL, "s3://") {
		for _, k := range []string{"repository.storage_class", "repository.sse", "repository.sse_kms_key_id", "repository.object_lock_mode", "repository.object_lock_retain"} {
			if set[k] {
				return v.errorf(k, "only for an s3:// repository, not %q", r.URL)
			}
		}
		return nil
	}
	if c := r.StorageClass; c != "" {
		if c == "GLACIER" || c == "DEEP_ARCHIVE" {
			return v.errorf("repository.storage_class", "%s objects must be restored before they can be read, and syncd reads index, snapshot and tree objects at every run; use GLACIER_IR, STANDARD_IA or a lifecycle rule for data/ only", c)
		}
		if strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
			return v.errorf("repository.storage_class", "want an S3 storage class in capitals, like STANDARD_IA, not %q", c)
		}
	}
	switch r.SSE {
	case "", "AES256", "aws:kms":
	default:
		return v.errorf("repository.sse", "want AES256 (SSE-S3) or aws:kms (SSE-KMS), not %q", r.SSE)
	}
	if r.SSEKMSKeyID != "" && r.SSE != "aws:kms" {
		return v.errorf("repository.sse_kms_key_id", "only with sse: aws:kms")
	}
	switch r.ObjectLockMode {
	case "":
		if r.ObjectLockRetain != 0 {
			return v.errorf("repository.object_lock_retain", "needs object_lock_mode: COMPLIANCE or GOVERNANCE")
		}
	case "GOVERNANCE", "COMPLIANCE":
		if r.ObjectLockRetain == 0 {
			return v.errorf("repository.object_lock_mode", "needs object_lock_retain, like 30d")
		}
	default:
		return v.errorf("repository.object_lock_mode", "want COMPLIANCE or GOVERNANCE, not %q", r.ObjectLockMode)
	}
	return nil
}
