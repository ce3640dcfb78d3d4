package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/s3"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/span"
)

// EnvCopyPrefix begins the name of each variable that sets a copy
// target's setting for syncd copy and syncd init --copy-from: the key of
// a repository.copies entry in capitals, like SYNCD_COPY_ENDPOINT or
// SYNCD_COPY_CREDENTIALS_FILE.
const EnvCopyPrefix = "SYNCD_COPY_"

// targetKeys are the settings of a copy target, as keys of a
// repository.copies entry, each with the help of its --to- flag and what
// applies when neither the flag nor its variable is set.
var targetKeys = []struct{ key, help, otherwise string }{
	{"endpoint", "the copy target's S3 endpoint, http(s)://HOST[:PORT]", "AWS_ENDPOINT_URL"},
	{"region", "the copy target's bucket region", "AWS_REGION"},
	{"credentials_file", "file with the copy target's keys, in the format of ~/.aws/credentials, mode 0600; only its keys are used for the target", "the environment's keys"},
	{"profile", "the section of --to-credentials-file; without that flag, a profile of the shared AWS files", "[default] of the file, or AWS_PROFILE"},
	{"path_style", "address the copy target's bucket as ENDPOINT/BUCKET, or as BUCKET.ENDPOINT with =false", "SYNCD_S3_PATH_STYLE"},
	{"ca_bundle", "PEM file of the certificate authorities to trust for the copy target's endpoint", "SYNCD_S3_CA_BUNDLE"},
	{"storage_class", "the S3 storage class of the objects copied", "SYNCD_S3_STORAGE_CLASS"},
	{"sse", "server-side encryption of the objects copied: AES256 or aws:kms", "SYNCD_S3_SSE"},
	{"sse_kms_key_id", "with --to-sse aws:kms: the KMS key", "SYNCD_S3_SSE_KMS_KEY_ID"},
	{"object_lock_mode", "COMPLIANCE or GOVERNANCE: the object-lock retention of the objects copied", "SYNCD_S3_OBJECT_LOCK_MODE"},
	{"object_lock_retain", "with --to-object-lock-mode: how long, like 30d", "SYNCD_S3_OBJECT_LOCK_RETAIN"},
}

// flagName and envName are the flag and the variable of a target key.
func flagName(key string) string { return "to-" + strings.ReplaceAll(key, "_", "-") }
func envName(key string) string  { return EnvCopyPrefix + strings.ToUpper(key) }

// TargetFlags are the settings of a copy target on the command line: a
// flag --to-KEY, or else the variable SYNCD_COPY_KEY, for each key of a
// repository.copies entry (config.CopyTarget). What neither sets is the
// environment's, as for any repository.
type TargetFlags struct {
	vals      map[string]*string
	pathStyle bool
	cmd       *cobra.Command
}

// Register adds the --to- flags to cmd.
func (f *TargetFlags) Register(cmd *cobra.Command) {
	f.cmd = cmd
	f.vals = map[string]*string{}
	fl := cmd.Flags()
	for _, k := range targetKeys {
		name, help := flagName(k.key), k.help+" (env "+envName(k.key)+"; neither: "+k.otherwise+")"
		if k.key == "path_style" {
			fl.BoolVar(&f.pathStyle, name, false, help)
			continue
		}
		f.vals[k.key] = new(string)
		fl.StringVar(f.vals[k.key], name, os.Getenv(envName(k.key)), help)
	}
}

// Target returns the copy target at url with the settings of the flags
// and variables. A bad value, or a setting for a target that is not in
// S3, is a usage error naming the flag or variable.
func (f *TargetFlags) Target(url string) (config.CopyTarget, error) {
	t := config.CopyTarget{URL: url}
	set := map[string]string{} // key → how it was set, for messages
	val := func(key string) string {
		v := *f.vals[key]
		if v != "" {
			set[key] = f.source(key, v)
		}
		return v
	}
	t.Endpoint, t.Region, t.CredentialsFile, t.Profile, t.CABundle = val("endpoint"), val("region"), val("credentials_file"), val("profile"), val("ca_bundle")
	t.StorageClass, t.SSE, t.SSEKMSKeyID, t.ObjectLockMode = val("storage_class"), val("sse"), val("sse_kms_key_id"), val("object_lock_mode")
	if v := val("object_lock_retain"); v != "" {
		d, err := span.ParseElapsed(v)
		if err != nil || d <= 0 {
			return t, Usage("%s: want a duration above 0, like 30d or 720h", set["object_lock_retain"])
		}
		t.ObjectLockRetain = d
	}
	ps := flagName("path_style")
	if f.cmd.Flags().Changed(ps) {
		t.PathStyle = &f.pathStyle
		set["path_style"] = fmt.Sprintf("--%s=%t", ps, f.pathStyle)
	} else if v, ok := os.LookupEnv(envName("path_style")); ok && v != "" {
		b, err := parseBool(v)
		if err != nil {
			return t, Usage("%s=%s: want 1, true, 0 or false", envName("path_style"), v)
		}
		t.PathStyle = &b
		set["path_style"] = envName("path_style") + "=" + v
	}
	if len(set) == 0 {
		return t, nil
	}
	if u, err := repoURL(url); err != nil || !strings.HasPrefix(u, "s3://") {
		for _, k := range targetKeys {
			if how, ok := set[k.key]; ok {
				return t, Usage("%s: only for an s3:// copy target, not %q", how, url)
			}
		}
	}
	if t.Endpoint != "" {
		if err := config.CheckEndpoint(t.Endpoint); err != nil {
			return t, Usage("%s: %v", set["endpoint"], err)
		}
	}
	if err := UploadOptions(t.S3Upload).Validate(); err != nil {
		var how []string
		for _, k := range []string{"storage_class", "sse", "sse_kms_key_id", "object_lock_mode", "object_lock_retain"} {
			if s, ok := set[k]; ok {
				how = append(how, s)
			}
		}
		return t, Usage("%s: %v", strings.Join(how, " "), err)
	}
	return t, nil
}

// Given returns the first --to- flag on the command line, like
// "--to-region", or "" when there is none. (The SYNCD_COPY_* variables
// may stay set for commands that have no copy target.)
func (f *TargetFlags) Given() string {
	for _, k := range targetKeys {
		if f.cmd.Flags().Changed(flagName(k.key)) {
			return "--" + flagName(k.key)
		}
	}
	return ""
}

// source says how key got the value v: its flag or its variable.
func (f *TargetFlags) source(key, v string) string {
	if f.cmd.Flags().Changed(flagName(key)) {
		return "--" + flagName(key) + "=" + v
	}
	return envName(key) + "=" + v
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", s)
}

// UploadOptions returns the upload options of a configuration's
// repository or copy target.
func UploadOptions(u config.S3Upload) s3.UploadOptions {
	return s3.UploadOptions{StorageClass: u.StorageClass, SSE: u.SSE, SSEKMSKeyID: u.SSEKMSKeyID,
		LockMode: u.ObjectLockMode, LockRetain: u.ObjectLockRetain}
}

// OpenTarget opens the copy target t (create: makes it when missing), an
// s3:// bucket reached with t's own endpoint, region, credentials, path
// style, CA bundle and upload options, each one t leaves out being the
// environment's as for any repository; or a directory. An error names
// the target.
func OpenTarget(ctx context.Context, t config.CopyTarget, create bool) (backend.Backend, error) {
	url, err := repoURL(t.URL)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(url, "s3://") {
		return openLocal(url, create) // its errors name the directory
	}
	be, err := openS3(ctx, s3.Config{URL: url, Endpoint: t.Endpoint, Region: t.Region, CredentialsFile: t.CredentialsFile,
		Profile: t.Profile, PathStyle: t.PathStyle, CABundle: t.CABundle, Upload: UploadOptions(t.S3Upload)}, create)
	if err != nil {
		return nil, fmt.Errorf("copy target %s: %w", t.Name(), err)
	}
	return be, nil
}
