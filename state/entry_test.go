package state

import (
	"bytes"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/syncd/syncd/chunkstore"
)

// fullEntry has every field set, to extreme values where they have some.
func fullEntry() Entry {
	return Entry{
		Type: "symlink", Size: -1 << 63, Mode: 1<<32 - 1,
		ModTime: 1<<63 - 1, ChTime: -5,
		Inode: 1<<64 - 1, Device: 42, Links: 3, UID: 1<<32 - 1, GID: 7,
		Target:  "../t\n\xff\x00",
		Content: []chunkstore.ID{{1, 2, 3}, {31: 0xff}},
		Lengths: []uint32{1<<32 - 1, 0},
		Version: 1<<64 - 1, Deleted: true,
		Vector: Vector{{Node: 0, Value: 1}, {Node: 7, Value: 1<<64 - 1}, {Node: 1<<64 - 1, Value: 3}},
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for name, e := range map[string]Entry{
		"full":  fullEntry(),
		"zero":  {Type: "file"},
		"dir":   {Type: "dir", Mode: 0o755, ModTime: 1e18},
		"chunk": {Type: "file", Size: 10, Content: []chunkstore.ID{{9}}, Lengths: []uint32{10}},
	} {
		t.Run(name, func(t *testing.T) {
			b := appendEntry([]byte("prefix"), &e)
			got, err := decodeEntry(b[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("got %+v\nwant %+v", got, e)
			}
			for i := range len(b) - len("prefix") {
				if _, err := decodeEntry(b[len("prefix") : len(b)-1-i]); err == nil {
					t.Errorf("truncated to %d bytes: no error", len(b)-len("prefix")-1-i)
				}
			}
		})
	}
}

func TestEntryCheck(t *testing.T) {
	for _, e := range []Entry{
		{Type: ""},
		{Type: "fifo"},
		{Type: "file", Content: []chunkstore.ID{{}}},
		{Type: "file", Lengths: []uint32{1}},
	} {
		if e.check() == nil {
			t.Errorf("%+v: no error", e)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	full := fullEntry()
	f.Add(appendEntry(nil, &full))
	f.Add(appendEntry(nil, &Entry{Type: "dir"}))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		if err := e.check(); err != nil {
			t.Fatalf("decoded an entry that cannot be stored: %v", err)
		}
		again, err := decodeEntry(appendEntry(nil, &e))
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("round trip: got %+v, want %+v", again, e)
		}
	})
}

func TestPathKeys(t *testing.T) {
	paths := []string{"", "a", "a/b", "a/b/c", "a-b", "a b", "a\x01", "ab", "b", "a/\xff", "a/\n", "\xff\xfe/x"}
	for _, p := range paths {
		if err := checkPath(p); err != nil {
			t.Fatal(err)
		}
		if got, err := keyPath(pathKey(p)); err != nil || got != p {
			t.Errorf("keyPath(pathKey(%q)) = %q, %v", p, got, err)
		}
	}
	// sorted keys are a depth-first walk, children in name order
	slices.SortFunc(paths, func(a, b string) int { return bytes.Compare(pathKey(a), pathKey(b)) })
	want := []string{"", "a", "a/\n", "a/b", "a/b/c", "a/\xff", "a\x01", "a b", "a-b", "ab", "b", "\xff\xfe/x"}
	if !slices.Equal(paths, want) {
		t.Errorf("order:\n got %q\nwant %q", paths, want)
	}
	for _, bad := range []string{"/", "/a", "a/", "a//b", ".", "a/./b", "..", "a/..", "a\x00b"} {
		if checkPath(bad) == nil {
			t.Errorf("checkPath(%q): no error", bad)
		}
	}
	if got := parents("a/b/c"); !slices.Equal(got, []string{"a/b", "a", ""}) {
		t.Errorf("parents = %q", got)
	}
}

// TestImports keeps the package on its layer: of ours, it imports
// chunkstore (for chunkstore.ID) and internal/binread only.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/syncd/syncd/") && p != "github.com/syncd/syncd/chunkstore" &&
				p != "github.com/syncd/syncd/internal/binread" {
				t.Errorf("%s imports %s: state may import only chunkstore and internal/binread of ours", name, p)
			}
		}
	}
}

// Entries written before version vectors (format 1) still decode.
func TestEntryFormat1(t *testing.T) {
	e := fullEntry()
	e.Vector = nil
	b := appendEntry(nil, &e)
	if b[len(b)-1] != 0 {
		t.Fatalf("vector count not last: %x", b)
	}
	b = b[:len(b)-1]
	b[0] = entryFormatV1
	got, err := decodeEntry(b)
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("format 1: %+v, %v", got, err)
	}
}
