package s3

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/syncd/syncd/chunkstore/backend"
)

// Save implements backend.Backend. An object up to PartSize goes in one
// PutObject; a larger one in a multipart upload of PartSize parts,
// UploadConcurrency at a time, which S3 makes visible only once complete
// (and which is aborted on failure). Either way a reader sees all of the
// object or none of it. Each request is retried as configured, and asks
// for Config.Upload's storage class, encryption and retention.
func (b *Backend) Save(ctx context.Context, name string, r io.ReaderAt, size int64) error {
	key, err := b.key(name)
	if err != nil {
		return err
	}
	if size <= b.cfg.PartSize {
		in := &awss3.PutObjectInput{
			Bucket:        aws.String(b.bucket),
			Key:           aws.String(key),
			Body:          io.NewSectionReader(r, 0, size),
			ContentLength: aws.Int64(size),
		}
		b.cfg.Upload.applyPut(in, name)
		_, err = b.client.PutObject(ctx, in)
	} else {
		in := &transfermanager.UploadObjectInput{
			Bucket: aws.String(b.bucket),
			Key:    aws.String(key),
			Body:   io.NewSectionReader(r, 0, size),
		}
		b.cfg.Upload.applyUpload(in, name)
		_, err = b.uploader.UploadObject(ctx, in)
	}
	if err != nil {
		return b.fail("save", name, err)
	}
	return nil
}

// Open implements backend.Backend with a GET of the range asked for. A read
// of the body that gets no data for Timeout fails rather than waits.
func (b *Backend) Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	key, err := b.key(name)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("s3: open %s: negative offset %d", name, offset)
	}
	in := &awss3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	// The request lives as long as its body is read: cancel ends it on
	// Close or when the body stalls.
	ctx, cancel := context.WithCancelCause(ctx)
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		cancel(nil)
		return nil, b.fail("open", name, err)
	}
	return newStallReader(out.Body, b.cfg.Timeout, cancel, name), nil
}

// stallReader is a response body whose request is canceled when a Read
// gets no data for timeout, so a server that stops sending mid-object
// cannot hang the reader.
type stallReader struct {
	body    io.ReadCloser
	cancel  context.CancelCauseFunc
	timeout time.Duration
	name    string

	mu      sync.Mutex
	timer   *time.Timer
	stalled bool
}

func newStallReader(body io.ReadCloser, timeout time.Duration, cancel context.CancelCauseFunc, name string) *stallReader {
	r := &stallReader{body: body, cancel: cancel, timeout: timeout, name: name}
	r.timer = time.AfterFunc(timeout, r.stall)
	r.timer.Stop()
	return r
}

func (r *stallReader) stall() {
	r.mu.Lock()
	r.stalled = true
	r.mu.Unlock()
	r.cancel(fmt.Errorf("no data for %v", r.timeout))
}

// Read implements io.Reader.
func (r *stallReader) Read(p []byte) (int, error) {
	r.timer.Reset(r.timeout)
	n, err := r.body.Read(p)
	r.timer.Stop()
	if err != nil && err != io.EOF {
		r.mu.Lock()
		stalled := r.stalled
		r.mu.Unlock()
		if stalled {
			return n, fmt.Errorf("s3: read %s: no data from the endpoint for %v: %w", r.name, r.timeout, err)
		}
		return n, fmt.Errorf("s3: read %s: %w", r.name, err)
	}
	return n, err
}

// Close implements io.Closer.
func (r *stallReader) Close() error {
	r.timer.Stop()
	err := r.body.Close()
	r.cancel(nil)
	return err
}

// Stat implements backend.Backend with a HEAD request.
func (b *Backend) Stat(ctx context.Context, name string) (backend.Info, error) {
	key, err := b.key(name)
	if err != nil {
		return backend.Info{}, err
	}
	out, err := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)})
	if err != nil {
		return backend.Info{}, b.fail("stat", name, err)
	}
	return backend.Info{Name: name, Size: aws.ToInt64(out.ContentLength)}, nil
}

// List implements backend.Backend with ListObjectsV2, a page (up to 1,000
// objects) at a time.
func (b *Backend) List(ctx context.Context, prefix string, fn func(backend.Info) error) error {
	p := awss3.NewListObjectsV2Paginator(b.client, &awss3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket),
		Prefix: aws.String(b.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return b.fail("list", prefix, err)
		}
		for _, obj := range page.Contents {
			name, ok := strings.CutPrefix(aws.ToString(obj.Key), b.prefix)
			if !ok || name == "" || strings.HasSuffix(name, "/") {
				continue // not ours, or a "directory" marker some tools make
			}
			if err := fn(backend.Info{Name: name, Size: aws.ToInt64(obj.Size)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Remove implements backend.Backend. S3 deletes a missing key without
// complaint (and, in a versioned bucket, adds a delete marker for it), so
// Remove checks with a HEAD first and reports a missing object as
// backend.ErrNotExist.
func (b *Backend) Remove(ctx context.Context, name string) error {
	key, err := b.key(name)
	if err != nil {
		return err
	}
	in := &awss3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)}
	if _, err := b.client.HeadObject(ctx, in); err != nil {
		return b.fail("remove", name, err)
	}
	if _, err := b.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)}); err != nil {
		return b.fail("remove", name, err)
	}
	return nil
}
