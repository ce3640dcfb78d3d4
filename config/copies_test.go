package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRepositoryCopies(t *testing.T) {
	repo := "repository:\n  url: s3://b/web\n  index_key: /etc/syncd/index.key\n"
	yes, no := true, false
	c, err := Parse([]byte(minimal+repo+`  copies:
    - s3://b-eu/web
    - /mnt/offsite/web
    - url: s3://offsite/web
      endpoint: https://minio.offsite.example:9000
      region: eu-west-1
      credentials_file: /etc/syncd/../syncd/offsite.credentials
      profile: syncd
      path_style: true
      ca_bundle: /etc/syncd/offsite-ca.pem
      storage_class: STANDARD_IA
      sse: aws:kms
      sse_kms_key_id: alias/offsite
      object_lock_mode: COMPLIANCE
      object_lock_retain: 30d
    - {url: s3://b/web, endpoint: "http://other:9000", path_style: false}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []CopyTarget{
		{URL: "s3://b-eu/web"},
		{URL: "/mnt/offsite/web"},
		{URL: "s3://offsite/web",
			S3Access: S3Access{Endpoint: "https://minio.offsite.example:9000", Region: "eu-west-1",
				CredentialsFile: "/etc/syncd/offsite.credentials", Profile: "syncd", PathStyle: &yes, CABundle: "/etc/syncd/offsite-ca.pem"},
			S3Upload: S3Upload{StorageClass: "STANDARD_IA", SSE: "aws:kms", SSEKMSKeyID: "alias/offsite",
				ObjectLockMode: "COMPLIANCE", ObjectLockRetain: 30 * 24 * time.Hour}},
		// the same bucket and prefix as url, in another store
		{URL: "s3://b/web", S3Access: S3Access{Endpoint: "http://other:9000", PathStyle: &no}},
	}
	for i, got := range c.Repository.Copies {
		if i >= len(want) || !reflect.DeepEqual(got, want[i]) {
			t.Errorf("copies[%d] = %+v", i, got)
		}
	}
	if len(c.Repository.Copies) != len(want) {
		t.Errorf("%d copies, want %d", len(c.Repository.Copies), len(want))
	}
	names := []string{"s3://b-eu/web", "/mnt/offsite/web", "s3://offsite/web (https://minio.offsite.example:9000)", "s3://b/web (http://other:9000)"}
	for i, n := range names {
		if got := c.Repository.Copies[i].Name(); got != n {
			t.Errorf("copies[%d].Name() = %q, want %q", i, got, n)
		}
	}
	c, err = Parse([]byte(minimal+repo), "t.yaml")
	if err != nil || c.Repository.Copies != nil {
		t.Errorf("copies left out = %+v, %v; want none", c.Repository.Copies, err)
	}
}

// Each bad entry of repository.copies is one error naming the file, the
// line and the key.
func TestRepositoryCopiesErrors(t *testing.T) {
	repo := "repository:\n  url: s3://b/web\n  index_key: /etc/syncd/index.key\n"
	bad := []struct{ name, yaml, want string }{
		{"relative", "  copies: [s3://b-eu/web, backups/web]\n", `t.yaml:7: repository.copies[1]: want s3://BUCKET[/PREFIX] or an absolute directory, not "backups/web"`},
		{"scheme", "  copies:\n    - gs://b/web\n", `t.yaml:8: repository.copies[0]: unknown scheme "gs" in "gs://b/web" (want s3://BUCKET[/PREFIX] or an absolute directory)`},
		{"no bucket", "  copies:\n    - s3:///web\n", `t.yaml:8: repository.copies[0]: want s3://BUCKET[/PREFIX], not "s3:///web" (no bucket)`},
		{"empty", "  copies:\n    - ''\n", `t.yaml:8: repository.copies[0]: required`},
		{"itself", "  copies:\n    - s3://b/web/\n", `t.yaml:8: repository.copies[0]: "s3://b/web/" is repository.url itself: a copy goes to another repository`},
		{"itself, long", "  copies:\n    - url: s3://b/web\n      region: eu-west-1\n", `t.yaml:8: repository.copies[0].url: "s3://b/web" is repository.url itself: a copy goes to another repository`},
		{"twice", "  copies:\n    - s3://b-eu/web\n    - s3://b-eu/web\n", `t.yaml:9: repository.copies[1]: "s3://b-eu/web" is listed twice (first at line 8)`},
		{"twice, same endpoint", "  copies:\n    - {url: s3://o/web, endpoint: 'http://h:1'}\n    - {url: s3://o/web, endpoint: 'http://h:1/'}\n",
			`t.yaml:9: repository.copies[1].url: "s3://o/web" is listed twice (first at line 8)`},
		{"a string", "  copies: s3://b-eu/web\n", `t.yaml:7: repository.copies: want a list, not "s3://b-eu/web"`},
		{"unknown key", "  copies:\n    - url: s3://o/web\n      endpoint_url: https://x\n", `t.yaml:9: unknown key "endpoint_url" in repository.copies[0]`},
		{"no url", "  copies:\n    - region: eu-west-1\n", `t.yaml:8: repository.copies[0]: no url: a copy target's mapping needs url: s3://BUCKET[/PREFIX] or a directory`},
		{"endpoint scheme", "  copies:\n    - {url: s3://o/web, endpoint: minio:9000}\n", `t.yaml:8: repository.copies[0].endpoint: want http:// or https:// and a host[:port], like https://s3.eu-west-1.amazonaws.com, not "minio:9000"`},
		{"endpoint path", "  copies:\n    - url: s3://o/web\n      endpoint: https://h/bucket\n", `t.yaml:9: repository.copies[0].endpoint: want http:// or https:// and a host[:port], like https://s3.eu-west-1.amazonaws.com, not "https://h/bucket"`},
		{"region", "  copies:\n    - {url: s3://o/web, region: eu west}\n", `t.yaml:8: repository.copies[0].region: want a region name like eu-west-1, not "eu west"`},
		{"credentials relative", "  copies:\n    - url: s3://o/web\n      credentials_file: offsite.credentials\n", `t.yaml:9: repository.copies[0].credentials_file: want an absolute path, not "offsite.credentials"`},
		{"path_style yes", "  copies:\n    - url: s3://o/web\n      path_style: yes\n", `t.yaml:9: repository.copies[0].path_style: want true or false, not "yes"`},
		{"s3 keys on a directory", "  copies:\n    - url: /mnt/copy\n      region: eu-west-1\n", `t.yaml:9: repository.copies[0].region: only for an s3:// copy target, not "/mnt/copy"`},
		{"upload keys on a directory", "  copies:\n    - url: /mnt/copy\n      sse: AES256\n", `t.yaml:9: repository.copies[0].sse: only for an s3:// copy target, not "/mnt/copy"`},
		{"storage class", "  copies:\n    - url: s3://o/web\n      storage_class: GLACIER\n", `t.yaml:9: repository.copies[0].storage_class: GLACIER objects must be restored before they can be read, and syncd reads index, snapshot and tree objects at every run; use GLACIER_IR, STANDARD_IA or a lifecycle rule for data/ only`},
		{"lock without retain", "  copies:\n    - url: s3://o/web\n      object_lock_mode: GOVERNANCE\n", `t.yaml:9: repository.copies[0].object_lock_mode: needs object_lock_retain, like 30d`},
		{"retain not a duration", "  copies:\n    - url: s3://o/web\n      object_lock_retain: forever\n", `t.yaml:9: repository.copies[0].object_lock_retain: want a duration above 0, like 30d or 720h, not "forever"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+repo+tt.yaml), "t.yaml")
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\nwant    %s", err, tt.want)
			}
		})
	}
}

// The commented copies: example of deploy/syncd.yaml loads once
// uncommented.
func TestSampleCopies(t *testing.T) {
	data, err := os.ReadFile("../deploy/syncd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.Replace(string(data), "<node ID printed by `syncd id` on web2>", idX, 1), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  # copies:") || strings.HasPrefix(l, "  #   ") {
			lines[i] = "  " + l[len("  # "):]
		}
	}
	c, err := Parse([]byte(strings.Join(lines, "\n")), "syncd.yaml")
	if err != nil {
		t.Fatalf("the sample with its copies uncommented: %v", err)
	}
	want := []CopyTarget{{URL: "s3://backups-eu/web"}, {URL: "s3://offsite/web",
		S3Access: S3Access{Endpoint: "https://s3.eu-central-1.wasabisys.com", Region: "eu-central-1", CredentialsFile: "/etc/syncd/offsite.credentials"},
		S3Upload: S3Upload{StorageClass: "STANDARD_IA"}}}
	if !reflect.DeepEqual(c.Repository.Copies, want) {
		t.Errorf("copies = %+v, want %+v", c.Repository.Copies, want)
	}
}
