package cli

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore/s3"
	"github.com/syncd/syncd/config"
)

// parseTarget registers the --to- flags on a new command, parses args and
// returns the copy target at url they describe.
func parseTarget(t *testing.T, url string, args ...string) (config.CopyTarget, error) {
	t.Helper()
	var f TargetFlags
	cmd := &cobra.Command{Use: "copy"}
	f.Register(cmd)
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return f.Target(url)
}

// Every key of a repository.copies entry has its flag and its variable,
// and each lands in its field; a flag wins over its variable.
func TestTargetFlags(t *testing.T) {
	yes, no := true, false
	want := config.CopyTarget{URL: "s3://offsite/web",
		S3Access: config.S3Access{Endpoint: "https://minio.example:9000", Region: "eu-west-1", CredentialsFile: "/etc/syncd/offsite.credentials",
			Profile: "syncd", PathStyle: &yes, CABundle: "/etc/syncd/ca.pem"},
		S3Upload: config.S3Upload{StorageClass: "STANDARD_IA", SSE: "aws:kms", SSEKMSKeyID: "alias/k", ObjectLockMode: "COMPLIANCE", ObjectLockRetain: 30 * 24 * time.Hour}}
	values := map[string]string{"endpoint": "https://minio.example:9000", "region": "eu-west-1", "credentials_file": "/etc/syncd/offsite.credentials",
		"profile": "syncd", "path_style": "true", "ca_bundle": "/etc/syncd/ca.pem", "storage_class": "STANDARD_IA", "sse": "aws:kms",
		"sse_kms_key_id": "alias/k", "object_lock_mode": "COMPLIANCE", "object_lock_retain": "30d"}
	if len(values) != len(targetKeys) {
		t.Fatalf("the test sets %d keys, there are %d", len(values), len(targetKeys))
	}
	var args []string
	for k, v := range values {
		args = append(args, "--"+flagName(k)+"="+v)
	}
	if got, err := parseTarget(t, "s3://offsite/web", args...); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("from flags: %+v, %v\nwant %+v", got, err, want)
	}
	for k, v := range values {
		t.Setenv(envName(k), v)
	}
	if got, err := parseTarget(t, "s3://offsite/web"); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("from variables: %+v, %v\nwant %+v", got, err, want)
	}
	got, err := parseTarget(t, "s3://offsite/web", "--to-region=us-east-2", "--to-path-style=false")
	if err != nil || got.Region != "us-east-2" || got.PathStyle == nil || *got.PathStyle != no {
		t.Errorf("flags over variables: region %q, path style %v, %v", got.Region, got.PathStyle, err)
	}
	if got := UploadOptions(want.S3Upload); got != (s3.UploadOptions{StorageClass: "STANDARD_IA", SSE: "aws:kms", SSEKMSKeyID: "alias/k",
		LockMode: "COMPLIANCE", LockRetain: 30 * 24 * time.Hour}) {
		t.Errorf("UploadOptions = %+v", got)
	}
}

func TestTargetFlagsNone(t *testing.T) {
	got, err := parseTarget(t, "/mnt/copy")
	if err != nil || !reflect.DeepEqual(got, config.CopyTarget{URL: "/mnt/copy"}) {
		t.Errorf("no settings: %+v, %v", got, err)
	}
}

func TestTargetFlagErrors(t *testing.T) {
	for _, c := range []struct {
		url  string
		args []string
		want string
	}{
		{"s3://o/web", []string{"--to-endpoint=minio:9000"}, `--to-endpoint=minio:9000: want http:// or https://`},
		{"s3://o/web", []string{"--to-object-lock-retain=forever"}, `--to-object-lock-retain=forever: want a duration above 0`},
		{"s3://o/web", []string{"--to-object-lock-mode=COMPLIANCE"}, `--to-object-lock-mode=COMPLIANCE: object-lock mode COMPLIANCE without a retention period`},
		{"s3://o/web", []string{"--to-sse=AES256", "--to-sse-kms-key-id=k"}, `--to-sse=AES256 --to-sse-kms-key-id=k: a KMS key ID is only for server-side encryption aws:kms`},
		{"/mnt/copy", []string{"--to-path-style"}, `--to-path-style=true: only for an s3:// copy target, not "/mnt/copy"`},
		{"s3:bucket/web", nil, ""}, // restic's spelling is S3 too
		{"s3:bucket/web", []string{"--to-region=x"}, ""},
	} {
		_, err := parseTarget(t, c.url, c.args...)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s %q: error %v, want %q", c.url, c.args, err, c.want)
		}
		if err != nil && !errors.As(err, new(usageError)) {
			t.Errorf("%s %q: %v is not a usage error", c.url, c.args, err)
		}
	}
}
