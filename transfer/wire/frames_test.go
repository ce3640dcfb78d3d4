package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// A framed response carries text compressed and random bytes raw when the
// writer compresses, everything raw when it does not; the reader gets
// back exactly what was written, and counts the response's bytes.
func TestFramesRoundTrip(t *testing.T) {
	text := []byte(strings.Repeat("<?php echo 'hello, world'; ?>\n", 2000))
	random := make([]byte, 100<<10)
	rand.Read(random)
	blocks := [][]byte{text, random, nil, []byte("short"), {}}
	for _, compress := range []bool{false, true} {
		var buf bytes.Buffer
		fw, err := NewFrameWriter(&buf, compress)
		if err != nil {
			t.Fatal(err)
		}
		sent := int64(len(framesMagic))
		for _, b := range blocks {
			n, err := fw.Write(b)
			if err != nil {
				t.Fatal(err)
			}
			sent += int64(n)
		}
		fw.Close()
		if int64(buf.Len()) != sent {
			t.Errorf("compress %v: the writer counted %d bytes, wrote %d", compress, sent, buf.Len())
		}
		if compress && buf.Len() > len(random)+len(text)/4 {
			t.Errorf("compressed response of %d bytes: the text was not compressed", buf.Len())
		}
		if !compress && buf.Len() < len(random)+len(text) {
			t.Errorf("raw response of %d bytes: shorter than its blocks", buf.Len())
		}
		fr, err := NewFrameReader(&buf, compress)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range blocks {
			got, ok, err := fr.Next(nil, uint32(len(b)))
			if err != nil || ok != (b != nil) || !bytes.Equal(got, b) {
				t.Fatalf("compress %v, block %d: %d bytes, ok %v, %v", compress, i, len(got), ok, err)
			}
		}
		if fr.Wire() != sent {
			t.Errorf("compress %v: the reader counted %d bytes, %d were sent", compress, fr.Wire(), sent)
		}
		fr.Close()
	}
}

// frame builds a framed response of one compressed block of src, with
// its length field set to n (0: the frame's true length).
func frame(t *testing.T, src []byte, n int) []byte {
	enc, _ := zstd.NewWriter(nil)
	c := enc.EncodeAll(src, nil)
	if n == 0 {
		n = len(c)
	}
	b := append([]byte(framesMagic), blockZstd)
	b = binary.AppendUvarint(b, uint64(n))
	return append(b, c...)
}

// Bad responses: a compressed block to a receiver that asked for raw ones,
// a block that decodes to more or fewer bytes than asked, a compressed
// block no smaller than the block, a bad status.
func TestFramesRefused(t *testing.T) {
	text := []byte(strings.Repeat("abc", 10000))
	for _, tc := range []struct {
		name       string
		resp       []byte
		compressed bool
		length     uint32
		want       string
	}{
		{"compressed when told raw", frame(t, text, 0), false, uint32(len(text)), "asked for raw ones"},
		{"larger than announced", frame(t, text, 0), true, uint32(len(text) - 1), "does not hold the"},
		{"smaller than announced", frame(t, text, 0), true, uint32(len(text) + 1), "does not hold the"},
		{"no smaller than the block", frame(t, text[:100], 0), true, 10, "compressed block of"},
		{"without a content size, larger than announced", frame(t, text[:200], 0), true, 199, "compressed block of 200 bytes, 199 announced"},
		{"without a content size, smaller than announced", frame(t, text[:200], 0), true, 201, "compressed block of 200 bytes, 201 announced"},
		{"bad status", append([]byte(framesMagic), 7), true, 3, "bad status 7"},
		{"cut short", frame(t, text, 0)[:20], true, uint32(len(text)), "unexpected EOF"},
		{"not framed", []byte("SYNCDBQ1xxxx"), true, 3, "not a framed block response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr, err := NewFrameReader(bytes.NewReader(tc.resp), tc.compressed)
			if err == nil {
				_, _, err = fr.Next(nil, tc.length)
				fr.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if tc.name == "compressed when told raw" && !errors.Is(err, ErrUnaskedCompression) {
				t.Errorf("%v is not ErrUnaskedCompression", err)
			}
		})
	}
}

// Small blocks: zstd leaves the content size out of the frame of a block
// under 256 bytes. The writer does not compress those, and the reader
// takes such a frame from a writer that does (it checks the length once
// decoded): every block from 64 to 300 bytes of text goes through.
func TestFramesSmallBlocks(t *testing.T) {
	text := []byte(strings.Repeat("abcd", 100))
	for n := 64; n <= 300; n += 4 {
		var buf bytes.Buffer
		fw, err := NewFrameWriter(&buf, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(text[:n]); err != nil {
			t.Fatal(err)
		}
		fw.Close()
		if compressed := buf.Bytes()[len(framesMagic)] == blockZstd; compressed != (n >= minCompressed) {
			t.Errorf("a block of %d bytes: compressed %v", n, compressed)
		}
		for _, resp := range [][]byte{buf.Bytes(), frame(t, text[:n], 0)} {
			fr, err := NewFrameReader(bytes.NewReader(resp), true)
			if err != nil {
				t.Fatal(err)
			}
			data, ok, err := fr.Next(nil, uint32(n))
			fr.Close()
			if err != nil || !ok || !bytes.Equal(data, text[:n]) {
				t.Fatalf("a block of %d bytes: %q, %v, %v", n, data, ok, err)
			}
		}
	}
}
