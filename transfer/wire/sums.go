package wire

import (
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
)

// FeatureSums says that a node answers a framed block request with
// sums=1 (see PROTOCOL.md "Segment sums"): for each block, instead of its
// bytes, the SumSize-byte sums of its segments, so that a receiver that
// holds an older version of the file asks only for the segments that
// differ.
const FeatureSums = "sums"

// SumSegment is the length of a segment: segments are cut at multiples of
// it in the file, not in the block, so that both nodes cut an old and a
// new block over the same range alike.
const SumSegment = 16 << 10

// SumSize is the length of one segment's sum: the first bytes of its keyed
// BLAKE3 hash (the chunk-ID hash). A false match costs the receiver a
// block that fails its ID and is asked for whole; it cannot slip through.
const SumSize = 8

// Segments returns how many segments the block of length bytes at off
// spans.
func Segments(off int64, length uint32) int {
	if length == 0 {
		return 0
	}
	end := off + int64(length)
	return int((end-1)/SumSegment - off/SumSegment + 1)
}

// Segment returns the k-th segment of the block of length bytes at off,
// as an offset in the file and a length.
func Segment(off int64, length uint32, k int) (int64, uint32) {
	start := max(off, (off/SumSegment+int64(k))*SumSegment)
	end := min(off+int64(length), (off/SumSegment+int64(k)+1)*SumSegment)
	return start, uint32(end - start)
}

// SegmentSums appends to dst the sums of the segments of data, the block at
// off, as ch hashes them with h: what a node serves for the block, and
// what a receiver compares them with.
func SegmentSums(ch chunkstore.Chunking, h *crypto.Hasher, off int64, data []byte, dst []byte) []byte {
	for k := range Segments(off, uint32(len(data))) {
		so, sl := Segment(off, uint32(len(data)), k)
		id := ch.ID(h, data[so-off:so-off+int64(sl)])
		dst = append(dst, id[:SumSize]...)
	}
	return dst
}
