package chunkstore

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// entriesOf is what DecodeEntries must return for a tree DecodeTree
// accepted (an empty content list as none).
func entriesOf(t *Tree) []Entry {
	out := make([]Entry, len(t.Nodes))
	for i := range t.Nodes {
		n := &t.Nodes[i]
		out[i] = Entry{Name: n.FileName(), Type: n.Type, Size: n.Size, Target: n.LinkTarget()}
		if len(n.Content) > 0 {
			out[i].Content = n.Content
		}
		if n.Subtree != nil {
			out[i].Subtree = *n.Subtree
		}
	}
	return out
}

func normalizeEntries(ents []Entry) []Entry {
	out := make([]Entry, len(ents))
	for i, e := range ents {
		if len(e.Content) == 0 {
			e.Content = nil
		}
		out[i] = e
	}
	return out
}

// checkAgree fails t unless DecodeEntries and DecodeTree agree on data:
// both refuse it, or both accept it with the same entries. It reports
// whether DecodeEntries read it without DecodeTree.
func checkAgree(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	tree, terr := DecodeTree(data)
	ents, err := DecodeEntries(data)
	fastEnts, fast := decodeEntriesFast(data)
	switch {
	case fast && terr != nil:
		t.Fatalf("the fast decoder accepted a tree DecodeTree refuses (%v):\n%s", terr, data)
	case (err == nil) != (terr == nil):
		t.Fatalf("DecodeEntries: %v, DecodeTree: %v:\n%s", err, terr, data)
	case terr != nil:
		return false
	}
	want := entriesOf(tree)
	if got := normalizeEntries(ents); !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeEntries disagrees with DecodeTree:\ngot  %+v\nwant %+v\ntree %s", got, want, data)
	}
	if fast {
		if got := normalizeEntries(fastEnts); !reflect.DeepEqual(got, want) {
			t.Fatalf("the fast decoder disagrees with DecodeTree:\ngot  %+v\nwant %+v\ntree %s", got, want, data)
		}
	}
	return fast
}

// randomTree returns a valid tree of fewer than max entries of every
// kind; with odd, names and targets that are not ASCII, that JSON escapes
// and that are not UTF-8.
func randomTree(rng *rand.Rand, odd bool, max int) *Tree {
	names := map[string]bool{}
	var t Tree
	for range rng.IntN(max) {
		name := fmt.Sprintf("f%d.%s", rng.IntN(1000), []string{"php", "jpg", "css", ""}[rng.IntN(4)])
		if odd {
			name += []string{"", "é", "日本", "a&b", "<x>", "tab\there", "\xff\xfe", "q\"uote", "back\\slash", "\u2028"}[rng.IntN(10)]
		}
		if names[name] {
			continue
		}
		names[name] = true
		n := Node{Mode: uint32(rng.IntN(0o10000)), ModTime: time.Unix(rng.Int64N(2e9), rng.Int64N(1e9)).In(time.FixedZone("", 3600*(rng.IntN(25)-12))),
			UID: rng.Uint32(), GID: uint32(rng.IntN(2)) * math.MaxUint32, Inode: rng.Uint64(), Device: uint64(rng.IntN(3)), Links: uint64(rng.IntN(3))}
		if rng.IntN(2) == 0 {
			n.ChTime = time.Unix(rng.Int64N(2e9), 0).UTC()
		}
		n.SetName(name)
		switch rng.IntN(4) {
		case 0:
			n.Type = NodeDir
			id := RandomID()
			n.Subtree = &id
		case 1:
			n.Type = NodeSymlink
			targets := []string{"../a", "/abs/b", "ü", "x\xffy", "a&b"}
			if !odd {
				targets = targets[:3]
			}
			n.SetTarget(targets[rng.IntN(len(targets))])
		default:
			n.Type = NodeFile
			for range rng.IntN(4) {
				n.Content = append(n.Content, RandomID())
				n.Size += uint64(rng.IntN(1 << 20))
			}
			if rng.IntN(10) == 0 {
				n.Size = math.MaxUint64
			}
		}
		t.Nodes = append(t.Nodes, n)
	}
	return &t
}

// replacements turn an encoded tree into ones DecodeTree may refuse, or
// read differently from EncodeTree's form (the first occurrence of each
// left string is replaced).
var replacements = [][2]string{
	{`,"`, `, "`},
	{`"name"`, `"Name"`},
	{`"type"`, `"size":1,"type"`},
	{`"mode":`, `"mode":0`},
	{`"mode":`, `"mode":4096,"x":`},
	{`"uid":`, `"uid":4294967296,"y":`},
	{`"gid":`, `"gid":-`},
	{`"inode":`, `"inode":1.5,"z":`},
	{`"type":"file"`, `"type":"fifo"`},
	{`"type":"dir"`, `"type":"file"`},
	{`"mtime":"`, `"mtime":"x`},
	{`"ctime":"`, `"ctime":null,"c":"`},
	{`"name":"`, `"name":"../`},
	{`"name":"`, `"name":"a/`},
	{`"content":[`, `"content":["0",`},
	{`"subtree":"`, `"subtree":"F`},
	{`"target":"`, `"target":"\u0000`},
	{`"subtree":`, `"content":[],"subtree":`},
}

// mutate returns a copy of b changed in one of several ways.
func mutate(rng *rand.Rand, b []byte) []byte {
	b = bytes.Clone(b)
	switch k := rng.IntN(len(replacements) + 4); k {
	case 0:
		return b[:rng.IntN(len(b))]
	case 1:
		b[rng.IntN(len(b))] = byte(rng.IntN(256))
		return b
	case 2:
		return append(b, " \n"[rng.IntN(2)])
	case 3:
		// the first node twice: out of order
		i, j := bytes.Index(b, []byte(`[{`)), bytes.Index(b, []byte(`},{`))
		if i < 0 || j < 0 {
			return b
		}
		return append(append(b[:j+2:j+2], b[i+1:j+2]...), b[j+2:]...)
	default:
		r := replacements[k-4]
		return bytes.Replace(b, []byte(r[0]), []byte(r[1]), 1)
	}
}

func TestDecodeEntriesAgreesWithDecodeTree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var fast, trees, refused int
	for i := range 1000 {
		odd := i%2 == 1
		enc, err := EncodeTree(randomTree(rng, odd, 40))
		if err != nil {
			t.Fatal(err)
		}
		f := checkAgree(t, enc)
		if !odd && !f {
			t.Fatalf("the fast decoder passed over a tree in EncodeTree's form of plain names:\n%s", enc)
		}
		trees++
		for range 3 {
			m := mutate(rng, enc)
			if checkAgree(t, m) {
				fast++
			}
			if _, err := DecodeTree(m); err != nil {
				refused++
			}
		}
	}
	// the mutations must exercise both answers, or the test proves little
	if fast == 0 || refused < trees {
		t.Fatalf("of %d mutated trees %d were read by the fast decoder and %d refused: want both", 3*trees, fast, refused)
	}
}

func TestDecodeEntriesFallsBack(t *testing.T) {
	sub := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		data string
		fast bool
		ok   bool
	}{
		{`{"nodes":[]}`, true, true},
		{`{"nodes":null}`, true, true},
		{`{"nodes":null} `, false, true},
		{`null`, false, true},
		{`{"nodes":[{"name":"a","type":"dir","mode":493,"mtime":"2026-01-02T03:04:05Z","subtree":"` + sub + `"}]}`, true, true},
		{`{"nodes":[{"name":"a","type":"dir","mode":493,"mtime":"2026-01-02T03:04:05Z","subtree":"` + sub + `"}]} `, false, true},
		{`{"nodes":[{"name":"a&b","type":"file"}]}`, true, true},
		{`{"nodes":[{"name":"a\u0026b","type":"file"}]}`, false, true},
		{`{"nodes":[{"NAME":"a","type":"file"}]}`, false, true},
		{`{"nodes":[{"name":"a","type":"file","future":{"x":[1]}}]}`, false, true},
		{`{"nodes":[{"name":"a","name":"b","type":"file"}]}`, false, true},
		{`{"nodes":[{"name":"a","type":"file","size":01}]}`, false, false},
		{`{"nodes":[{"name":"a","type":"file","size":18446744073709551616}]}`, false, false},
		{`{"nodes":[{"name":"a","type":"file","size":18446744073709551615}]}`, true, true},
		{`{"nodes":[{"name":"a","type":"file","mode":4096}]}`, false, false},
		{`{"nodes":[{"name":"a","type":"file","mtime":"2026-13-02T03:04:05Z"}]}`, false, false},
		{`{"nodes":[{"name":"a","type":"dir"}]}`, false, false},
		{`{"nodes":[{"name":"b","type":"file"},{"name":"a","type":"file"}]}`, false, false},
		{`{"nodes":[{"name":"a","type":"file"}]}x`, false, false},
		{"{\"nodes\":[{\"name\":\"a\xff\",\"type\":\"file\"}]}", false, true},
	} {
		_, fast := decodeEntriesFast([]byte(tc.data))
		_, err := DecodeEntries([]byte(tc.data))
		if fast != tc.fast || (err == nil) != tc.ok {
			t.Errorf("%s: fast %v, err %v; want fast %v, ok %v", tc.data, fast, err, tc.fast, tc.ok)
		}
		checkAgree(t, []byte(tc.data))
	}
}

func FuzzDecodeEntries(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	// small seeds: the fuzzer's coverage-guided work on trees of tens of
	// entries makes it crawl
	for i := range 6 {
		enc, err := EncodeTree(randomTree(rng, i%2 == 1, 4))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte(`{"nodes":[{"name":"a","type":"file","size":01}]}`))
	f.Add([]byte(`{"nodes":[{"name":"a","type":"symlink","target":"x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgree(t, data)
	})
}

func BenchmarkDecodeEntries(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	var t Tree
	for len(t.Nodes) < 30 {
		t = *randomTree(rng, false, 40)
	}
	enc, err := EncodeTree(&t)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		fn   func([]byte) error
	}{
		{"DecodeEntries", func(d []byte) error { _, err := DecodeEntries(d); return err }},
		{"DecodeTree", func(d []byte) error { _, err := DecodeTree(d); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if err := bc.fn(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
