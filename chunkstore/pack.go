package chunkstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/freelist"
)

// A pack's plaintext is its blobs back to back, then a JSON header listing
// them ({"blobs":[IndexBlob…]}), then the header's length as a 4-byte
// little-endian integer. The whole is one age file.

// packHeader is the JSON header at the end of a pack.
type packHeader struct {
	Blobs []IndexBlob `json:"blobs"`
}

// packWriter builds one pack, encrypting into a temporary file as blobs
// are added.
type packWriter struct {
	typ      BlobType
	file     *packFile
	enc      *crypto.Encrypter
	blobs    []IndexBlob
	sealedTo []string // fingerprints of the recipients enc seals to, for the index
}

// newPackWriter starts a pack of type t in a temporary file in dir.
func (r *Repository) newPackWriter(t BlobType, dir string) (*packWriter, error) {
	cur := r.rcpt.Load()
	rcpt, fp := cur.meta, cur.metaFP
	if t == DataBlob {
		rcpt, fp = cur.data, cur.dataFP
	}
	file, err := newPackFile(dir)
	if err != nil {
		return nil, err
	}
	enc, err := crypto.NewEncrypter(file, rcpt...)
	if err != nil {
		file.close()
		return nil, err
	}
	return &packWriter{typ: t, file: file, enc: enc, sealedTo: fp}, nil
}

// add appends a blob: stored is what goes into the pack (compressed or
// raw), raw is the plaintext length.
func (p *packWriter) add(id ID, stored []byte, raw int, zstd bool) error {
	b := IndexBlob{ID: id, Offset: uint32(p.enc.Len()), Length: uint32(len(stored)), Raw: uint32(raw)}
	if zstd {
		b.Compression = "zstd"
	}
	if _, err := p.enc.Write(stored); err != nil {
		return err
	}
	p.blobs = append(p.blobs, b)
	return nil
}

// size is the plaintext size so far.
func (p *packWriter) size() int64 { return p.enc.Len() }

// finish writes the header and completes the encrypted pack, returning
// its object ID (the SHA-256 of the encrypted bytes).
func (p *packWriter) finish() (ID, error) {
	hdr, err := json.Marshal(packHeader{Blobs: p.blobs})
	if err != nil {
		return ID{}, err
	}
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(hdr)))
	if _, err := p.enc.Write(hdr); err != nil {
		return ID{}, err
	}
	if err := p.enc.Finish(); err != nil {
		return ID{}, err
	}
	return p.file.done()
}

// Pack gives random access to the plaintext of a stored pack. It is safe
// for concurrent use.
type Pack struct {
	r    *Repository
	name string
	pt   io.ReaderAt
	size int64 // plaintext size
}

// OpenPack opens pack id of type t, whose encrypted size is size. When
// whole is set the pack is read in one request (for reading most of it);
// otherwise only the parts that reads touch are fetched.
func (r *Repository) OpenPack(ctx context.Context, t BlobType, id ID, size int64, whole bool) (*Pack, error) {
	name := ObjectName(t, id)
	ids := r.identitiesFor(t)
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: reading file contents needs the data identity (--identity): %w", name, crypto.ErrNoKey)
	}
	var src io.ReaderAt
	if whole {
		data, err := r.readWhole(ctx, name, id, size, nil, true)
		if err != nil {
			return nil, err
		}
		src = bytesReaderAt(data)
	} else {
		src = &rangeReader{ctx: ctx, be: r.be, name: name, size: size}
	}
	return r.openPack(name, t, src, size)
}

// ReadPack reads the whole pack id of type t (encrypted size size) into
// buf, grown as needed, and opens it. It returns the buffer, to be passed
// again once the Pack is no longer used. Unlike OpenPack it does not hash
// the whole pack against its name: its callers read blobs, each of which
// is authenticated by the encryption and checked against its own ID, so
// the pack's hash would only cost a second pass over every byte (a tenth
// of a restore's CPU time).
func (r *Repository) ReadPack(ctx context.Context, t BlobType, id ID, size int64, buf []byte) (*Pack, []byte, error) {
	name := ObjectName(t, id)
	if len(r.identitiesFor(t)) == 0 {
		return nil, buf, fmt.Errorf("%s: reading file contents needs the data identity (--identity): %w", name, crypto.ErrNoKey)
	}
	data, err := r.readWhole(ctx, name, id, size, buf, false)
	if err != nil {
		return nil, buf, err
	}
	p, err := r.openPack(name, t, bytesReaderAt(data), size)
	return p, data, err
}

// readWhole reads object name, of the given size and ID, into buf; with
// verify it checks the content against the name.
func (r *Repository) readWhole(ctx context.Context, name string, id ID, size int64, buf []byte, verify bool) ([]byte, error) {
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	rd, err := r.be.Open(ctx, name, 0, 0)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	n, err := io.ReadFull(rd, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return nil, fmt.Errorf("%s: size %d, the index says %d: %w", name, n, size, ErrCorrupt)
	}
	if err != nil {
		return nil, err
	}
	if m, _ := rd.Read(make([]byte, 1)); m > 0 {
		return nil, fmt.Errorf("%s: larger than the %d bytes the index says: %w", name, size, ErrCorrupt)
	}
	if verify && Hash(buf) != id {
		return nil, fmt.Errorf("%s: content does not match its name: %w", name, ErrCorrupt)
	}
	return buf, nil
}

func (r *Repository) openPack(name string, t BlobType, src io.ReaderAt, size int64) (*Pack, error) {
	ids := r.identitiesFor(t)
	pt, n, err := crypto.OpenReaderAt(src, size, ids...)
	if err != nil {
		if errors.Is(err, crypto.ErrNoKey) {
			if t == DataBlob {
				return nil, fmt.Errorf("%s: the data identity does not open this pack: %w", name, err)
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if errors.Is(err, backend.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %v: %w", name, err, ErrCorrupt)
	}
	return &Pack{r: r, name: name, pt: pt, size: n}, nil
}

// Name returns the pack's object name.
func (p *Pack) Name() string { return p.name }

// Header reads the blob list stored at the end of the pack.
func (p *Pack) Header() ([]IndexBlob, error) {
	if p.size < 4 {
		return nil, fmt.Errorf("%s: too short for a header: %w", p.name, ErrCorrupt)
	}
	var n [4]byte
	if err := readAt(p.pt, n[:], p.size-4); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", p.name, err, ErrCorrupt)
	}
	hl := int64(binary.LittleEndian.Uint32(n[:]))
	if hl > p.size-4 || hl > maxObjectSize {
		return nil, fmt.Errorf("%s: header length %d out of range: %w", p.name, hl, ErrCorrupt)
	}
	buf := make([]byte, hl)
	if err := readAt(p.pt, buf, p.size-4-hl); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", p.name, err, ErrCorrupt)
	}
	var h packHeader
	if err := json.Unmarshal(buf, &h); err != nil {
		return nil, fmt.Errorf("%s: header: %v: %w", p.name, err, ErrCorrupt)
	}
	if err := validateBlobs(h.Blobs, p.size-4-hl); err != nil {
		return nil, fmt.Errorf("%s: header: %v: %w", p.name, err, ErrCorrupt)
	}
	return h.Blobs, nil
}

// ReadBlob returns the plaintext of the blob at loc, appended to dst, and
// checks that it hashes to id (h computes the keyed ID; nil skips the check).
func (p *Pack) ReadBlob(dst []byte, id ID, loc Location, h *crypto.Hasher) ([]byte, error) {
	if int64(loc.Offset)+int64(loc.Length) > p.size || loc.Raw > maxBlobSize {
		return nil, fmt.Errorf("%s: blob %s: location out of range: %w", p.name, id.Short(), ErrCorrupt)
	}
	sb := scratch.Get()
	if cap(sb) < int(loc.Length) {
		sb = make([]byte, loc.Length)
	}
	defer func() { scratch.Put(sb) }()
	stored := sb[:loc.Length]
	if err := readAt(p.pt, stored, int64(loc.Offset)); err != nil {
		if errors.Is(err, backend.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: blob %s: %v: %w", p.name, id.Short(), err, ErrCorrupt)
	}
	out := stored
	if loc.Zstd {
		var err error
		out, err = p.r.decompress(dst, stored, int(loc.Raw))
		if err != nil {
			return nil, fmt.Errorf("%s: blob %s: %v: %w", p.name, id.Short(), err, ErrCorrupt)
		}
	} else {
		out = append(dst, stored...)
	}
	plain := out[len(dst):]
	if len(plain) != int(loc.Raw) {
		return nil, fmt.Errorf("%s: blob %s: length %d, want %d: %w", p.name, id.Short(), len(plain), loc.Raw, ErrCorrupt)
	}
	if h != nil && p.r.BlobID(h, plain) != id {
		return nil, fmt.Errorf("%s: blob %s: content does not match its ID: %w", p.name, id.Short(), ErrCorrupt)
	}
	return out, nil
}

// readAt fills b from r at off; io.EOF with a full read is success.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// scratch holds buffers for the stored (compressed) form of blobs being
// read.
var scratch = freelist.New(8, 0)

// bytesReaderAt serves ReadAt from memory.
type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// rangeReader is an io.ReaderAt over ranged reads of a backend object. It
// fetches at least rangeWindow bytes per request and keeps the last window,
// because age reads its 64 KiB chunks one at a time.
type rangeReader struct {
	ctx  context.Context
	be   backend.Backend
	name string
	size int64

	mu  sync.Mutex
	off int64
	buf []byte
}

const rangeWindow = 1 << 20

func (rr *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= rr.size {
		return 0, io.EOF
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if off < rr.off || off+int64(len(p)) > rr.off+int64(len(rr.buf)) {
		n := max(int64(len(p)), rangeWindow)
		n = min(n, rr.size-off)
		rd, err := rr.be.Open(rr.ctx, rr.name, off, n)
		if err != nil {
			return 0, err
		}
		buf := make([]byte, n)
		_, err = io.ReadFull(rd, buf)
		rd.Close()
		if err != nil {
			return 0, fmt.Errorf("read %s at %d: %w", rr.name, off, err)
		}
		rr.off, rr.buf = off, buf
	}
	n := copy(p, rr.buf[off-rr.off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// CheckDataIdentity tells whether the data identities open the repository's
// content packs, by decrypting the headers of up to eight of them: it
// fails only when one of them is not for these identities and none is, so
// that a pack a hostile writer sealed to other keys does not stop a
// restore. Packs that cannot be read are passed over (verify reports
// them); a repository without a readable content pack passes.
func (r *Repository) CheckDataIdentity(ctx context.Context) error {
	if len(r.dataIDs) == 0 {
		return fmt.Errorf("reading file contents needs the data identity (--identity): %w", crypto.ErrNoKey)
	}
	packs := map[ID]int64{}
	r.idx.Each(func(_ ID, l Location) {
		if l.Type == DataBlob && len(packs) < 8 {
			packs[l.Pack] = l.PackSize
		}
	})
	var noKey error
	for id, size := range packs {
		prefix, err := r.readPrefix(ctx, ObjectName(DataBlob, id), min(size, 8192))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if err := crypto.CheckHeader(prefix, r.dataIDs...); err != nil {
			if errors.Is(err, crypto.ErrNoKey) && noKey == nil {
				noKey = fmt.Errorf("the data identity does not open this repository's content packs: %w", err)
			}
			continue
		}
		return nil
	}
	return noKey
}

// CheckPackKey tells whether the identities the repository holds for packs
// of type t (the data identities for content packs; the index key and them
// for tree packs) open pack id, of stored size size, by decrypting its age
// header: it reads at most the first 64 KiB of the pack. An error matching
// crypto.ErrNoKey says they do not; another error, that the pack could not
// be read or has no valid header.
func (r *Repository) CheckPackKey(ctx context.Context, t BlobType, id ID, size int64) error {
	name := ObjectName(t, id)
	ids := r.identitiesFor(t)
	if len(ids) == 0 {
		return fmt.Errorf("%s: reading file contents needs the data identity (--identity): %w", name, crypto.ErrNoKey)
	}
	prefix, err := r.readPrefix(ctx, name, min(size, 64<<10))
	if err != nil {
		return err
	}
	if err := crypto.CheckHeader(prefix, ids...); err != nil {
		if errors.Is(err, crypto.ErrNoKey) {
			return fmt.Errorf("%s: %w", name, err)
		}
		return fmt.Errorf("%s: %v: %w", name, err, ErrCorrupt)
	}
	return nil
}

func (r *Repository) readPrefix(ctx context.Context, name string, n int64) ([]byte, error) {
	rd, err := r.be.Open(ctx, name, 0, n)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}
