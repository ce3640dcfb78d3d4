package config

import (
	"reflect"
	"testing"
	"time"
)

// The repository keys of issue 15: skip_unchanged and the S3 upload
// options.
func TestRepositoryOptions(t *testing.T) {
	repo := minimal + "repository:\n  url: s3://b/web\n  index_key: /etc/syncd/index.key\n"
	tests := []struct {
		name, yaml string
		check      func(c *Config) (any, any)
	}{
		{"skip_unchanged default on", repo, func(c *Config) (any, any) { return c.Repository.SkipUnchanged, true }},
		{"skip_unchanged off", repo + "  skip_unchanged: false\n", func(c *Config) (any, any) { return c.Repository.SkipUnchanged, false }},
		{"skip_unchanged null is the default", repo + "  skip_unchanged:\n", func(c *Config) (any, any) { return c.Repository.SkipUnchanged, true }},
		{"s3 upload options", repo + "  storage_class: STANDARD_IA\n  sse: aws:kms\n  sse_kms_key_id: alias/backup\n  object_lock_mode: COMPLIANCE\n  object_lock_retain: 30d\n", func(c *Config) (any, any) {
			r := c.Repository
			return []any{r.StorageClass, r.SSE, r.SSEKMSKeyID, r.ObjectLockMode, r.ObjectLockRetain}, []any{"STANDARD_IA", "aws:kms", "alias/backup", "COMPLIANCE", 30 * 24 * time.Hour}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "t.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got, want := tt.check(c); !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

// Each bad value is one error naming the file, the line and the key.
func TestRepositoryOptionErrors(t *testing.T) {
	repo := minimal + "repository:\n  url: s3://b/web\n  index_key: /etc/syncd/index.key\n"
	tests := []struct{ name, yaml, want string }{
		{"skip_unchanged yes", repo + "  skip_unchanged: yes\n", `t.yaml:7: repository.skip_unchanged: want true or false, not "yes"`},
		{"skip_unchanged a number", repo + "  skip_unchanged: 1\n", `t.yaml:7: repository.skip_unchanged: want true or false, not integer "1"`},
		{"skip_unchanged a list", repo + "  skip_unchanged: [true]\n", `t.yaml:7: repository.skip_unchanged: want true or false, not a list`},
		{"storage class glacier", repo + "  storage_class: GLACIER\n", `t.yaml:7: repository.storage_class: GLACIER objects must be restored before they can be read, and syncd reads index, snapshot and tree objects at every run; use GLACIER_IR, STANDARD_IA or a lifecycle rule for data/ only`},
		{"storage class lower case", repo + "  storage_class: standard_ia\n", `t.yaml:7: repository.storage_class: want an S3 storage class in capitals, like STANDARD_IA, not "standard_ia"`},
		{"sse unknown", repo + "  sse: kms\n", `t.yaml:7: repository.sse: want AES256 (SSE-S3) or aws:kms (SSE-KMS), not "kms"`},
		{"kms key without kms", repo + "  sse: AES256\n  sse_kms_key_id: k\n", `t.yaml:8: repository.sse_kms_key_id: only with sse: aws:kms`},
		{"lock mode lower case", repo + "  object_lock_mode: compliance\n  object_lock_retain: 1d\n", `t.yaml:7: repository.object_lock_mode: want COMPLIANCE or GOVERNANCE, not "compliance"`},
		{"lock mode without retain", repo + "  object_lock_mode: COMPLIANCE\n", `t.yaml:7: repository.object_lock_mode: needs object_lock_retain, like 30d`},
		{"lock retain without mode", repo + "  object_lock_retain: 30d\n", `t.yaml:7: repository.object_lock_retain: needs object_lock_mode: COMPLIANCE or GOVERNANCE`},
		{"lock retain zero", repo + "  object_lock_mode: COMPLIANCE\n  object_lock_retain: 0d\n", `t.yaml:8: repository.object_lock_retain: want a duration above 0, like 30d or 720h, not "0d"`},
		{"s3 options on a directory", minimal + "repository:\n  url: /srv/backup\n  index_key: /k\n  sse: AES256\n", `t.yaml:7: repository.sse: only for an s3:// repository, not "/srv/backup"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "t.yaml")
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}
