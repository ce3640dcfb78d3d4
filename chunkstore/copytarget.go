package chunkstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/crypto"
)

// A copy target is a repository that receives copies of another's
// snapshots (syncd copy). Objects travel unchanged, so the two must agree
// on everything that names or seals them: the chunker (so that the same
// content makes the same blobs), the chunk-ID key (the same blobs have
// the same IDs), the index key and the data recipients (every object
// opens with the same keys). Each keeps its own repository ID, locks and
// retention.

// InitCopy writes the config and keys of a new repository in be that can
// receive copies of the snapshots of the repository whose config is src:
// src's chunker parameters, index recipient and data recipients, and
// src's chunk-ID key (Config.ChunkIDRepo), under an ID of its own. key
// must be src's index key. It fails with ErrAlreadyInitialized when be
// holds a repository.
func InitCopy(ctx context.Context, be backend.Backend, key *crypto.IndexKey, src Config, now time.Time) (Config, error) {
	if key.Recipient().String() != src.IndexRecipient {
		return Config{}, fmt.Errorf("init: the index key is not the source repository's: %w", ErrWrongIndexKey)
	}
	if _, err := be.Stat(ctx, configName); err == nil {
		return Config{}, ErrAlreadyInitialized
	}
	if now.IsZero() {
		now = time.Now()
	}
	cfg := Config{
		Version:           FormatVersion,
		ID:                RandomID().String(),
		Created:           now.UTC().Truncate(time.Second),
		ChunkerPolynomial: src.ChunkerPolynomial,
		MinChunk:          src.MinChunk,
		MaxChunk:          src.MaxChunk,
		PackSize:          src.PackSize,
		IndexRecipient:    src.IndexRecipient,
		DataRecipients:    slices.Clone(src.DataRecipients),
		ChunkIDRepo:       src.ChunkIDSource(),
	}
	return initConfig(ctx, be, key, cfg)
}

// CheckCopyTarget reports whether the repository whose config is dst can
// receive copies of src's snapshots unchanged, and if not, says in one
// line what differs. It does no I/O.
func CheckCopyTarget(src, dst Config) error {
	switch {
	case src.ID == dst.ID:
		return fmt.Errorf("the copy target is the source repository itself (id %s)", prefix(src.ID, 16))
	case src.ChunkerPolynomial != dst.ChunkerPolynomial || src.MinChunk != dst.MinChunk || src.MaxChunk != dst.MaxChunk:
		return fmt.Errorf("the copy target chunks differently (polynomial %s, chunk sizes %d..%d; the source: %s, %d..%d): "+
			"make the target with syncd init --copy-from",
			short(dst.ChunkerPolynomial), dst.MinChunk, dst.MaxChunk, short(src.ChunkerPolynomial), src.MinChunk, src.MaxChunk)
	case src.IndexRecipient != dst.IndexRecipient:
		return fmt.Errorf("the copy target has another index key (%s…; the source: %s…)",
			prefix(dst.IndexRecipient, 16), prefix(src.IndexRecipient, 16))
	case src.ChunkIDSource() != dst.ChunkIDSource():
		return fmt.Errorf("the copy target derives its chunk IDs from repository %s…, the source from %s…: make the target with syncd init --copy-from",
			prefix(dst.ChunkIDSource(), 16), prefix(src.ChunkIDSource(), 16))
	}
	a, b := slices.Clone(src.DataRecipients), slices.Clone(dst.DataRecipients)
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(slices.Compact(a), slices.Compact(b)) {
		return fmt.Errorf("the copy target's data recipients (%d) are not the source's (%d): content packs travel sealed as they are, so both need the same",
			len(dst.DataRecipients), len(src.DataRecipients))
	}
	return nil
}

// OpenCopyTarget opens the repository in be with r's index key, as a
// target for copies of r's snapshots: it fails when be holds no
// repository, one of another index key, or one that is not a copy target
// of r (CheckCopyTarget). It writes nothing.
func (r *Repository) OpenCopyTarget(ctx context.Context, be backend.Backend) (*Repository, error) {
	dst, err := Open(ctx, be, r.key)
	if err != nil {
		return nil, err
	}
	if err := CheckCopyTarget(r.cfg, dst.cfg); err != nil {
		dst.Close()
		return nil, err
	}
	return dst, nil
}

// Reopen opens the repository again as a second Repository over the same
// storage and keys, with an index, caches and locks of its own: for a
// long-running reader or copier beside the writer that opened r (the
// daemon copies snapshots while it writes the next ones).
func (r *Repository) Reopen(ctx context.Context) (*Repository, error) {
	o, err := Open(ctx, r.raw, r.key)
	if err != nil {
		return nil, err
	}
	o.dataIDs = r.dataIDs
	return o, nil
}
