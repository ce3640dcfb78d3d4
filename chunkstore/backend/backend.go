// Package backend defines the storage interface that repository objects are
// kept in, and the errors every implementation translates its own errors to.
//
// A backend stores opaque, immutable objects under slash-separated names such
// as "config", "data/<hex>" or "snapshots/<hex>". It knows nothing of what the
// objects hold; the repository logic lives in package chunkstore.
package backend

import (
	"bytes"
	"context"
	"errors"
	"io"
)

// ErrNotExist is matched (errors.Is) by the error a backend returns for an
// object that does not exist.
var ErrNotExist = errors.New("object does not exist")

// Info describes a stored object.
type Info struct {
	Name string // full object name, e.g. "data/3fa1…"
	Size int64  // size in bytes
}

// Backend stores immutable named objects. All methods are safe for concurrent
// use.
type Backend interface {
	// Save stores the size bytes of r under name. Objects are written
	// once and never rewritten in place; saving the same name again with
	// the same content is harmless, so a failed Save may be retried, and
	// Save may read r more than once. A reader never sees a partly written
	// object: it sees none or all of it.
	Save(ctx context.Context, name string, r io.ReaderAt, size int64) error

	// Open returns a reader of length bytes of the object starting at
	// offset. A length <= 0 reads to the end. The caller closes the reader.
	Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)

	// Stat returns the object's size. A missing object is ErrNotExist.
	Stat(ctx context.Context, name string) (Info, error)

	// List calls fn for every object whose name starts with prefix (for
	// example "index/"), in no particular order. It stops at the first error
	// from fn and returns it.
	List(ctx context.Context, prefix string, fn func(Info) error) error

	// Remove deletes the object. Removing a missing object is ErrNotExist.
	Remove(ctx context.Context, name string) error

	// Close releases the backend's resources.
	Close() error
}

// SaveBytes stores data under name in b.
func SaveBytes(ctx context.Context, b Backend, name string, data []byte) error {
	return b.Save(ctx, name, bytes.NewReader(data), int64(len(data)))
}

// ReadAll reads the whole object name from b.
func ReadAll(ctx context.Context, b Backend, name string) ([]byte, error) {
	rd, err := b.Open(ctx, name, 0, 0)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}
