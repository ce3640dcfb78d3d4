package chunkstore

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
)

// packFile holds an encrypted pack on its way to the backend: an unlinked
// temporary file, so that packs in flight cost disk (page cache), not
// process memory, and vanish if the process dies. The SHA-256 that names
// the object is computed as it is written.
type packFile struct {
	f    *os.File
	bw   *bufio.Writer
	sum  hash.Hash
	size int64
}

func newPackFile(dir string) (*packFile, error) {
	f, err := os.CreateTemp(dir, "syncd-pack-*")
	if err != nil {
		return nil, fmt.Errorf("pack temp file: %w", err)
	}
	os.Remove(f.Name()) // unlinked: the open descriptor keeps it
	return &packFile{f: f, bw: bufio.NewWriterSize(f, 256<<10), sum: sha256.New()}, nil
}

// Write implements io.Writer.
func (p *packFile) Write(b []byte) (int, error) {
	n, err := p.bw.Write(b)
	p.sum.Write(b[:n])
	p.size += int64(n)
	return n, err
}

// done flushes the file and returns the object ID (SHA-256).
func (p *packFile) done() (ID, error) {
	if err := p.bw.Flush(); err != nil {
		return ID{}, fmt.Errorf("pack temp file: %w", err)
	}
	var id ID
	p.sum.Sum(id[:0])
	return id, nil
}

// ReadAt implements io.ReaderAt.
func (p *packFile) ReadAt(b []byte, off int64) (int, error) { return p.f.ReadAt(b, off) }

func (p *packFile) close() { p.f.Close() }

var _ io.ReaderAt = (*packFile)(nil)
