package chunkstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	"github.com/restic/chunker"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/crypto"
)

// maxObjectSize bounds what a metadata object (index, snapshot, tree blob)
// may decompress to, so a hostile repository cannot exhaust memory.
const maxObjectSize = 256 << 20

// Repository is an opened repository. Its methods are safe for concurrent
// use. Reading needs nothing more; writing needs a write session
// (BeginWrite, BeginExclusive).
type Repository struct {
	be       backend.Backend // raw behind the write gate (see Session)
	raw      backend.Backend // for the config, locks and the sealed key
	cfg      Config
	key      *crypto.IndexKey
	pol      chunker.Pol
	chunkKey []byte
	base     backend.Backend // be as given to Open, without a generation's prefix

	rcpt    atomic.Pointer[recipients] // swapped when the config's data recipients change (keys.go)
	dataIDs []age.Identity             // optional: the operator's data identities

	idx   *Index
	trees *treeCache

	heldLock atomic.Pointer[Lock] // the shared lock SaveSnapshot checks
	writers  atomic.Int32         // write sessions open (see BeginWrite)
	sealed   atomic.Bool          // keys/index-sealed checked (ensureSealedKey)

	loadedMu sync.Mutex
	loaded   map[string]bool // index objects in idx

	zenc *zstd.Encoder
	zdec *zstd.Decoder
}

// Open opens the repository in be with the index key. It authenticates the
// config but reads no index; call LoadIndex for that.
func Open(ctx context.Context, be backend.Backend, key *crypto.IndexKey) (*Repository, error) {
	cfg, err := LoadConfig(ctx, be, key)
	if err != nil {
		return nil, err
	}
	pol, _ := cfg.Polynomial() // validated by LoadConfig
	chunkKey, err := cfg.chunkIDKey(key)
	if err != nil {
		return nil, err
	}
	base := be
	be = generation(be, cfg.MetaPrefix)
	r := &Repository{raw: be, base: base, cfg: cfg, key: key, pol: pol, chunkKey: chunkKey, idx: NewIndex()}
	r.be = gate{Backend: be, r: r}
	if err := r.setRecipients(cfg); err != nil {
		return nil, err
	}
	// A 1 MiB window: blobs are chunks (512 KiB–8 MiB, 1 MiB on average), and
	// a larger window costs memory per encoder for no measurable gain.
	r.zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1<<20),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithZeroFrames(true))
	if err != nil {
		return nil, err
	}
	// Every object is authenticated by its encryption and every blob checked
	// against its ID after decoding: the frames' own checksums add nothing
	// but a pass over the plaintext.
	r.zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxMemory(maxObjectSize), zstd.IgnoreChecksum(true))
	if err != nil {
		return nil, err
	}
	r.trees = newTreeCache(r, 64<<20)
	return r, nil
}

// SetDataIdentities gives the repository the operator's data identities, so
// that it can read file contents.
func (r *Repository) SetDataIdentities(ids []age.Identity) { r.dataIDs = ids }

// HasDataIdentity reports whether SetDataIdentities gave any identity.
func (r *Repository) HasDataIdentity() bool { return len(r.dataIDs) > 0 }

// Config returns the repository config.
func (r *Repository) Config() Config { return r.cfg }

// Backend returns the storage the repository lives in. Its Save and
// Remove fail with [ErrNoSession] unless a write session is open.
func (r *Repository) Backend() backend.Backend { return r.be }

// Index returns the in-memory index (complete after LoadIndex).
func (r *Repository) Index() *Index { return r.idx }

// Polynomial returns the repository's chunker polynomial.
func (r *Repository) Polynomial() chunker.Pol { return r.pol }

// NewHasher returns a chunk ID hasher for this repository.
func (r *Repository) NewHasher() *crypto.Hasher { return crypto.NewHasher(r.chunkKey) }

// BlobID computes the keyed ID of a blob's plaintext.
func (r *Repository) BlobID(h *crypto.Hasher, data []byte) ID {
	var id ID
	h.Sum(id[:0], data)
	return id
}

// identitiesFor returns the identities that open objects of blob type t.
func (r *Repository) identitiesFor(t BlobType) []age.Identity {
	// a copy each time: age sorts the slice it is given
	if t == DataBlob {
		return slices.Clone(r.dataIDs)
	}
	return append([]age.Identity{r.key.Identity()}, r.dataIDs...)
}

// compress returns the zstd frame of raw appended to dst, or nil when
// compression does not save at least 1/32 of the size.
func (r *Repository) compress(dst, raw []byte) []byte {
	out := r.zenc.EncodeAll(raw, dst)
	if len(out)-len(dst) >= len(raw)-len(raw)/32 {
		return nil
	}
	return out
}

// decompress appends the plaintext of the zstd frame z to dst, refusing
// output longer than limit.
func (r *Repository) decompress(dst, z []byte, limit int) ([]byte, error) {
	out, err := r.zdec.DecodeAll(z, dst)
	if err != nil {
		return nil, err
	}
	if len(out)-len(dst) > limit {
		return nil, fmt.Errorf("decompressed size %d over the limit %d", len(out)-len(dst), limit)
	}
	return out, nil
}

// saveMeta stores v as a metadata object: JSON, zstd, sealed to the
// metadata recipients, named dir/<SHA-256 of the sealed bytes>.
func (r *Repository) saveMeta(ctx context.Context, dir string, v any) (ID, error) {
	sealed, err := r.sealMeta(v)
	if err != nil {
		return ID{}, err
	}
	id := Hash(sealed)
	if err := backend.SaveBytes(ctx, r.be, dir+"/"+id.String(), sealed); err != nil {
		return ID{}, err
	}
	return id, nil
}

// ErrCorrupt is matched by errors about objects whose content does not
// match their name or cannot be decoded.
var ErrCorrupt = errors.New("corrupt object")

// loadMeta reads the metadata object name, checks that it hashes to id,
// and decodes it into v.
func (r *Repository) loadMeta(ctx context.Context, name string, id ID, v any) error {
	sealed, err := backend.ReadAll(ctx, r.be, name)
	if err != nil {
		return err
	}
	if Hash(sealed) != id {
		return fmt.Errorf("%s: content does not match its name: %w", name, ErrCorrupt)
	}
	return r.openMeta(name, sealed, v)
}

// sealMeta returns v as JSON, zstd, sealed to the metadata recipients.
func (r *Repository) sealMeta(v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return crypto.Seal(nil, r.zenc.EncodeAll(body, nil), r.rcpt.Load().meta...)
}

// openMeta decrypts and decodes the sealed metadata object name into v.
func (r *Repository) openMeta(name string, sealed []byte, v any) error {
	return r.openMetaWith(name, sealed, func(body []byte) error {
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(v); err != nil {
			return err
		}
		if _, err := dec.Token(); err != io.EOF {
			return errors.New("trailing data")
		}
		return nil
	})
}

// openMetaWith decrypts and decompresses the sealed metadata object name
// and passes its plaintext to decode.
func (r *Repository) openMetaWith(name string, sealed []byte, decode func([]byte) error) error {
	z, err := crypto.Open(sealed, r.identitiesFor(TreeBlob)...)
	if err != nil {
		if errors.Is(err, crypto.ErrNoKey) {
			return fmt.Errorf("%s: %w", name, err)
		}
		return fmt.Errorf("%s: %v: %w", name, err, ErrCorrupt)
	}
	body, err := r.decompress(nil, z, maxObjectSize)
	if err != nil {
		return fmt.Errorf("%s: %v: %w", name, err, ErrCorrupt)
	}
	if err := decode(body); err != nil {
		return fmt.Errorf("%s: %v: %w", name, err, ErrCorrupt)
	}
	return nil
}

// Close releases the repository's resources (not the backend).
func (r *Repository) Close() {
	r.zenc.Close()
	r.zdec.Close()
}
