package wire

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/binread"
)

// Protocol is the version of the peer protocol this package speaks.
const Protocol = 1

// Magic strings that start the messages, so that a peer that speaks
// something else is told apart from a damaged message.
const (
	indexMagic  = "SYNCDIX1"
	blocksMagic = "SYNCDBQ1"
)

// Hello is what a node tells a peer about itself (GET /v1/hello), JSON.
type Hello struct {
	Protocol int           `json:"protocol"`
	Node     string        `json:"node"` // the node's name
	Folders  []HelloFolder `json:"folders"`
	// Features lists what the node serves beyond protocol 1 (FeatureFrames);
	// a node that does not know a feature ignores it.
	Features []string `json:"features,omitempty"`
}

// FeatureFrames says that a node answers block requests with
// compress=raw or compress=zstd with a framed response (see FrameWriter).
const FeatureFrames = "frames"

// FeatureBlocksHTTP1 says that a node also serves the protocol over
// HTTP/1.1 (TLS ALPN "http/1.1") and answers GET /v1/ping: a puller may
// then ask for blocks over HTTP/1.1 connections of their own, which
// carry a block response with fewer copies than an HTTP/2 stream, and
// proves the link alive by pinging over its HTTP/2 connection while it
// waits (PROTOCOL.md, "Block responses over HTTP/1.1").
const FeatureBlocksHTTP1 = "blocks-http1"

// HelloFolder is a folder a node shares with the asking peer.
type HelloFolder struct {
	ID       string `json:"id"`
	Mode     string `json:"mode"`
	Seq      uint64 `json:"seq"`      // the node's highest sequence number in it
	Chunking string `json:"chunking"` // chunkstore.Chunking.Fingerprint
	// Index identifies the node's index: made anew when its state database
	// is, so that a peer knows the sequence numbers started over.
	Index string `json:"index"`
}

// MaxHello bounds the size of a Hello message.
const MaxHello = 1 << 20

// DecodeHello decodes a Hello, refusing one of more than MaxHello bytes.
func DecodeHello(r io.Reader) (Hello, error) {
	var h Hello
	b, err := io.ReadAll(io.LimitReader(r, MaxHello+1))
	if err != nil {
		return h, err
	}
	if len(b) > MaxHello {
		return h, errors.New("hello: too large")
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("hello: %w", err)
	}
	return h, nil
}

// zstd streams: one encoder setting for every message, and a decoder
// whose memory is bounded whatever the peer claims.
func newEncoder(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(1<<20))
}

func newDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20),
		zstd.WithDecoderMaxMemory(64<<20), zstd.WithDecoderLowmem(true))
}

// indexDecoders and indexEncoders keep the coders of index responses
// read and sent before: a new one allocated its history for each
// response (44 MB of decoders and 67 MB of encoders in the bench's
// initial mirror).
var indexDecoders, indexEncoders sync.Pool

// indexDecoder returns a decoder of r, kept from an earlier response if
// there is one.
func indexDecoder(r io.Reader) (*zstd.Decoder, error) {
	if z, ok := indexDecoders.Get().(*zstd.Decoder); ok {
		if err := z.Reset(r); err == nil {
			return z, nil
		}
		z.Close()
	}
	return newDecoder(r)
}

// keepDecoder keeps z, done with its stream, for the next response.
func keepDecoder(z *zstd.Decoder) {
	if z.Reset(nil) != nil {
		z.Close()
		return
	}
	indexDecoders.Put(z)
}

// IndexWriter writes an index response: zstd of the magic, then for each
// entry its length (uvarint, ≥ 1) and encoding, then a 0 length, the
// sender's sequence number as of the read (uvarint) and whether more
// entries follow (one byte).
type IndexWriter struct {
	z   *zstd.Encoder
	buf []byte
}

// NewIndexWriter starts an index response on w.
func NewIndexWriter(w io.Writer) (*IndexWriter, error) {
	z, ok := indexEncoders.Get().(*zstd.Encoder)
	if ok {
		z.Reset(w)
	} else {
		var err error
		if z, err = newEncoder(w); err != nil {
			return nil, err
		}
	}
	if _, err := z.Write([]byte(indexMagic)); err != nil {
		return nil, err
	}
	return &IndexWriter{z: z}, nil
}

// Write writes one entry.
func (iw *IndexWriter) Write(e *Entry) error {
	iw.buf = AppendEntry(iw.buf[:0], e)
	var n [binary.MaxVarintLen64]byte
	if _, err := iw.z.Write(binary.AppendUvarint(n[:0], uint64(len(iw.buf)))); err != nil {
		return err
	}
	_, err := iw.z.Write(iw.buf)
	return err
}

// Close writes the trailer and ends the stream; it does not close the
// underlying writer. The writer is not used after.
func (iw *IndexWriter) Close(seq uint64, more bool) error {
	t := binary.AppendUvarint([]byte{0}, seq)
	if more {
		t = append(t, 1)
	} else {
		t = append(t, 0)
	}
	if _, err := iw.z.Write(t); err != nil {
		return err
	}
	err := iw.z.Close()
	if err == nil {
		iw.z.Reset(nil) // let go of the response
		indexEncoders.Put(iw.z)
	}
	iw.z = nil
	return err
}

// IndexBatch is a decoded index response.
type IndexBatch struct {
	Entries []Entry // in the sender's sequence order
	Seq     uint64  // the sender's sequence number as of the read
	More    bool    // the sender has more entries after these
}

// ReadIndex reads and checks a whole index response. A response cut short
// is an error: the batch is taken whole or not at all.
func ReadIndex(r io.Reader) (IndexBatch, error) {
	var b IndexBatch
	z, err := indexDecoder(r)
	if err != nil {
		return b, err
	}
	defer keepDecoder(z)
	br := bufio.NewReader(z)
	magic := make([]byte, len(indexMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != indexMagic {
		return b, fmt.Errorf("index: not an index response: %w", orBad(err))
	}
	var rec []byte
	last := uint64(0)
	for {
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return b, fmt.Errorf("index: %w", unexpected(err))
		}
		if n == 0 {
			break
		}
		if n > MaxRecord {
			return b, fmt.Errorf("index: record of %d bytes", n)
		}
		if len(b.Entries) == MaxBatch {
			return b, fmt.Errorf("index: more than %d entries", MaxBatch)
		}
		rec, err = readN(br, rec, int(n))
		if err != nil {
			return b, fmt.Errorf("index: %w", err)
		}
		e, err := DecodeEntry(rec)
		if err != nil {
			return b, fmt.Errorf("index: %w", err)
		}
		if e.Seq <= last {
			return b, fmt.Errorf("index: entry %q out of sequence order", e.Path)
		}
		last = e.Seq
		b.Entries = append(b.Entries, e)
	}
	if b.Seq, err = binary.ReadUvarint(br); err != nil {
		return b, fmt.Errorf("index: trailer: %w", unexpected(err))
	}
	more, err := br.ReadByte()
	if err != nil || more > 1 {
		return b, fmt.Errorf("index: trailer: %w", orBad(unexpected(err)))
	}
	b.More = more == 1
	if _, err := br.ReadByte(); err != io.EOF {
		return b, errors.New("index: data after the trailer")
	}
	return b, nil
}

// readN reads n bytes into buf. A buf too small for n is replaced by one
// of n bytes, up to sizedUpFront; beyond that it grows as the data
// arrives rather than trusting n up front.
func readN(r io.Reader, buf []byte, n int) ([]byte, error) {
	if cap(buf) < n {
		// one allocation of the size announced: grown from a smaller one
		// by doubling, a block of the bench's initial mirror was copied
		// into each larger buffer on the way (readN allocated 230 MB, a
		// third of what the receiver allocated)
		buf = make([]byte, 0, min(n, sizedUpFront))
	}
	buf = buf[:0]
	for len(buf) < n {
		step := min(n-len(buf), 1<<20)
		if cap(buf)-len(buf) < step {
			buf = append(buf, make([]byte, step)...)[:len(buf)]
		}
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+step])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, unexpected(err)
		}
	}
	return buf, nil
}

// sizedUpFront is the most readN allocates before the data came: the
// chunker's largest chunk.
const sizedUpFront = 8 << 20

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func orBad(err error) error {
	if err == nil {
		return errors.New("bad data")
	}
	return err
}

// Block is a piece of a file a receiver asks for: Length bytes at Offset,
// which should be the chunk ID.
type Block struct {
	Offset int64
	Length uint32
	ID     chunkstore.ID
}

// FileBlocks are the blocks asked of one file.
type FileBlocks struct {
	Path   string
	Blocks []Block
}

// BlockRequest asks for blocks of files (POST /v1/blocks): the magic, then
// uvarint the number of files; for each its path (uvarint length, bytes),
// uvarint the number of blocks, and for each block uvarint Offset,
// uvarint Length and the 32-byte ID.
type BlockRequest struct {
	Files []FileBlocks
}

// Append appends the encoding of q.
func (q *BlockRequest) Append(dst []byte) []byte {
	dst = append(dst, blocksMagic...)
	dst = binary.AppendUvarint(dst, uint64(len(q.Files)))
	for _, f := range q.Files {
		dst = appendString(dst, f.Path)
		dst = binary.AppendUvarint(dst, uint64(len(f.Blocks)))
		for _, b := range f.Blocks {
			dst = binary.AppendUvarint(dst, uint64(b.Offset))
			dst = binary.AppendUvarint(dst, uint64(b.Length))
			dst = append(dst, b.ID[:]...)
		}
	}
	return dst
}

// Bytes returns the number of data bytes q asks for.
func (q *BlockRequest) Bytes() int64 {
	var n int64
	for _, f := range q.Files {
		for _, b := range f.Blocks {
			n += int64(b.Length)
		}
	}
	return n
}

// DecodeBlockRequest decodes and checks a block request: valid paths, at
// most MaxBlocks blocks and MaxBlockBytes bytes in all.
func DecodeBlockRequest(b []byte) (BlockRequest, error) {
	var q BlockRequest
	if len(b) < len(blocksMagic) || string(b[:len(blocksMagic)]) != blocksMagic {
		return q, errors.New("blocks: not a block request")
	}
	d := binread.Reader{B: b[len(blocksMagic):]}
	nf := d.Uvarint(MaxBlocks)
	blocks, total := 0, int64(0)
	for i := uint64(0); i < nf && d.Err == nil; i++ {
		f := FileBlocks{Path: d.String(MaxPath)}
		nb := d.Uvarint(uint64(MaxBlocks - blocks))
		blocks += int(nb)
		for j := uint64(0); j < nb && d.Err == nil; j++ {
			blk := Block{Offset: int64(d.Uvarint(1<<62 - 1)), Length: uint32(d.Uvarint(MaxChunk))}
			copy(blk.ID[:], d.Bytes(32))
			total += int64(blk.Length)
			f.Blocks = append(f.Blocks, blk)
		}
		if d.Err == nil {
			if err := CheckPath(f.Path); err != nil {
				return q, fmt.Errorf("blocks: %w", err)
			}
		}
		q.Files = append(q.Files, f)
	}
	if d.Err == nil && len(d.B) > 0 {
		d.Fail(fmt.Errorf("%d trailing bytes", len(d.B)))
	}
	if d.Err != nil {
		return BlockRequest{}, fmt.Errorf("blocks: %w", d.Err)
	}
	if total > MaxBlockBytes {
		return BlockRequest{}, fmt.Errorf("blocks: %d bytes asked, at most %d", total, MaxBlockBytes)
	}
	return q, nil
}

// Block statuses in a block response.
const (
	blockOK          = 0 // Length bytes follow
	blockUnavailable = 1 // the file is gone or shorter now
)

// BlockWriter writes a block response: zstd of, for each block asked, in
// the order asked, a status byte and, if it is 0, the block's bytes.
type BlockWriter struct {
	z *zstd.Encoder
}

// NewBlockWriter starts a block response on w.
func NewBlockWriter(w io.Writer) (*BlockWriter, error) {
	z, err := newEncoder(w)
	if err != nil {
		return nil, err
	}
	return &BlockWriter{z: z}, nil
}

// Write writes the next block's data, or marks it unavailable if data is
// nil.
func (bw *BlockWriter) Write(data []byte) error {
	if data == nil {
		_, err := bw.z.Write([]byte{blockUnavailable})
		return err
	}
	if _, err := bw.z.Write([]byte{blockOK}); err != nil {
		return err
	}
	_, err := bw.z.Write(data)
	return err
}

// Close ends the response; it does not close the underlying writer.
func (bw *BlockWriter) Close() error { return bw.z.Close() }

// BlockReader reads a block response.
type BlockReader struct {
	z  *zstd.Decoder
	br *bufio.Reader
}

// NewBlockReader starts reading a block response from r.
func NewBlockReader(r io.Reader) (*BlockReader, error) {
	z, err := newDecoder(r)
	if err != nil {
		return nil, err
	}
	return &BlockReader{z: z, br: bufio.NewReaderSize(z, 256<<10)}, nil
}

// Next reads the next block, whose length the request gave, into buf
// (grown as needed) and returns it, or ok false if the sender marked it
// unavailable.
func (r *BlockReader) Next(buf []byte, length uint32) (data []byte, ok bool, err error) {
	s, err := r.br.ReadByte()
	if err != nil {
		return nil, false, fmt.Errorf("blocks: %w", unexpected(err))
	}
	switch s {
	case blockUnavailable:
		return buf[:0], false, nil
	case blockOK:
	default:
		return nil, false, fmt.Errorf("blocks: bad status %d", s)
	}
	data, err = readN(r.br, buf, int(length))
	if err != nil {
		return nil, false, fmt.Errorf("blocks: %w", err)
	}
	return data, true, nil
}

// Close releases the decoder.
func (r *BlockReader) Close() { r.z.Close() }
