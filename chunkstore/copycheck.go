package chunkstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/syncd/syncd/crypto"
)

// CheckCopies tells which of blobs, listed by the index in pack id of type
// t (encrypted size size), are not the blob they claim to be: prune calls
// it before it lets one copy of a blob stand for another. It reads the
// pack whole and checks it against its name, so that what it judges is
// what the store holds, not a read cut short; a pack that does not match
// its name twice, or does not decrypt, has every blob bad. A blob is bad
// when it is out of the pack's range, does not decompress to its length,
// or does not hash to its ID.
//
// The error is for a pack that could not be judged: the backend failed,
// or the keys do not open the pack (an error matching crypto.ErrNoKey:
// content packs need the data identity). A caller must then take every
// blob as possibly good. CheckCopies is safe for concurrent use.
func (r *Repository) CheckCopies(ctx context.Context, t BlobType, id ID, size int64, blobs []IndexBlob) (bad []ID, err error) {
	name := ObjectName(t, id)
	if len(r.identitiesFor(t)) == 0 {
		return nil, fmt.Errorf("%s: reading file contents needs the data identity (--identity): %w", name, crypto.ErrNoKey)
	}
	all := func() []ID {
		out := make([]ID, len(blobs))
		for i, b := range blobs {
			out[i] = b.ID
		}
		return out
	}
	data, err := r.readWhole(ctx, name, id, size, nil, true)
	if errors.Is(err, ErrCorrupt) { // once more: a read cut short is not proof
		data, err = r.readWhole(ctx, name, id, size, nil, true)
		if errors.Is(err, ErrCorrupt) {
			return all(), nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("check copies in %s: %w", name, err)
	}
	p, err := r.openPack(name, t, bytesReaderAt(data), size)
	switch {
	case errors.Is(err, ErrCorrupt):
		return all(), nil
	case err != nil:
		return nil, fmt.Errorf("check copies in %s: %w", name, err)
	}
	h := r.NewHasher()
	var buf []byte
	for _, b := range blobs {
		loc := Location{Pack: id, PackSize: size, Type: t, Offset: b.Offset, Length: b.Length, Raw: b.Raw,
			Zstd: b.Compression == "zstd"}
		if buf, err = p.ReadBlob(buf[:0], b.ID, loc, h); err != nil {
			bad = append(bad, b.ID)
		}
	}
	return bad, nil
}
