package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A framed block response (asked for with compress=raw or compress=zstd,
// see PROTOCOL.md) carries each block on its own, raw or as one zstd
// frame, so that the sender decides block by block whether compressing
// pays; the older response (no compress parameter) is one zstd stream of
// every block.
//
//	"SYNCDBR2"
//	per block asked, in order, a status byte:
//	  0: exactly length raw bytes follow
//	  1: the block is unavailable
//	  2: uvarint n (1 ≤ n < length), then n bytes: one zstd frame that
//	     decodes to exactly length bytes (sent only to a receiver that
//	     asked for compress=zstd)
const framesMagic = "SYNCDBR2"

// blockZstd is the status of a compressed block in a framed response.
const blockZstd = 2

// minCompressed is the smallest block a FrameWriter compresses: zstd's
// EncodeAll leaves the frame content size out of the frame header below
// 256 bytes, and a reader of an earlier version refused a frame without
// it. (Below that size compression saves next to nothing anyway.)
const minCompressed = 256

// FrameWriter writes a framed block response.
type FrameWriter struct {
	w       *bufio.Writer
	enc     *zstd.Encoder // nil: never compresses
	scratch []byte
	hdr     [1 + binary.MaxVarintLen64]byte
}

// NewFrameWriter starts a framed block response on w. With compress
// false it sends every block raw.
func NewFrameWriter(w io.Writer, compress bool) (*FrameWriter, error) {
	fw := &FrameWriter{w: bufio.NewWriterSize(w, 64<<10)}
	if compress {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<20))
		if err != nil {
			return nil, err
		}
		fw.enc = enc
	}
	_, err := fw.w.WriteString(framesMagic)
	return fw, err
}

// Write writes the next block, data (nil: unavailable), compressed if the
// writer compresses and that saves at least a sixteenth of its bytes. It
// returns the bytes it put in the response for the block.
func (fw *FrameWriter) Write(data []byte) (int, error) {
	if data == nil {
		return 1, fw.w.WriteByte(blockUnavailable)
	}
	if fw.enc != nil && len(data) >= minCompressed {
		fw.scratch = fw.enc.EncodeAll(data, fw.scratch[:0])
		if len(fw.scratch) < len(data)-len(data)/16 {
			fw.hdr[0] = blockZstd
			n := 1 + binary.PutUvarint(fw.hdr[1:], uint64(len(fw.scratch)))
			if _, err := fw.w.Write(fw.hdr[:n]); err != nil {
				return 0, err
			}
			_, err := fw.w.Write(fw.scratch)
			return n + len(fw.scratch), err
		}
	}
	if err := fw.w.WriteByte(blockOK); err != nil {
		return 0, err
	}
	_, err := fw.w.Write(data)
	return 1 + len(data), err
}

// Flush sends what is buffered: the blocks written so far.
func (fw *FrameWriter) Flush() error { return fw.w.Flush() }

// Close flushes the response and releases the encoder; it does not close
// the underlying writer.
func (fw *FrameWriter) Close() error {
	if fw.enc != nil {
		fw.enc.Close()
	}
	return fw.w.Flush()
}

// FrameReader reads a framed block response.
type FrameReader struct {
	br      *bufio.Reader
	dec     *zstd.Decoder // nil: a compressed block is refused
	scratch []byte
	wire    int64
}

// ErrUnaskedCompression is the error of a compressed block in a response
// to a receiver that asked for raw blocks.
var ErrUnaskedCompression = errors.New("the peer sent a compressed block, asked for raw ones")

// NewFrameReader starts reading a framed block response from r; with
// compressed false (the receiver asked for compress=raw) a compressed
// block is an error.
func NewFrameReader(r io.Reader, compressed bool) (*FrameReader, error) {
	fr := &FrameReader{br: frameBufs.Get().(*bufio.Reader)}
	fr.br.Reset(r)
	magic := make([]byte, len(framesMagic))
	if _, err := io.ReadFull(fr.br, magic); err != nil {
		return nil, fmt.Errorf("blocks: %w", unexpected(err))
	}
	if string(magic) != framesMagic {
		return nil, errors.New("blocks: not a framed block response")
	}
	fr.wire = int64(len(magic))
	if compressed {
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20),
			zstd.WithDecoderMaxMemory(MaxChunk), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, err
		}
		fr.dec = dec
	}
	return fr, nil
}

// Next reads the next block, whose length the request gave, into buf
// (grown as needed) and returns it, or ok false if the sender marked it
// unavailable. A compressed block must decode to exactly length bytes.
func (fr *FrameReader) Next(buf []byte, length uint32) (data []byte, ok bool, err error) {
	s, err := fr.br.ReadByte()
	if err != nil {
		return nil, false, fmt.Errorf("blocks: %w", unexpected(err))
	}
	fr.wire++
	switch s {
	case blockUnavailable:
		return buf[:0], false, nil
	case blockOK:
		data, err = readN(fr.br, buf, int(length))
		if err != nil {
			return nil, false, fmt.Errorf("blocks: %w", err)
		}
		fr.wire += int64(length)
		return data, true, nil
	case blockZstd:
	default:
		return nil, false, fmt.Errorf("blocks: bad status %d", s)
	}
	if fr.dec == nil {
		return nil, false, fmt.Errorf("blocks: %w", ErrUnaskedCompression)
	}
	n, err := binary.ReadUvarint(fr.br)
	if err != nil {
		return nil, false, fmt.Errorf("blocks: %w", unexpected(err))
	}
	if n == 0 || n >= uint64(length) {
		return nil, false, fmt.Errorf("blocks: a compressed block of %d bytes for a block of %d", n, length)
	}
	if fr.scratch, err = readN(fr.br, fr.scratch, int(n)); err != nil {
		return nil, false, fmt.Errorf("blocks: %w", err)
	}
	fr.wire += int64(uvarintLen(n)) + int64(n)
	// A frame that gives its content size is checked before it is
	// decoded; one that does not (zstd leaves it out of small frames) is
	// decoded within the decoder's memory bound and checked after.
	var h zstd.Header
	if err := h.Decode(fr.scratch); err != nil || (h.HasFCS && h.FrameContentSize != uint64(length)) {
		return nil, false, fmt.Errorf("blocks: a compressed block that does not hold the %d bytes announced", length)
	}
	if cap(buf) < int(length) {
		buf = make([]byte, 0, length)
	}
	data, err = fr.dec.DecodeAll(fr.scratch, buf[:0])
	if err != nil {
		return nil, false, fmt.Errorf("blocks: compressed block: %w", err)
	}
	if len(data) != int(length) {
		return nil, false, fmt.Errorf("blocks: a compressed block of %d bytes, %d announced", len(data), length)
	}
	return data, true, nil
}

// Wire returns the bytes of the response read so far.
func (fr *FrameReader) Wire() int64 { return fr.wire }

// Close releases the decoder and the read buffer; the reader is not used
// after.
func (fr *FrameReader) Close() {
	if fr.dec != nil {
		fr.dec.Close()
		fr.dec = nil
	}
	if fr.br != nil {
		fr.br.Reset(nil)
		frameBufs.Put(fr.br)
		fr.br = nil
	}
}

// frameBufs keeps the read buffers of framed responses read before: one
// of 256 KiB for each response came to 47 MB in the bench's initial
// mirror.
var frameBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 256<<10) }}

// uvarintLen is the length of n as a uvarint.
func uvarintLen(n uint64) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}
