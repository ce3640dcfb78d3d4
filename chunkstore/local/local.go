// Package local implements a backend.Backend in a directory on local disk.
//
// Objects are files below the directory, named as the object. A write goes to
// a temporary file in the same directory, is fsynced and renamed into place,
// and the directory is fsynced, so an object is either absent or complete,
// even across a crash.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/syncd/syncd/chunkstore/backend"
)

// tempPrefix marks files being written; List skips them.
const tempPrefix = ".tmp-"

// Backend is a repository directory on local disk. It is safe for
// concurrent use.
type Backend struct {
	dir string
}

// Open returns a backend for the existing directory dir.
func Open(dir string) (*Backend, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open repository %s: not a directory", dir)
	}
	return &Backend{dir: dir}, nil
}

// Create makes dir (and its parents) if needed and returns a backend for it.
func Create(dir string) (*Backend, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create repository %s: %w", dir, err)
	}
	return Open(dir)
}

// filename maps an object name to its path, refusing names that would
// leave the directory.
func (b *Backend) filename(name string) (string, error) {
	if name == "" || !fs.ValidPath(name) || strings.Contains(name, "\\") {
		return "", fmt.Errorf("invalid object name %q", name)
	}
	if strings.HasPrefix(path.Base(name), tempPrefix) {
		return "", fmt.Errorf("invalid object name %q", name)
	}
	return filepath.Join(b.dir, filepath.FromSlash(name)), nil
}

// Save implements backend.Backend.
func (b *Backend) Save(ctx context.Context, name string, r io.ReaderAt, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fn, err := b.filename(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(fn)
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if errors.Is(err, fs.ErrNotExist) {
		if err = b.mkdirs(path.Dir(name)); err == nil {
			f, err = os.CreateTemp(dir, tempPrefix+"*")
		}
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if n, err := io.Copy(f, io.NewSectionReader(r, 0, size)); err != nil || n != size {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("save %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	if err := os.Chmod(tmp, 0o400); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	if err := os.Rename(tmp, fn); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	ok = true
	return syncDir(dir)
}

// ErrRootMissing is matched by the error of Save when the repository's
// directory itself is gone (a backup disk not mounted, a directory moved
// away): Save creates the subdirectories of objects, never the directory
// the repository lives in, which only Create makes.
var ErrRootMissing = errors.New("repository directory missing")

// mkdirs creates the directories of the slash-separated path rel below
// the repository's directory, one level at a time, so that a repository
// directory that vanished is an error rather than made again.
func (b *Backend) mkdirs(rel string) error {
	root := filepath.Clean(b.dir)
	missing := fmt.Errorf("%s: %w (not mounted or deleted?)", b.dir, ErrRootMissing)
	if rel == "." {
		return missing // CreateTemp found no directory to write in
	}
	p := root
	for seg := range strings.SplitSeq(rel, "/") {
		p = filepath.Join(p, seg)
		err := os.Mkdir(p, 0o700)
		switch {
		case err == nil:
			if err := syncDir(filepath.Dir(p)); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
		case errors.Is(err, fs.ErrNotExist) && filepath.Dir(p) == root:
			return missing
		default:
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Open implements backend.Backend.
func (b *Backend) Open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fn, err := b.filename(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(fn)
	if err != nil {
		return nil, translate(name, err)
	}
	if offset < 0 {
		f.Close()
		return nil, fmt.Errorf("open %s: negative offset %d", name, offset)
	}
	if length <= 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		return f, nil
	}
	return &sectionCloser{io.NewSectionReader(f, offset, length), f}, nil
}

type sectionCloser struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionCloser) Close() error { return s.f.Close() }

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, name string) (backend.Info, error) {
	fn, err := b.filename(name)
	if err != nil {
		return backend.Info{}, err
	}
	fi, err := os.Stat(fn)
	if err != nil {
		return backend.Info{}, translate(name, err)
	}
	return backend.Info{Name: name, Size: fi.Size()}, nil
}

// List implements backend.Backend.
func (b *Backend) List(ctx context.Context, prefix string, fn func(backend.Info) error) error {
	// Walk the directory part of the prefix; filter names on the rest.
	dir := path.Dir(prefix + "x")
	root := b.dir
	if dir != "." {
		root = filepath.Join(b.dir, filepath.FromSlash(dir))
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		rel, err := filepath.Rel(b.dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return fn(backend.Info{Name: name, Size: fi.Size()})
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	return nil
}

// Remove implements backend.Backend.
func (b *Backend) Remove(ctx context.Context, name string) error {
	fn, err := b.filename(name)
	if err != nil {
		return err
	}
	if err := os.Remove(fn); err != nil {
		return translate(name, err)
	}
	return nil
}

// Close implements backend.Backend.
func (b *Backend) Close() error { return nil }

func translate(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", name, errors.Join(backend.ErrNotExist, err))
	}
	return fmt.Errorf("%s: %w", name, err)
}
