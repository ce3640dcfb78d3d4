package s3

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/internal/miniotest"
)

// writeCredentials writes a credentials file of mode perm with one
// section per profile, each holding the access key and the secret of
// keys[profile].
func writeCredentials(t *testing.T, perm os.FileMode, keys map[string][2]string) string {
	t.Helper()
	var b strings.Builder
	for profile, k := range keys {
		b.WriteString("[" + profile + "]\naws_access_key_id = " + k[0] + "\naws_secret_access_key = " + k[1] + "\n\n")
	}
	path := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(path, []byte(b.String()), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// closedEndpoint returns http://127.0.0.1:PORT where nothing listens.
func closedEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// TestOwnAccess: a Config's endpoint, region, credentials file and profile
// win over the environment's, which here point elsewhere: a closed port,
// another region, an unknown user. Each left out, the environment's
// fails the way it would.
func TestOwnAccess(t *testing.T) {
	srv := miniotest.Start(t)
	useServer(t, srv)
	mustCreate(t, Config{URL: "s3://own"})
	srv.AddUser(t, "copier", "copier-secret", policyFor(webNodePolicy, "own"))
	ctx := context.Background()

	useEnv(t, closedEndpoint(t), "nobody", "nobody-secret")
	t.Setenv("AWS_REGION", "eu-west-1")
	creds := writeCredentials(t, 0o600, map[string][2]string{"default": {"copier", "copier-secret"}, "wrong": {"copier", "not-the-secret"}})
	own := Config{URL: "s3://own/repo", Endpoint: srv.Endpoint, Region: miniotest.Region, CredentialsFile: creds}

	b, err := Open(ctx, own)
	if err != nil {
		t.Fatalf("Open with its own endpoint, region and credentials file: %v", err)
	}
	data := random(t, 1000)
	if err := backend.SaveBytes(ctx, b, "keys/one", data); err != nil {
		t.Fatal(err)
	}
	if got := readRange(t, b, "keys/one", 0, 0); !bytes.Equal(got, data) {
		t.Fatal("keys/one reads back different")
	}

	noEndpoint, noRegion, noFile, wrongProfile := own, own, own, own
	noEndpoint.Endpoint, noRegion.Region, noFile.CredentialsFile, wrongProfile.Profile = "", "", "", "wrong"
	_, err = Open(ctx, noEndpoint)
	checkOneLine(t, err, ErrUnreachable, "cannot reach endpoint "+os.Getenv("AWS_ENDPOINT_URL"))
	_, err = Open(ctx, noRegion)
	checkOneLine(t, err, ErrWrongRegion, "wrong region eu-west-1 for bucket own")
	_, err = Open(ctx, noFile)
	checkOneLine(t, err, ErrAccessDenied, "does not know the access key")
	// the file's keys win over good ones in the environment
	t.Setenv("AWS_ACCESS_KEY_ID", "copier")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "copier-secret")
	_, err = Open(ctx, wrongProfile)
	checkOneLine(t, err, ErrAccessDenied, "secret access key does not match")

	// A profile without a credentials file: one of the shared AWS files,
	// as AWS_PROFILE would name it; its keys win over the environment's.
	t.Setenv("AWS_ACCESS_KEY_ID", "nobody")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", writeCredentials(t, 0o600, map[string][2]string{"offsite": {"copier", "copier-secret"}}))
	byProfile := own
	byProfile.CredentialsFile, byProfile.Profile = "", "offsite"
	b, err = Open(ctx, byProfile)
	if err != nil {
		t.Fatalf("Open with profile offsite of the shared credentials file: %v", err)
	}
	if got := readRange(t, b, "keys/one", 0, 0); !bytes.Equal(got, data) {
		t.Fatal("keys/one reads back different")
	}
}

// TestCredentialsFileRefused: a credentials file others may read, a
// missing one, one without the section or without keys: each is one line
// naming the file, before any request, and never holds a key.
func TestCredentialsFileRefused(t *testing.T) {
	useEnv(t, closedEndpoint(t), "env-key", "env-secret")
	const secret = "s3cr3t-v4lue-never-shown"
	open := writeCredentials(t, 0o644, map[string][2]string{"default": {"AKIAEXAMPLE", secret}})
	other := writeCredentials(t, 0o600, map[string][2]string{"other": {"AKIAEXAMPLE", secret}})
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("[default]\nregion = eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"mode 0644", Config{CredentialsFile: open}, []string{"credentials file " + open + " is accessible by others (mode 0644)", "chmod 600 " + open}},
		{"missing", Config{CredentialsFile: missing}, []string{"credentials file " + missing + " does not exist"}},
		{"no such section", Config{CredentialsFile: other}, []string{"credentials file " + other + " has no [default] section"}},
		{"no keys", Config{CredentialsFile: empty}, []string{"credentials file " + empty + ": section [default] has no aws_access_key_id"}},
		{"a directory", Config{CredentialsFile: t.TempDir()}, []string{"is not a regular file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.URL = "s3://bucket"
			_, err := Open(context.Background(), c.cfg)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, "cannot reach") || strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error %q: want one line, before any request, without the key", msg)
			}
		})
	}
}

// TestPathStyleAndEndpoint: Config.PathStyle, when set, wins over
// SYNCD_S3_PATH_STYLE both ways, and Config.Endpoint over
// AWS_ENDPOINT_URL_S3.
func TestPathStyleAndEndpoint(t *testing.T) {
	useEnv(t, "http://127.0.0.1:1", "key", "secret")
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:2")
	for _, c := range []struct {
		env      string
		set      *bool
		endpoint string
		want     bool
		wantEP   string
	}{
		{"1", nil, "", true, "http://127.0.0.1:2"},
		{"1", aws.Bool(false), "https://s3.eu-west-1.amazonaws.com", false, "https://s3.eu-west-1.amazonaws.com"},
		{"", nil, "", false, "http://127.0.0.1:2"},
		{"", aws.Bool(true), "http://minio:9000", true, "http://minio:9000"},
	} {
		t.Setenv(EnvPathStyle, c.env)
		b, err := newBackend(context.Background(), Config{URL: "s3://bucket", PathStyle: c.set, Endpoint: c.endpoint})
		if err != nil {
			t.Fatal(err)
		}
		o := b.client.Options()
		if o.UsePathStyle != c.want || aws.ToString(o.BaseEndpoint) != c.wantEP || b.endpoint != c.wantEP {
			set := "nil"
			if c.set != nil {
				set = fmt.Sprint(*c.set)
			}
			t.Errorf("%s=%q, PathStyle %s, Endpoint %q: path style %v, endpoint %q (%q); want %v, %q",
				EnvPathStyle, c.env, set, c.endpoint, o.UsePathStyle, aws.ToString(o.BaseEndpoint), b.endpoint, c.want, c.wantEP)
		}
	}
}
