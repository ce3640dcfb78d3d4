package chunkstore

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
)

// testChunking cuts at 64-256 KiB, so that a few MiB make dozens of
// chunks: more than verifyAhead.
func testChunking() Chunking {
	c := MirrorChunking()
	c.Min, c.Max = 64<<10, 256<<10
	return c
}

func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func oldChunks(s Split) []OldChunk {
	var old []OldChunk
	for i, id := range s.Content {
		old = append(old, OldChunk{ID: id, Len: int64(s.Lengths[i])})
	}
	return old
}

// A file split against its previous version's chunks gets exactly the
// chunks that chunking it afresh gives, and the unchanged ones are
// matched by hashing: whatever changed, wherever.
func TestSplitAgainstOldChunks(t *testing.T) {
	c := testChunking()
	base := randomData(8<<20, 1)
	sp := c.NewSplitter()
	prev, err := sp.Split(bytes.NewReader(base), int64(len(base)), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(prev.Content) < 3*verifyAhead {
		t.Fatalf("%d chunks: too few to test", len(prev.Content))
	}
	old := oldChunks(prev)
	edit := func(at int, b []byte) []byte {
		d := slices.Clone(base)
		copy(d[at:], b)
		return d
	}
	cases := map[string]struct {
		data       []byte
		minMatched int64
	}{
		"unchanged":          {base, int64(len(base))},
		"edit in the middle": {edit(4<<20, randomData(1024, 2)), int64(len(base)) - 3*256<<10},
		"edit at the start":  {edit(0, randomData(10, 3)), int64(len(base)) - 3*256<<10},
		"appended":           {append(slices.Clone(base), randomData(100<<10, 4)...), int64(len(base)) - 256<<10},
		"truncated":          {base[:5<<20], 5<<20 - 256<<10},
		"shifted":            {append(randomData(7, 5), base...), int64(len(base)) / 2},
	}
	for name, tc := range cases {
		fresh, err := c.NewSplitter().Split(bytes.NewReader(tc.data), int64(len(tc.data)), nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sp.Split(bytes.NewReader(tc.data), int64(len(tc.data)), old, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(got.Content, fresh.Content) || !slices.Equal(got.Lengths, fresh.Lengths) || got.Size != int64(len(tc.data)) {
			t.Errorf("%s: %d chunks, not the %d of chunking afresh", name, len(got.Content), len(fresh.Content))
		}
		if got.Matched < tc.minMatched {
			t.Errorf("%s: %d bytes matched, want at least %d", name, got.Matched, tc.minMatched)
		}
	}
	// an old chunk whose blob is gone is not reused: cut again, and the
	// ones after it matched again
	gone := old[2*verifyAhead+3].ID
	got, err := sp.Split(bytes.NewReader(base), int64(len(base)), old, func(id ID) bool { return id != gone }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Content, prev.Content) || got.Matched != int64(len(base))-old[2*verifyAhead+3].Len {
		t.Errorf("with one chunk gone: %d of %d chunks equal, %d bytes matched, want all but the gone one's %d",
			len(got.Content), len(prev.Content), got.Matched, old[2*verifyAhead+3].Len)
	}
}

// failingAt fails every read that reaches past at.
type failingAt struct {
	r  io.ReaderAt
	at int64
}

var errDisk = errors.New("disk error")

func (f failingAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.at {
		return 0, errDisk
	}
	return f.r.ReadAt(p, off)
}

// Old chunks are read a few at a time: a read that fails past the first
// chunk that differs does not fail the split (the file is chunked from
// there, as when read one by one), one before it does.
func TestSplitOldChunkReadErrors(t *testing.T) {
	c := testChunking()
	base := randomData(4<<20, 6)
	sp := c.NewSplitter()
	prev, err := sp.Split(bytes.NewReader(base), int64(len(base)), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := oldChunks(prev)
	var third int64 // the offset of the third chunk
	for _, o := range old[:2] {
		third += o.Len
	}
	// the second chunk differs; reading the fourth fails, once
	changed := slices.Clone(base)
	changed[old[0].Len+10] ^= 1
	fails := failingAt{bytes.NewReader(changed), third + old[2].Len + 1}
	if _, err := sp.verifyOld(fails, old[:verifyAhead], 0); err != nil {
		t.Errorf("a read past the first chunk that differs failed the verification: %v", err)
	}
	if n, err := sp.verifyOld(failingAt{bytes.NewReader(base), third + 1}, old[:verifyAhead], 0); !errors.Is(err, errDisk) || n != 2 {
		t.Errorf("a read of an unchanged file failing at its third chunk: %d verified, %v; want 2, the disk's error", n, err)
	}
}

// BenchmarkSplitUnchanged splits an unchanged 64 MiB file against its
// old chunks: reading and hashing, on two cores (verifyOld).
func BenchmarkSplitUnchanged(b *testing.B) {
	c := MirrorChunking()
	data := randomData(64<<20, 7)
	sp := c.NewSplitter()
	prev, err := sp.Split(bytes.NewReader(data), int64(len(data)), nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	old := oldChunks(prev)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if s, err := sp.Split(bytes.NewReader(data), int64(len(data)), old, nil, nil); err != nil || s.Matched != int64(len(data)) {
			b.Fatal(s.Matched, err)
		}
	}
}
