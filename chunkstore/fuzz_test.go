package chunkstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/crypto"
)

// The fuzz targets run their seed corpus under plain `go test`. Seeds stay
// small: the fuzzer minimizes a new input by re-running it byte by byte.

// newMemRepo initializes and opens a repository in memory. Its metadata
// objects are sealed to testRecipient and opened with testIdentity: real
// age files, but without a key exchange, which would otherwise dominate
// the time of a fuzz iteration.
func newMemRepo(tb testing.TB) (*Repository, *memBackend) {
	tb.Helper()
	ctx := context.Background()
	be := newMemBackend()
	key := crypto.NewIndexKey(newX25519(tb))
	data := newX25519(tb)
	if _, err := Init(ctx, be, key, InitOptions{DataRecipients: []string{data.Recipient().String()}, PackSize: 1 << 20}); err != nil {
		tb.Fatal(err)
	}
	r, err := Open(ctx, be, key)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	r.rcpt.Store(&recipients{meta: []age.Recipient{testRecipient{}}, data: r.rcpt.Load().data, list: r.rcpt.Load().list})
	r.SetDataIdentities([]age.Identity{testIdentity{}})
	r.writers.Add(1) // writes allowed, as in a session, without its lock
	return r, be
}

// testRecipient puts the file key in the clear in its stanza; testIdentity
// takes it back. For tests only.
type testRecipient struct{}

const testStanza = "syncd-test-plain"

func (testRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	return []*age.Stanza{{Type: testStanza, Body: bytes.Clone(fileKey)}}, nil
}

type testIdentity struct{}

func (testIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type == testStanza {
			return bytes.Clone(s.Body), nil
		}
	}
	return nil, age.ErrIncorrectIdentity
}

// normalizeNodes makes nodes comparable with reflect.DeepEqual across a
// JSON round trip: times in UTC, empty slices as nil (omitempty drops
// them).
func normalizeNodes(nodes []Node) []Node {
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		n.ModTime, n.ChTime = n.ModTime.UTC(), n.ChTime.UTC()
		if len(n.RawName) == 0 {
			n.RawName = nil
		}
		if len(n.RawTarget) == 0 {
			n.RawTarget = nil
		}
		if len(n.Content) == 0 {
			n.Content = nil
		}
		out[i] = n
	}
	return out
}

func FuzzDecodeTree(f *testing.F) {
	sub := strings.Repeat("ab", 32)
	for _, s := range []string{
		`{"nodes":[]}`,
		`null`,
		`{"nodes":[{"name":"a","type":"file","mode":420,"mtime":"2026-01-02T03:04:05.123+02:00","content":["` + sub + `"]},` +
			`{"name":"b","type":"dir","subtree":"` + sub + `"},{"name":"c","type":"symlink","target":"../x"}]}`,
		`{"nodes":[{"name":"\ufffd","raw_name":"/w==","type":"symlink","target":"\ufffd","raw_target":"/w=="}]}`,
		`{"nodes":[{"name":"a","raw_name":"YQ==","type":"file","ctime":"0001-01-01T00:00:00Z"}]}`,
		`{"nodes":[{"name":"..","type":"file"}]}`,
		`{"nodes":[{"name":"b","type":"file"},{"name":"a","type":"file"}]}`,
		`{"nodes":[{"name":"a","type":"file","content":[]}]} ]`,
		`{"nodes":[{"name":"x","raw_name":"","type":"file"}]}`,
	} {
		f.Add([]byte(s))
	}
	var tree Tree
	for _, name := range []string{"z", "a\xff", "m"} {
		n := Node{Type: NodeFile, Mode: 0o640, ModTime: time.Unix(1e9, 5).UTC()}
		n.SetName(name)
		tree.Nodes = append(tree.Nodes, n)
	}
	enc, err := EncodeTree(&tree)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := DecodeTree(enc); err != nil {
		f.Fatalf("DecodeTree of an encoded tree: %v", err)
	}
	f.Add(enc)

	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := DecodeTree(data)
		if err != nil {
			return
		}
		prev := ""
		for i, n := range tree.Nodes {
			name := n.FileName()
			if !ValidName(name) {
				t.Fatalf("accepted entry %d with invalid name %q", i, name)
			}
			if i > 0 && name <= prev {
				t.Fatalf("accepted entry %q after %q: not unique and sorted", name, prev)
			}
			prev = name
			if n.Type == NodeDir && n.Subtree == nil {
				t.Fatalf("accepted directory %q without a subtree", name)
			}
			if n.Mode&^0o7777 != 0 {
				t.Fatalf("accepted entry %q with mode %o", name, n.Mode)
			}
		}
		enc, err := EncodeTree(tree)
		if err != nil {
			t.Fatalf("EncodeTree of an accepted tree: %v", err)
		}
		again, err := DecodeTree(enc)
		if err != nil {
			t.Fatalf("DecodeTree(EncodeTree(tree)) = %v\nencoded: %s", err, enc)
		}
		if got, want := normalizeNodes(again.Nodes), normalizeNodes(tree.Nodes); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip changed the nodes:\ngot  %+v\nwant %+v", got, want)
		}
	})
}

func FuzzIndexFile(f *testing.F) {
	id1, id2 := strings.Repeat("11", 32), strings.Repeat("22", 32)
	good, err := json.Marshal(indexFile{Packs: []IndexPack{
		{ID: Hash([]byte("p1")), Type: DataBlob, Size: 1000, Blobs: []IndexBlob{
			{ID: mustID(f, id1), Offset: 0, Length: 100, Raw: 300, Compression: "zstd"},
			{ID: mustID(f, id2), Offset: 100, Length: 50, Raw: 50},
		}},
		{ID: Hash([]byte("p2")), Type: TreeBlob, Size: 10, Blobs: []IndexBlob{{ID: mustID(f, id1), Length: 10, Raw: 10}}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	var gf indexFile
	if err := json.Unmarshal(good, &gf); err != nil {
		f.Fatal(err)
	}
	if err := gf.validate(); err != nil {
		f.Fatalf("a good index fails validation: %v", err)
	}
	f.Add(good)
	for _, s := range []string{
		`{"packs":[]}`,
		`{"packs":[{"type":"data","size":-1}]}`,
		`{"packs":[{"type":"blob","size":1}]}`,
		`{"packs":[{"type":"tree","size":10,"blobs":[{"offset":4294967295,"length":4294967295}]}]}`,
		`{"packs":[{"type":"tree","size":10,"blobs":[{"length":5,"raw_length":6}]}]}`,
		`{"packs":[{"type":"tree","size":10,"blobs":[{"offset":8,"length":5,"raw_length":5}]}]}`,
		`{"packs":[{"type":"tree","size":10,"blobs":[{"compression":"lz4"}]}]}`,
		`{"packs":[{"type":"data","size":9223372036854775807,"blobs":[{"raw_length":67108865,"compression":"zstd"}]}]}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var file indexFile
		if err := json.Unmarshal(data, &file); err != nil {
			return
		}
		if err := file.validate(); err != nil {
			return
		}
		idx := NewIndex()
		first := map[ID]Location{}
		for _, p := range file.Packs {
			if p.Type != DataBlob && p.Type != TreeBlob || p.Size <= 0 {
				t.Fatalf("accepted pack %s of type %v, size %d", p.ID.Short(), p.Type, p.Size)
			}
			for _, b := range p.Blobs {
				if int64(b.Offset)+int64(b.Length) > p.Size {
					t.Fatalf("accepted blob at %d+%d in a pack of %d bytes", b.Offset, b.Length, p.Size)
				}
				if b.Raw > maxBlobSize {
					t.Fatalf("accepted blob of %d bytes", b.Raw)
				}
				switch b.Compression {
				case "":
					if b.Raw != b.Length {
						t.Fatalf("accepted uncompressed blob with length %d, raw %d", b.Length, b.Raw)
					}
				case "zstd":
				default:
					t.Fatalf("accepted compression %q", b.Compression)
				}
				if _, ok := first[b.ID]; !ok {
					first[b.ID] = Location{Pack: p.ID, PackSize: p.Size, Type: p.Type, Offset: b.Offset,
						Length: b.Length, Raw: b.Raw, Zstd: b.Compression == "zstd"}
				}
			}
			idx.addPack(p)
		}
		if idx.Len() != len(first) {
			t.Fatalf("index has %d blobs, want %d", idx.Len(), len(first))
		}
		for id, want := range first {
			if got, ok := idx.Lookup(id); !ok || got != want {
				t.Fatalf("Lookup(%s) = %+v, %v; want the first entry %+v", id.Short(), got, ok, want)
			}
		}
	})
}

// packPlaintext lays out a pack as pack.go documents it: the blobs, the
// JSON header, the header length (4 bytes, little endian).
func packPlaintext(tb testing.TB, blobs ...[]byte) []byte {
	tb.Helper()
	var out []byte
	var hdr packHeader
	for _, b := range blobs {
		hdr.Blobs = append(hdr.Blobs, IndexBlob{ID: Hash(b), Offset: uint32(len(out)), Length: uint32(len(b)), Raw: uint32(len(b))})
		out = append(out, b...)
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		tb.Fatal(err)
	}
	out = append(out, h...)
	return binary.LittleEndian.AppendUint32(out, uint32(len(h)))
}

func FuzzPackHeader(f *testing.F) {
	r, be := newMemRepo(f)
	ctx := context.Background()
	f.Add(packPlaintext(f))
	f.Add(packPlaintext(f, []byte("hello"), []byte("world")))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(append([]byte(`{"blobs":[{"offset":0,"length":100,"raw_length":100}]}`), 55, 0, 0, 0))
	f.Add(append([]byte(`xx{"blobs":[{"offset":1,"length":1,"raw_length":1}]}`), 53, 0, 0, 0))

	f.Fuzz(func(t *testing.T, plain []byte) {
		sealed, err := crypto.Seal(nil, plain, r.rcpt.Load().meta...)
		if err != nil {
			t.Fatal(err)
		}
		id := Hash(sealed)
		name := ObjectName(TreeBlob, id)
		if err := backend.SaveBytes(ctx, be, name, sealed); err != nil {
			t.Fatal(err)
		}
		defer be.Remove(ctx, name)

		// The bounds a header must keep to.
		hdrLen := int64(-1)
		if len(plain) >= 4 {
			hdrLen = int64(binary.LittleEndian.Uint32(plain[len(plain)-4:]))
		}
		var headers [2][]IndexBlob
		var errs [2]error
		for i, whole := range []bool{true, false} {
			p, err := r.OpenPack(ctx, TreeBlob, id, int64(len(sealed)), whole)
			if err != nil {
				t.Fatalf("OpenPack(whole=%v) of a well-formed age file: %v", whole, err)
			}
			headers[i], errs[i] = p.Header()
			if errs[i] != nil {
				continue
			}
			if hdrLen < 0 || hdrLen > int64(len(plain))-4 {
				t.Fatalf("Header accepted a pack of %d bytes with header length %d", len(plain), hdrLen)
			}
			end := int64(len(plain)) - 4 - hdrLen
			for _, b := range headers[i] {
				if int64(b.Offset)+int64(b.Length) > end {
					t.Fatalf("Header accepted blob %s at %d+%d, past the blobs' end %d", b.ID.Short(), b.Offset, b.Length, end)
				}
				loc := Location{Pack: id, PackSize: int64(len(sealed)), Type: TreeBlob, Offset: b.Offset,
					Length: b.Length, Raw: b.Raw, Zstd: b.Compression == "zstd"}
				if out, err := p.ReadBlob(nil, b.ID, loc, nil); err == nil && len(out) != int(b.Raw) {
					t.Fatalf("ReadBlob of header entry %+v returned %d bytes", b, len(out))
				}
			}
		}
		if (errs[0] == nil) != (errs[1] == nil) || !reflect.DeepEqual(headers[0], headers[1]) {
			t.Fatalf("whole and ranged reads disagree: %v, %v / %v, %v", headers[0], errs[0], headers[1], errs[1])
		}
	})
}

func FuzzReadBlob(f *testing.F) {
	r, _ := newMemRepo(f)
	ctx := context.Background()
	h := r.NewHasher()
	blobs := [][]byte{
		[]byte(strings.Repeat("compressible text ", 200)),
		randomBytes(f, 3000),
		[]byte("x"),
		{},
	}
	s := r.NewSaver(ctx, SaverOptions{Packers: 1})
	var ids []ID
	for _, b := range blobs {
		ids = append(ids, r.BlobID(h, b))
		if _, err := s.Save(TreeBlob, ids[len(ids)-1], b); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := s.Finish(); err != nil {
		f.Fatal(err)
	}
	var locs []Location
	for _, id := range ids {
		loc, ok := r.Index().Lookup(id)
		if !ok {
			f.Fatal("saved blob not in the index")
		}
		locs = append(locs, loc)
	}
	if locs[0].Pack != locs[3].Pack || !locs[0].Zstd {
		f.Fatalf("want all blobs in one pack and the first compressed: %+v", locs)
	}
	var packs [2]*Pack
	for i, whole := range []bool{true, false} {
		p, err := r.OpenPack(ctx, TreeBlob, locs[0].Pack, locs[0].PackSize, whole)
		if err != nil {
			f.Fatal(err)
		}
		packs[i] = p
	}
	size := packs[0].size

	for i, loc := range locs {
		f.Add(loc.Offset, loc.Length, loc.Raw, loc.Zstd, uint8(i), true, false)
	}
	f.Add(uint32(0), uint32(size), uint32(size), false, uint8(0), false, true)
	f.Add(uint32(size), uint32(1), uint32(1), false, uint8(0), false, false)
	f.Add(uint32(math.MaxUint32), uint32(math.MaxUint32), uint32(math.MaxUint32), true, uint8(1), true, true)
	f.Add(locs[0].Offset, locs[0].Length, uint32(1), true, uint8(0), false, false)

	f.Fuzz(func(t *testing.T, off, length, raw uint32, zstd bool, which uint8, check, ranged bool) {
		i := int(which) % len(blobs)
		loc := Location{Pack: locs[0].Pack, PackSize: locs[0].PackSize, Type: TreeBlob, Offset: off, Length: length, Raw: raw, Zstd: zstd}
		var hasher *crypto.Hasher
		if check {
			hasher = r.NewHasher()
		}
		p := packs[0]
		if ranged {
			p = packs[1]
		}
		out, err := p.ReadBlob([]byte("dst"), ids[i], loc, hasher)
		if loc == locs[i] {
			if err != nil || !bytes.Equal(out[3:], blobs[i]) {
				t.Fatalf("ReadBlob at the true location of blob %d = %d bytes, %v", i, len(out), err)
			}
			return
		}
		if err != nil {
			return
		}
		if int64(off)+int64(length) > size {
			t.Fatalf("ReadBlob accepted %d+%d in a pack of %d bytes", off, length, size)
		}
		if !bytes.HasPrefix(out, []byte("dst")) || len(out)-3 != int(raw) {
			t.Fatalf("ReadBlob returned %d bytes after dst, want raw length %d", len(out)-3, raw)
		}
		if check && !bytes.Equal(out[3:], blobs[i]) {
			t.Fatalf("ReadBlob with the ID check returned bytes that are not blob %d", i)
		}
	})
}

func FuzzSnapshotJSON(f *testing.F) {
	r, be := newMemRepo(f)
	ctx := context.Background()
	parent := Hash([]byte("parent"))
	good, err := json.Marshal(&Snapshot{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", -7*3600)), Host: "web1",
		Paths: []string{"/srv"}, Tags: []string{"daily"}, Tree: Hash([]byte("tree")), Parent: &parent,
		Stats: Stats{Files: 1, Bytes: 2}, Partial: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	// The target must accept a good snapshot, or it proves nothing.
	if _, err := r.LoadSnapshot(ctx, saveRawMeta(f, r, "snapshots", good)); err != nil {
		f.Fatalf("LoadSnapshot of a good snapshot: %v", err)
	}
	for _, s := range []string{
		`{}`,
		`null`,
		`{"tags":[],"paths":null}`,
		`{"time":"yesterday"}`,
		`{"tree":"00"}`,
		`{"host":"a"} {"host":"b"}`,
		`{"host":"a"}]`,
		`{"stats":{"files":1e400}}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		id := saveRawMeta(t, r, "snapshots", data)
		defer be.Remove(ctx, SnapshotName(id))
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			return
		}
		if sn.ID() != id {
			t.Fatalf("ID() = %s, want %s", sn.ID(), id)
		}
		want, err := json.Marshal(sn)
		if err != nil {
			t.Fatalf("marshal an accepted snapshot: %v", err)
		}
		id2, err := r.SaveSnapshot(ctx, sn)
		if err != nil {
			t.Fatalf("SaveSnapshot of an accepted snapshot: %v", err)
		}
		defer be.Remove(ctx, SnapshotName(id2))
		again, err := r.LoadSnapshot(ctx, id2)
		if err != nil {
			t.Fatalf("LoadSnapshot of a re-saved snapshot: %v", err)
		}
		got, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("save and load changed the snapshot:\ngot  %s\nwant %s", got, want)
		}
	})
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"", "00", strings.Repeat("ab", 32), strings.Repeat("AB", 32), strings.Repeat("g", 64),
		strings.Repeat("ab", 31) + "\xff\xfe", strings.Repeat("\xff", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if len(err.Error()) > 400 {
				t.Fatalf("error for a %d-byte input is %d bytes long: the input is not abbreviated", len(s), len(err.Error()))
			}
			var back ID
			if back.UnmarshalText([]byte(s)) == nil {
				t.Fatalf("UnmarshalText accepts %q, which ParseID refuses", s)
			}
			return
		}
		if got := id.String(); got != strings.ToLower(s) {
			t.Fatalf("ParseID(%q).String() = %q, want the input in lower case", s, got)
		}
		text, err := id.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back ID
		if err := back.UnmarshalText(text); err != nil || back != id {
			t.Fatalf("text round trip of %s = %s, %v", id, back, err)
		}
	})
}

func FuzzConfig(f *testing.F) {
	ctx := context.Background()
	key := crypto.NewIndexKey(newX25519(f))
	be := newMemBackend()
	if _, err := Init(ctx, be, key, InitOptions{DataRecipients: []string{newX25519(f).Recipient().String()}}); err != nil {
		f.Fatal(err)
	}
	initial, ok := be.m[configName]
	if !ok {
		f.Fatal("Init wrote no config")
	}
	if _, err := LoadConfig(ctx, be, key); err != nil {
		f.Fatalf("LoadConfig of a new repository: %v", err)
	}
	f.Add(initial)
	for _, s := range []string{
		`{}`,
		`{"version":1,"chunker_polynomial":"0x3da3358b4dc173","min_chunk_size":524288,"max_chunk_size":8388608,"pack_size":16777216,"data_recipients":["x"]}`,
		`{"version":1,"chunker_polynomial":"0x3da3358b4dc173 trailing","min_chunk_size":65536,"max_chunk_size":67108864,"pack_size":1048576,"data_recipients":[""],"created":"2026-01-01T00:00:00.5+05:30"}`,
		`{"version":1,"chunker_polynomial":"0xffffffffffffffffff"}`,
		`{"version":1,"chunker_polynomial":"0x"}`,
		`{"version":"1"}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg Config
		if err := json.Unmarshal(data, &cfg); err != nil {
			return
		}
		verr := cfg.validate()
		if verr == nil {
			pol, err := cfg.Polynomial()
			if err != nil || !pol.Irreducible() {
				t.Fatalf("accepted polynomial %q: %v, %v", cfg.ChunkerPolynomial, pol, err)
			}
			if cfg.Version != FormatVersion || cfg.MinChunk < 64<<10 || cfg.MaxChunk < cfg.MinChunk || cfg.MaxChunk > 64<<20 ||
				cfg.PackSize < 1<<20 || cfg.PackSize > 512<<20 || len(cfg.DataRecipients) == 0 {
				t.Fatalf("accepted config out of bounds: %+v", cfg)
			}
		}

		// Whatever the key holder writes, the MAC survives storing and
		// loading, and LoadConfig refuses exactly what validate refuses.
		cfg.IndexRecipient = key.Recipient().String()
		cfg.MAC = cfg.mac(key)
		body, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			t.Fatalf("marshal config: %v", err)
		}
		mem := newMemBackend()
		if err := backend.SaveBytes(ctx, mem, configName, body); err != nil {
			t.Fatal(err)
		}
		got, err := LoadConfig(ctx, mem, key)
		if verr != nil {
			if err == nil || err.Error() != verr.Error() {
				t.Fatalf("LoadConfig = %v, want the validation error %v", err, verr)
			}
			return
		}
		if err != nil {
			t.Fatalf("LoadConfig of a config with a fresh MAC: %v\n%s", err, body)
		}
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(cfg)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Fatalf("LoadConfig returned\n%s\nwant\n%s", gotJSON, wantJSON)
		}
	})
}
