package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// DefaultProfile is the section of a credentials file used when no
// profile is named.
const DefaultProfile = "default"

// accessOptions returns the options of config.LoadDefaultConfig that give
// c's region and credentials precedence over the environment's.
func (c Config) accessOptions(ctx context.Context) ([]func(*config.LoadOptions) error, error) {
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	switch {
	case c.CredentialsFile != "":
		creds, err := loadCredentialsFile(ctx, c.CredentialsFile, c.Profile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, config.WithCredentialsProvider(credentials.StaticCredentialsProvider{Value: creds}))
	case c.Profile != "":
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	return opts, nil
}

// loadCredentialsFile reads the keys of section profile (DefaultProfile
// when empty) of the credentials file at path, in the format of
// ~/.aws/credentials. A file that others may read or write is refused,
// as is one without the section or its keys. The keys are never part of
// an error.
func loadCredentialsFile(ctx context.Context, path, profile string) (aws.Credentials, error) {
	if profile == "" {
		profile = DefaultProfile
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return aws.Credentials{}, fmt.Errorf("s3: credentials file %s does not exist", path)
	case err != nil:
		return aws.Credentials{}, fmt.Errorf("s3: credentials file: %w", err)
	case !fi.Mode().IsRegular():
		return aws.Credentials{}, fmt.Errorf("s3: credentials file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return aws.Credentials{}, fmt.Errorf("s3: credentials file %s is accessible by others (mode %04o); run: chmod 600 %s", path, perm, path)
	}
	sc, err := config.LoadSharedConfigProfile(ctx, profile, func(o *config.LoadSharedConfigOptions) {
		o.ConfigFiles = []string{} // none: the file alone says it
		o.CredentialsFiles = []string{path}
	})
	var missing config.SharedConfigProfileNotExistError
	switch {
	case errors.As(err, &missing):
		return aws.Credentials{}, fmt.Errorf("s3: credentials file %s has no [%s] section", path, profile)
	case err != nil:
		// Not the SDK's message: it might quote a line of the file.
		return aws.Credentials{}, fmt.Errorf("s3: credentials file %s: cannot be read as a file in the format of ~/.aws/credentials", path)
	case !sc.Credentials.HasKeys():
		return aws.Credentials{}, fmt.Errorf("s3: credentials file %s: section [%s] has no aws_access_key_id and aws_secret_access_key", path, profile)
	}
	c := sc.Credentials
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Source: "credentials file " + path}, nil
}
