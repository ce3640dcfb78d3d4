package config

import "go.yaml.in/yaml/v3"

// CopyTarget is one entry of repository.copies: a repository that
// receives copies of this node's snapshots. In the file an entry is the
// URL alone, or a mapping of url and the target's own settings:
//
//	copies:
//	  - s3://backups-eu/web            # reached like repository.url
//	  - url: s3://offsite/web          # another store, other credentials
//	    endpoint: https://minio.offsite.example:9000
//	    region: eu-west-1
//	    credentials_file: /etc/syncd/offsite.credentials
//	    path_style: true
//	    storage_class: STANDARD_IA
//	    object_lock_mode: COMPLIANCE
//	    object_lock_retain: 30d
//
// A setting left out is the environment's, as for repository.url
// (docs/S3.md); repository.url's own upload options do not carry over.
type CopyTarget struct {
	URL string // url: s3://BUCKET[/PREFIX] or an absolute directory
	S3Access
	S3Upload
}

// S3Access says where and as whom an s3:// copy target is reached. Each
// field set wins over what the environment says for every repository
// (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, …; docs/S3.md); each
// left empty is the environment's.
type S3Access struct {
	// Endpoint (endpoint) is the store's http:// or https:// address,
	// like https://s3.eu-west-1.amazonaws.com or http://minio:9000.
	Endpoint string
	// Region (region) is the bucket's region.
	Region string
	// CredentialsFile (credentials_file) is the absolute path of a file
	// in the format of ~/.aws/credentials whose section Profile (or
	// [default]) holds the target's keys: aws_access_key_id,
	// aws_secret_access_key and, for temporary ones, aws_session_token.
	// With it, the environment's credentials are never used for the
	// target. It must be readable by its owner only (mode 0600).
	CredentialsFile string
	// Profile (profile) is the section of CredentialsFile to use; without
	// a CredentialsFile, a profile of the shared AWS files (~/.aws/config
	// and ~/.aws/credentials), as AWS_PROFILE names one.
	Profile string
	// PathStyle (path_style) addresses the bucket as ENDPOINT/BUCKET
	// (true) or BUCKET.ENDPOINT (false); nil: SYNCD_S3_PATH_STYLE.
	PathStyle *bool
	// CABundle (ca_bundle) is the absolute path of a PEM file of the
	// certificate authorities to trust for Endpoint instead of the
	// system's.
	CABundle string
}

// Name names the target in logs, status, metrics and alerts: its URL,
// followed by its endpoint in parentheses when it has one of its own
// (two stores may each hold a bucket of the same name).
func (t CopyTarget) Name() string {
	if t.Endpoint == "" {
		return t.URL
	}
	return t.URL + " (" + t.Endpoint + ")"
}

// copyTarget decodes one entry of repository.copies: a string is the URL,
// a mapping the URL and the target's settings.
func (d *decoder) copyTarget(v *yaml.Node, path string, line int, t *CopyTarget) error {
	if n := resolve(v); n.Kind != yaml.MappingNode {
		return d.str(&t.URL)(v, path, line)
	}
	hasURL := false
	err := d.mapping(v, path, map[string]handler{
		"url": func(v *yaml.Node, path string, line int) error {
			hasURL = true
			return d.str(&t.URL)(v, path, line)
		},
		"endpoint":           d.str(&t.Endpoint),
		"region":             d.str(&t.Region),
		"credentials_file":   d.str(&t.CredentialsFile),
		"profile":            d.str(&t.Profile),
		"path_style":         d.optBool(&t.PathStyle),
		"ca_bundle":          d.str(&t.CABundle),
		"storage_class":      d.str(&t.StorageClass),
		"sse":                d.str(&t.SSE),
		"sse_kms_key_id":     d.str(&t.SSEKMSKeyID),
		"object_lock_mode":   d.str(&t.ObjectLockMode),
		"object_lock_retain": d.duration(&t.ObjectLockRetain, 0, "above 0, like 30d or 720h"),
	}, line)
	if err == nil && !hasURL {
		return d.errorf(line, path, "%s: no url: a copy target's mapping needs url: s3://BUCKET[/PREFIX] or a directory", path)
	}
	return err
}

// optBool decodes true or false into a new *b; null leaves it nil.
func (d *decoder) optBool(b **bool) handler {
	return func(v *yaml.Node, path string, line int) error {
		if isNull(resolve(v)) {
			*b = nil
			return nil
		}
		x := new(bool)
		if err := d.boolean(x)(v, path, line); err != nil {
			return err
		}
		*b = x
		return nil
	}
}
