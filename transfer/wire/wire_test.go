package wire

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/state"
)

func fileEntry() Entry {
	return Entry{Path: "dir/new\nline \xff.txt", Seq: 9, Type: "file", Size: 7, Mode: 0o4755, ModTime: -3,
		Content: []chunkstore.ID{{1}, {2}}, Lengths: []uint32{3, 4}, Vector: state.Vector{{Node: 1, Value: 5}}}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []Entry{
		fileEntry(),
		{Path: "l", Seq: 1, Type: "symlink", Target: "../x", Vector: state.Vector{{Node: 0, Value: 1}}},
		{Path: "d", Seq: 2, Type: "dir", Mode: 0o755, Vector: state.Vector{{Node: 3, Value: 1}, {Node: 9, Value: 2}}},
		{Path: "gone", Seq: 3, Type: "file", Deleted: true, Vector: state.Vector{{Node: 3, Value: 1}}},
	} {
		got, err := DecodeEntry(AppendEntry(nil, &e))
		if err != nil {
			t.Fatalf("%q: %v", e.Path, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("got %+v\nwant %+v", got, e)
		}
	}
}

// Hostile entries are rejected with an error naming what is wrong.
func TestEntryRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(e *Entry)
		want string
	}{
		{"dotdot", func(e *Entry) { e.Path = "../../etc/x" }, `name ".." not allowed`},
		{"absolute", func(e *Entry) { e.Path = "/etc/passwd" }, `name "" not allowed`},
		{"inner dotdot", func(e *Entry) { e.Path = "a/../../b" }, `name ".." not allowed`},
		{"dot", func(e *Entry) { e.Path = "a/./b" }, `name "." not allowed`},
		{"empty", func(e *Entry) { e.Path = "" }, "empty"},
		{"NUL", func(e *Entry) { e.Path = "a\x00b" }, "NUL"},
		{"temp name", func(e *Entry) { e.Path = "a/.syncd-tmp-1" }, "reserved"},
		{"long name", func(e *Entry) { e.Path = strings.Repeat("a", 256) }, "too long"},
		{"size", func(e *Entry) { e.Size = 8 }, "add up"},
		{"zero chunk", func(e *Entry) { e.Lengths[0], e.Size = 0, 4 }, "chunk length"},
		{"no vector", func(e *Entry) { e.Vector = nil }, "vector"},
		{"bad vector", func(e *Entry) { e.Vector = state.Vector{{Node: 2, Value: 1}, {Node: 1, Value: 1}} }, "vector"},
		{"dir content", func(e *Entry) { e.Type = "dir" }, "content on a dir"},
		{"link target", func(e *Entry) { e.Type, e.Content, e.Lengths, e.Size = "symlink", nil, nil, 0 }, "symlink target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := fileEntry()
			tc.edit(&e)
			_, err := DecodeEntry(AppendEntry(nil, &e))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	good := AppendEntry(nil, &Entry{Path: "a", Type: "dir", Vector: state.Vector{{Node: 1, Value: 1}}})
	for n := range len(good) {
		if _, err := DecodeEntry(good[:n]); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
}

func TestIndexStream(t *testing.T) {
	var buf bytes.Buffer
	iw, err := NewIndexWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	es := []Entry{fileEntry(), {Path: "d", Seq: 10, Type: "dir", Vector: state.Vector{{Node: 1, Value: 1}}}}
	for i := range es {
		if err := iw.Write(&es[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := iw.Close(42, true); err != nil {
		t.Fatal(err)
	}
	b, err := ReadIndex(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Entries, es) || b.Seq != 42 || !b.More {
		t.Errorf("got %+v", b)
	}
	whole := buf.Bytes()
	for _, n := range []int{0, 5, len(whole) / 2, len(whole) - 1} {
		if _, err := ReadIndex(bytes.NewReader(whole[:n])); err == nil {
			t.Errorf("cut to %d of %d bytes: no error", n, len(whole))
		}
	}
	// the decoders are kept for the next response, those of the failed
	// reads above too
	for range 3 {
		if b, err := ReadIndex(bytes.NewReader(whole)); err != nil || !reflect.DeepEqual(b.Entries, es) {
			t.Fatalf("read again after cut responses: %v, %+v", err, b)
		}
	}
	// a writer made after one closed (its encoder kept for reuse) writes
	// the same response
	var again bytes.Buffer
	iw, err = NewIndexWriter(&again)
	if err != nil {
		t.Fatal(err)
	}
	for i := range es {
		iw.Write(&es[i])
	}
	if err := iw.Close(42, true); err != nil || !bytes.Equal(again.Bytes(), whole) {
		t.Fatalf("the second response differs from the first (%v): %d bytes against %d", err, again.Len(), len(whole))
	}
	// out of order
	buf.Reset()
	iw, _ = NewIndexWriter(&buf)
	iw.Write(&es[1])
	iw.Write(&es[0])
	iw.Close(42, false)
	if _, err := ReadIndex(&buf); err == nil || !strings.Contains(err.Error(), "order") {
		t.Errorf("out of order: %v", err)
	}
}

func TestBlocks(t *testing.T) {
	q := BlockRequest{Files: []FileBlocks{
		{Path: "a", Blocks: []Block{{Offset: 0, Length: 3, ID: chunkstore.ID{1}}, {Offset: 3, Length: 2}}},
		{Path: "b/c", Blocks: []Block{{Offset: 1 << 40, Length: 1}}},
	}}
	enc := q.Append(nil)
	got, err := DecodeBlockRequest(enc)
	if err != nil || !reflect.DeepEqual(got, q) || q.Bytes() != 6 {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, bad := range []BlockRequest{
		{Files: []FileBlocks{{Path: "../x", Blocks: []Block{{Length: 1}}}}},
		{Files: []FileBlocks{{Path: "a", Blocks: []Block{{Length: MaxChunk}, {Length: MaxChunk}, {Length: 1}}}}},
	} {
		if _, err := DecodeBlockRequest(bad.Append(nil)); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	var buf bytes.Buffer
	bw, _ := NewBlockWriter(&buf)
	bw.Write([]byte("abc"))
	bw.Write(nil)
	bw.Write([]byte("x"))
	bw.Close()
	br, err := NewBlockReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	for _, want := range []string{"abc", "", "x"} {
		d, ok, err := br.Next(nil, uint32(len(want)))
		if err != nil || ok != (want != "") || string(d) != want {
			t.Errorf("block %q: %q %v %v", want, d, ok, err)
		}
	}
	if _, _, err := br.Next(nil, 1); err == nil {
		t.Error("read past the end: no error")
	}
}
