package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// S3Upload holds what each upload to an s3:// repository asks of the store
// (docs/S3.md): StorageClass (storage_class), SSE (sse: AES256 for SSE-S3,
// aws:kms for SSE-KMS), SSEKMSKeyID (sse_kms_key_id), ObjectLockMode
// (object_lock_mode: GOVERNANCE or COMPLIANCE) and ObjectLockRetain
// (object_lock_retain, like 30d). An empty field leaves it to the
// SYNCD_S3_* variable of the same name, then to the bucket's defaults.
type S3Upload struct {
	StorageClass, SSE, SSEKMSKeyID, ObjectLockMode string
	ObjectLockRetain                               time.Duration
}

// uploadKeys are the keys of S3Upload, in the order they are checked.
var uploadKeys = []string{"storage_class", "sse", "sse_kms_key_id", "object_lock_mode", "object_lock_retain"}

func (o S3Upload) set() map[string]bool {
	return map[string]bool{"storage_class": o.StorageClass != "", "sse": o.SSE != "", "sse_kms_key_id": o.SSEKMSKeyID != "",
		"object_lock_mode": o.ObjectLockMode != "", "object_lock_retain": o.ObjectLockRetain != 0}
}

// s3Options checks the upload options o of the repository at repoURL,
// whose keys are under at (like "repository"), with the rules of
// chunkstore/s3's UploadOptions.Validate, each error naming its key and
// line. They are only for an s3:// repository; what names the repository
// in that message.
func (v *validator) s3Options(at, repoURL, what string, o S3Upload) error {
	key := func(k string) string { return at + "." + k }
	if !strings.HasPrefix(repoURL, "s3://") {
		set := o.set()
		for _, k := range uploadKeys {
			if set[k] {
				return v.errorf(key(k), "only for an s3:// %s, not %q", what, repoURL)
			}
		}
		return nil
	}
	if c := o.StorageClass; c != "" {
		if c == "GLACIER" || c == "DEEP_ARCHIVE" {
			return v.errorf(key("storage_class"), "%s objects must be restored before they can be read, and syncd reads index, snapshot and tree objects at every run; use GLACIER_IR, STANDARD_IA or a lifecycle rule for data/ only", c)
		}
		if strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
			return v.errorf(key("storage_class"), "want an S3 storage class in capitals, like STANDARD_IA, not %q", c)
		}
	}
	switch o.SSE {
	case "", "AES256", "aws:kms":
	default:
		return v.errorf(key("sse"), "want AES256 (SSE-S3) or aws:kms (SSE-KMS), not %q", o.SSE)
	}
	if o.SSEKMSKeyID != "" && o.SSE != "aws:kms" {
		return v.errorf(key("sse_kms_key_id"), "only with sse: aws:kms")
	}
	switch o.ObjectLockMode {
	case "":
		if o.ObjectLockRetain != 0 {
			return v.errorf(key("object_lock_retain"), "needs object_lock_mode: COMPLIANCE or GOVERNANCE")
		}
	case "GOVERNANCE", "COMPLIANCE":
		if o.ObjectLockRetain == 0 {
			return v.errorf(key("object_lock_mode"), "needs object_lock_retain, like 30d")
		}
	default:
		return v.errorf(key("object_lock_mode"), "want COMPLIANCE or GOVERNANCE, not %q", o.ObjectLockMode)
	}
	return nil
}

// s3Access checks where and as whom the s3:// copy target at (like
// "repository.copies[1]") is reached, and cleans its paths. Its keys are
// only for an s3:// target.
func (v *validator) s3Access(at, repoURL string, a *S3Access) error {
	key := func(k string) string { return at + "." + k }
	if !strings.HasPrefix(repoURL, "s3://") {
		for _, k := range []struct {
			name string
			set  bool
		}{{"endpoint", a.Endpoint != ""}, {"region", a.Region != ""}, {"credentials_file", a.CredentialsFile != ""},
			{"profile", a.Profile != ""}, {"path_style", a.PathStyle != nil}, {"ca_bundle", a.CABundle != ""}} {
			if k.set {
				return v.errorf(key(k.name), "only for an s3:// copy target, not %q", repoURL)
			}
		}
		return nil
	}
	if a.Endpoint != "" {
		if err := CheckEndpoint(a.Endpoint); err != nil {
			return v.errorf(key("endpoint"), "%v", err)
		}
	}
	if a.Region != "" && strings.ContainsAny(a.Region, " \t/\\:") {
		return v.errorf(key("region"), "want a region name like eu-west-1, not %q", a.Region)
	}
	if a.Profile != "" && strings.ContainsAny(a.Profile, " \t[]") {
		return v.errorf(key("profile"), "want a profile name without spaces or brackets, not %q", a.Profile)
	}
	var err error
	if a.CredentialsFile != "" {
		if a.CredentialsFile, err = v.absPath(key("credentials_file"), a.CredentialsFile); err != nil {
			return err
		}
	}
	if a.CABundle != "" {
		if a.CABundle, err = v.absPath(key("ca_bundle"), a.CABundle); err != nil {
			return err
		}
	}
	return nil
}

// CheckEndpoint checks the address of an S3 store: http:// or https://, a
// host and an optional port, nothing else.
func CheckEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return fmt.Errorf("want http:// or https:// and a host[:port], like https://s3.eu-west-1.amazonaws.com, not %q", s)
	}
	return nil
}

// copies checks repository.copies: each a repository location with its
// settings, neither the repository itself nor listed twice.
func (v *validator) copies(r *Repository) error {
	seen := map[string]string{}
	for i := range r.Copies {
		t := &r.Copies[i]
		at := fmt.Sprintf("repository.copies[%d]", i)
		urlKey := at
		if _, long := v.lines[at+".url"]; long {
			urlKey = at + ".url"
		}
		if err := v.repoURL(urlKey, t.URL); err != nil {
			return err
		}
		if err := v.s3Access(at, t.URL, &t.S3Access); err != nil {
			return err
		}
		if err := v.s3Options(at, t.URL, "copy target", t.S3Upload); err != nil {
			return err
		}
		u := strings.TrimRight(t.URL, "/")
		if t.Endpoint == "" && u == strings.TrimRight(r.URL, "/") {
			return v.errorf(urlKey, "%q is repository.url itself: a copy goes to another repository", t.URL)
		}
		id := u + " " + strings.TrimRight(t.Endpoint, "/")
		if first, dup := seen[id]; dup {
			return v.errorf(urlKey, "%q is listed twice (first at line %d)", t.URL, v.line(first))
		}
		seen[id] = urlKey
	}
	return nil
}
