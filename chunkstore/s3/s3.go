// Package s3 implements a backend.Backend in an S3 bucket (AWS S3, MinIO or
// another S3-compatible store).
//
// Objects are stored under PREFIX/name in the bucket named by an
// s3://BUCKET[/PREFIX] URL. The endpoint, region and credentials come the
// standard AWS way (environment, shared config files, profiles; see
// [config.LoadDefaultConfig]) unless [Config] names its own, as a second
// repository in another store needs; the rest is in [Config].
//
// Every error this package returns is one line. Failures that an operator
// must fix — wrong credentials, a missing bucket, the wrong region, an
// unreachable endpoint — say so in words, match one of [ErrAccessDenied],
// [ErrBucketNotExist], [ErrWrongRegion] or [ErrUnreachable] with errors.Is,
// and wrap the SDK's error. A missing object matches backend.ErrNotExist.
package s3

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"

	"github.com/syncd/syncd/chunkstore/backend"
)

// Defaults for the zero values of [Config].
const (
	DefaultUploadConcurrency = 2
	DefaultPartSize          = 8 << 20
	DefaultTimeout           = 30 * time.Second
	DefaultRegion            = "us-east-1"
)

// MinPartSize is the smallest part S3 accepts in a multipart upload (all
// parts but the last).
const MinPartSize = 5 << 20

// Limits that keep every failure bounded in time.
const (
	connectTimeout = 5 * time.Second  // TCP connect
	tlsTimeout     = 10 * time.Second // TLS handshake
	probeTimeout   = 30 * time.Second // Open and Create's first request, retries included
	maxAttempts    = 5                // tries of one request, the first included
	maxBackoff     = 10 * time.Second // longest wait between two tries
	idleTimeout    = 30 * time.Second // an unused connection is closed
)

// Environment variables that set defaults for Config fields.
const (
	EnvPathStyle = "SYNCD_S3_PATH_STYLE" // "1" or "true": path-style addressing
	EnvCABundle  = "SYNCD_S3_CA_BUNDLE"  // PEM file of the CAs to trust
)

// Config says which bucket to use and how. Only URL is required.
type Config struct {
	// URL is s3://BUCKET[/PREFIX].
	URL string

	// Endpoint is the store's address, http(s)://HOST[:PORT]; empty:
	// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the shared config's, or
	// AWS's endpoint of the region.
	Endpoint string

	// Region is the bucket's region; empty: AWS_REGION, the profile's,
	// then DefaultRegion.
	Region string

	// CredentialsFile is a file in the format of ~/.aws/credentials whose
	// section Profile (DefaultProfile when empty) holds the keys. Only
	// those keys are used: never the environment's, a role's or another
	// file's. A file that others may read or write is refused. It is read
	// at each Open or Create, so a rotated key is used from the next one.
	CredentialsFile string

	// Profile, without CredentialsFile, is a profile of the shared AWS
	// files whose settings and credentials are used, as AWS_PROFILE
	// names one (its credentials win over AWS_ACCESS_KEY_ID).
	Profile string

	// PathStyle, when set, says whether to address the bucket as
	// ENDPOINT/BUCKET (true; MinIO and most self-hosted stores need it)
	// or as BUCKET.ENDPOINT (false). nil: path style when
	// SYNCD_S3_PATH_STYLE is "1" or "true".
	PathStyle *bool

	// CABundle is a PEM file of the certificate authorities to trust for
	// the endpoint, instead of the system's (a store with a private CA).
	// Empty means SYNCD_S3_CA_BUNDLE, then AWS_CA_BUNDLE, then the system's.
	CABundle string

	// UploadConcurrency is how many parts of one multipart upload are sent
	// at once (default 2). Each takes a PartSize buffer.
	UploadConcurrency int

	// PartSize is the part size of multipart uploads, used for objects
	// larger than it (default 8 MiB, at least 5 MiB). Smaller objects go in
	// one PutObject.
	PartSize int64

	// Timeout bounds one HTTP request's wait for the server: for its
	// response once the request is sent, and for each read of a response
	// body (default 30 s). It does not bound a transfer that makes
	// progress.
	Timeout time.Duration

	// Upload is what every upload asks of the store: storage class,
	// server-side encryption, object-lock retention.
	Upload UploadOptions
}

// withDefaults fills in the zero values of c from the environment and the
// package defaults, and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.PathStyle == nil {
		v := os.Getenv(EnvPathStyle)
		c.PathStyle = aws.Bool(v == "1" || strings.EqualFold(v, "true"))
	}
	if c.CABundle == "" {
		c.CABundle = os.Getenv(EnvCABundle)
	}
	if c.UploadConcurrency == 0 {
		c.UploadConcurrency = DefaultUploadConcurrency
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.UploadConcurrency < 1:
		return c, fmt.Errorf("s3: upload concurrency %d must be at least 1", c.UploadConcurrency)
	case c.PartSize < MinPartSize:
		return c, fmt.Errorf("s3: part size %d must be at least %d (5 MiB)", c.PartSize, MinPartSize)
	case c.Timeout < 0:
		return c, fmt.Errorf("s3: negative timeout %v", c.Timeout)
	}
	if err := c.Upload.Validate(); err != nil {
		return c, fmt.Errorf("s3: %w", err)
	}
	return c, nil
}

// ParseURL splits s3://BUCKET[/PREFIX] into the bucket and the prefix,
// without slashes at either end of the prefix.
func ParseURL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		if i := strings.Index(s, "://"); i >= 0 {
			return "", "", fmt.Errorf("s3: URL %q: scheme %q is not s3", s, s[:i])
		}
		return "", "", fmt.Errorf("s3: URL %q does not start with s3://", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("s3: URL %q has no bucket name (want s3://BUCKET[/PREFIX])", s)
	}
	if err := checkBucket(bucket); err != nil {
		return "", "", fmt.Errorf("s3: URL %q: %w", s, err)
	}
	if strings.ContainsAny(prefix, "?#\\") {
		return "", "", fmt.Errorf("s3: URL %q: prefix %q may not hold ?, # or \\", s, prefix)
	}
	prefix = strings.Trim(prefix, "/")
	for seg := range strings.SplitSeq(prefix, "/") {
		if prefix != "" && (seg == "" || seg == "." || seg == "..") {
			return "", "", fmt.Errorf("s3: URL %q: prefix %q has an empty, . or .. segment", s, prefix)
		}
	}
	return bucket, prefix, nil
}

// checkBucket checks a bucket name against S3's naming rules: 3 to 63
// lower-case letters, digits, dots and hyphens, starting and ending with a
// letter or digit.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters long", b)
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return fmt.Errorf("bucket name %q may hold only a-z, 0-9, . and -", b)
		}
	}
	if strings.Trim(b, ".-") != b {
		return fmt.Errorf("bucket name %q must start and end with a letter or digit", b)
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("bucket name %q may not hold two dots in a row", b)
	}
	return nil
}

// Backend is a repository in an S3 bucket. It is safe for concurrent use.
type Backend struct {
	client   *awss3.Client
	uploader *transfermanager.Client
	bucket   string
	prefix   string // "" or "some/prefix/" with a trailing slash
	region   string
	endpoint string // for messages: the configured endpoint, or AWS's
	cfg      Config
}

// Open returns the backend for cfg.URL. The bucket must exist: Open makes
// one request (retries included, bounded to 30 s) to check that it does and
// that the credentials can list it.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := b.probe(ctx, "open"); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Create is Open, but makes the bucket first if it does not exist. A
// missing bucket that the credentials may not create is an error matching
// [ErrBucketNotExist] that says so.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	err = b.probe(ctx, "create")
	if errors.Is(err, ErrBucketNotExist) {
		err = b.createBucket(ctx)
		if err == nil {
			err = b.probe(ctx, "create")
		}
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func newBackend(ctx context.Context, cfg Config) (*Backend, error) {
	bucket, prefix, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	hc := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = connectTimeout
			d.KeepAlive = 30 * time.Second
		}).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = tlsTimeout
			t.ResponseHeaderTimeout = cfg.Timeout
			t.MaxIdleConnsPerHost = 16
			t.IdleConnTimeout = idleTimeout
		}).
		// The SDK's read timeout would also fire while a slow upload is
		// still being sent; Open bounds body reads itself.
		WithReadTimeout(0)
	opts, err := cfg.accessOptions(ctx)
	if err != nil {
		return nil, err
	}
	opts = append(opts, config.WithHTTPClient(hc), config.WithRetryer(newRetryer))
	if cfg.CABundle != "" {
		f, err := os.Open(cfg.CABundle)
		if err != nil {
			return nil, fmt.Errorf("s3: CA bundle: %w", err)
		}
		defer f.Close()
		opts = append(opts, config.WithCustomCABundle(f))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %s", oneLine(err))
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		o.UsePathStyle = *cfg.PathStyle
		if cfg.Endpoint != "" {
			// Set last: it wins over AWS_ENDPOINT_URL_S3 too.
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		// Library code never prints; the SDK would log notes on checksums.
		o.Logger = logging.Nop{}
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	endpoint := aws.ToString(client.Options().BaseEndpoint)
	if endpoint == "" {
		endpoint = "https://s3." + awsCfg.Region + ".amazonaws.com"
	}
	if prefix != "" {
		prefix += "/"
	}
	return &Backend{
		client: client,
		uploader: transfermanager.New(client, func(o *transfermanager.Options) {
			o.PartSizeBytes = cfg.PartSize
			o.MultipartUploadThreshold = cfg.PartSize
			o.Concurrency = cfg.UploadConcurrency
		}),
		bucket:   bucket,
		prefix:   prefix,
		region:   awsCfg.Region,
		endpoint: endpoint,
		cfg:      cfg,
	}, nil
}

// newRetryer retries throttling, 5xx answers, timeouts and broken
// connections up to maxAttempts times, with full-jitter exponential backoff
// from 250 ms up to maxBackoff. There is no retry quota: a backup that meets
// a bad patch keeps retrying each request rather than failing them all.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
		o.RateLimiter = ratelimit.None
		o.Backoff = retry.BackoffDelayerFunc(backoff)
		// Checked first: a certificate the endpoint fails to prove will
		// not get better on a retry.
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(certError)}, o.Retryables...)
	})
}

// certError says not to retry errors verifying the endpoint's certificate,
// and leaves all others to the standard checks.
func certError(err error) aws.Ternary {
	var verify *tls.CertificateVerificationError
	var host x509.HostnameError
	var authority x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &verify) || errors.As(err, &host) || errors.As(err, &authority) || errors.As(err, &invalid) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// backoff returns a random delay in [0, min(maxBackoff, 250ms·2^attempt)).
func backoff(attempt int, _ error) (time.Duration, error) {
	ceil := maxBackoff
	if attempt < 6 {
		ceil = min(maxBackoff, 250*time.Millisecond<<attempt)
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(ceil)))
	if err != nil {
		return 0, err
	}
	return time.Duration(n.Int64()), nil
}

// probe lists at most one object under the prefix: the least a repository
// needs, and an answer that tells a missing bucket, wrong credentials and a
// wrong region apart.
func (b *Backend) probe(ctx context.Context, op string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := b.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{
		Bucket:  aws.String(b.bucket),
		Prefix:  aws.String(b.prefix),
		MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return b.fail(op, "", err)
	}
	return nil
}

// createBucket makes the bucket in the configured region. A bucket that
// appeared meanwhile and is ours is fine.
func (b *Backend) createBucket(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	in := &awss3.CreateBucketInput{Bucket: aws.String(b.bucket)}
	if b.region != DefaultRegion {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(b.region),
		}
	}
	_, err := b.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err == nil || errors.As(err, &owned) {
		return nil
	}
	err = b.fail("create bucket", "", err)
	if errors.Is(err, ErrAccessDenied) {
		return &Error{
			Op: "create", Bucket: b.bucket,
			Msg:  fmt.Sprintf("bucket %s does not exist and these credentials may not create it", b.bucket),
			kind: ErrBucketNotExist, Err: err,
		}
	}
	return err
}

// key returns the S3 key of the object name, refusing names that are not
// clean relative slash-separated paths.
func (b *Backend) key(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		return "", fmt.Errorf("s3: invalid object name %q", name)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.Contains(seg, "\\") {
			return "", fmt.Errorf("s3: invalid object name %q", name)
		}
	}
	return b.prefix + name, nil
}

// Close implements backend.Backend. It holds nothing to release: idle
// connections close on their own after idleTimeout.
func (b *Backend) Close() error { return nil }

// String returns the repository's URL.
func (b *Backend) String() string {
	if b.prefix == "" {
		return "s3://" + b.bucket
	}
	return "s3://" + b.bucket + "/" + strings.TrimSuffix(b.prefix, "/")
}

// endpointOf returns scheme://host of a request URL, for messages.
func endpointOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

var _ backend.Backend = (*Backend)(nil)
