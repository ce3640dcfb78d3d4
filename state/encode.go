package state

import (
	"encoding/binary"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/binread"
)

// The chunk list and the version vector are encoded alike in the local
// index and on the wire (transfer/wire); these are the one copy.

// AppendChunks appends uvarint n, the n chunk IDs (32 bytes each) and the
// n lengths (uvarints).
func AppendChunks(dst []byte, content []chunkstore.ID, lengths []uint32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(content)))
	for _, id := range content {
		dst = append(dst, id[:]...)
	}
	for _, n := range lengths {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	return dst
}

// ReadChunks reads what AppendChunks wrote, each length at most maxLen.
// The count is bounded by the input (a chunk takes at least 33 bytes)
// before anything is allocated.
func ReadChunks(d *binread.Reader, maxLen uint64) ([]chunkstore.ID, []uint32) {
	n := d.Uvarint(uint64(len(d.B)) / 33)
	if d.Err != nil || n == 0 {
		return nil, nil
	}
	content := make([]chunkstore.ID, n)
	for i := range content {
		copy(content[i][:], d.Bytes(32))
	}
	lengths := make([]uint32, n)
	for i := range lengths {
		lengths[i] = uint32(d.Uvarint(maxLen))
	}
	return content, lengths
}

// Append appends uvarint m and the m pairs of uvarint node, value.
func (v Vector) Append(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	for _, c := range v {
		dst = binary.AppendUvarint(dst, c.Node)
		dst = binary.AppendUvarint(dst, c.Value)
	}
	return dst
}

// ReadVector reads what Vector.Append wrote, at most max counters (and no
// more than the input can hold). It does not check Valid.
func ReadVector(d *binread.Reader, max uint64) Vector {
	m := d.Uvarint(min(max, uint64(len(d.B))/2))
	if d.Err != nil || m == 0 {
		return nil
	}
	v := make(Vector, m)
	for i := range v {
		v[i] = Counter{Node: d.Uvarint(1<<64 - 1), Value: d.Uvarint(1<<64 - 1)}
	}
	return v
}
