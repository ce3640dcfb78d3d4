package chunkstore

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/crypto"
)

func TestSnapshots(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, false)
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	parent := RandomID()
	in := []*Snapshot{
		{Time: base.Add(2 * time.Hour), Host: "web1", Paths: []string{"/srv/a"}, Tree: RandomID(), Tags: []string{"x"},
			Parent: &parent, Program: "syncd test", Stats: Stats{Files: 3, Dirs: 1, Bytes: 100}, Username: "www"},
		{Time: base, Host: "web1", Paths: []string{"/srv/a", "/srv/b"}, Tree: RandomID(), Partial: true},
		{Time: base.Add(time.Hour), Host: "web2", Paths: []string{"/srv/c"}, Tree: RandomID()},
	}
	for _, sn := range in {
		id, err := r.SaveSnapshot(ctx, sn)
		if err != nil {
			t.Fatalf("SaveSnapshot: %v", err)
		}
		if sn.ID() != id || id.IsZero() {
			t.Fatalf("SaveSnapshot returned %s, snapshot ID() = %s", id, sn.ID())
		}
	}
	oldestFirst := []*Snapshot{in[1], in[2], in[0]}

	snaps, bad, err := tr.open(t, false).Snapshots(ctx)
	if err != nil || len(bad) != 0 {
		t.Fatalf("Snapshots = %v, %v", bad, err)
	}
	if len(snaps) != len(in) {
		t.Fatalf("Snapshots returned %d, want %d", len(snaps), len(in))
	}
	for i, sn := range snaps {
		if !reflect.DeepEqual(sn, oldestFirst[i]) {
			t.Errorf("snapshot %d = %+v\nwant %+v", i, sn, oldestFirst[i])
		}
	}

	// A unique prefix of each ID: grow it until it matches one snapshot.
	uniquePrefix := func(id ID) string {
		for n := 1; ; n++ {
			p := id.String()[:n]
			m := 0
			for _, sn := range snaps {
				if strings.HasPrefix(sn.ID().String(), p) {
					m++
				}
			}
			if m == 1 {
				return p
			}
		}
	}
	// A prefix that matches none.
	var unknown string
	for _, c := range "0123456789abcdef" {
		unknown = string(c) + "0000000"
		if !slices.ContainsFunc(snaps, func(s *Snapshot) bool { return strings.HasPrefix(s.ID().String(), unknown) }) {
			break
		}
	}
	tests := []struct {
		ref  string
		want *Snapshot
	}{
		{"latest", in[0]},
		{in[1].ID().String(), in[1]},
		{uniquePrefix(in[2].ID()), in[2]},
		{strings.ToUpper(uniquePrefix(in[1].ID())), in[1]},
		{in[0].ID().String()[:12], in[0]},
	}
	for _, tt := range tests {
		got, err := FindSnapshot(snaps, tt.ref)
		if err != nil {
			t.Errorf("FindSnapshot(%q) = %v", tt.ref, err)
			continue
		}
		if got.ID() != tt.want.ID() {
			t.Errorf("FindSnapshot(%q) = %s, want %s", tt.ref, got.ID().Short(), tt.want.ID().Short())
		}
	}
	if _, err := FindSnapshot(snaps, unknown); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("FindSnapshot(%q) = %v, want ErrNoSnapshot", unknown, err)
	}

	// One snapshot object damaged: the others still load.
	flipByte(t, tr.path(SnapshotName(in[2].ID())), 100)
	if err := backend.SaveBytes(ctx, r.Backend(), "snapshots/junk", []byte("junk")); err != nil {
		t.Fatal(err)
	}
	snaps, bad, err = tr.open(t, false).Snapshots(ctx)
	if err != nil {
		t.Fatalf("Snapshots with a damaged object = %v, want it reported apart", err)
	}
	if len(snaps) != 2 || snaps[0].ID() != in[1].ID() || snaps[1].ID() != in[0].ID() {
		t.Errorf("Snapshots returned %d snapshots, want the 2 undamaged ones oldest first", len(snaps))
	}
	gotBad := map[string]error{}
	for _, e := range bad {
		gotBad[e.Name] = e
	}
	if len(gotBad) != 2 {
		t.Errorf("Snapshots reported %d bad objects %v, want 2", len(bad), gotBad)
	}
	if err := gotBad[SnapshotName(in[2].ID())]; !errors.Is(err, ErrCorrupt) {
		t.Errorf("SnapshotError for the damaged object = %v, want ErrCorrupt", err)
	}
	if err := gotBad["snapshots/junk"]; err == nil || !strings.Contains(err.Error(), "unexpected object name") {
		t.Errorf("SnapshotError for snapshots/junk = %v, want \"unexpected object name\"", err)
	}
	if _, err := r.LoadSnapshot(ctx, in[2].ID()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("LoadSnapshot of the damaged object = %v, want ErrCorrupt", err)
	}
	if _, err := r.LoadSnapshot(ctx, RandomID()); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("LoadSnapshot of a missing object = %v, want backend.ErrNotExist", err)
	}
}

// saveRawMeta stores body as a metadata object the way saveMeta does
// (zstd, sealed to the metadata recipients), without the JSON step, and
// returns its ID.
func saveRawMeta(t testing.TB, r *Repository, dir string, body []byte) ID {
	t.Helper()
	sealed, err := crypto.Seal(nil, r.zenc.EncodeAll(body, nil), r.rcpt.Load().meta...)
	if err != nil {
		t.Fatal(err)
	}
	id := Hash(sealed)
	if err := backend.SaveBytes(context.Background(), r.be, dir+"/"+id.String(), sealed); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLoadSnapshotUndecodable(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, false)
	tests := []struct {
		name string
		body string
		want string
	}{
		{"not JSON", "not json", "invalid character"},
		{"trailing data", `{"host":"a"} {"host":"b"}`, "trailing data"},
		{"wrong type", `{"time":"yesterday"}`, "cannot parse"},
		{"bad tree ID", `{"tree":"abc"}`, "invalid ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := saveRawMeta(t, r, "snapshots", []byte(tt.body))
			_, err := r.LoadSnapshot(ctx, id)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadSnapshot = %v, want ErrCorrupt containing %q", err, tt.want)
			}
		})
	}
	// A snapshot sealed to nobody we know: not corrupt, just no key.
	sealed, err := crypto.Seal(nil, []byte("x"), newX25519(t).Recipient())
	if err != nil {
		t.Fatal(err)
	}
	id := Hash(sealed)
	if err := backend.SaveBytes(ctx, r.be, SnapshotName(id), sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadSnapshot(ctx, id); !errors.Is(err, crypto.ErrNoKey) || errors.Is(err, ErrCorrupt) {
		t.Errorf("LoadSnapshot of a foreign object = %v, want ErrNoKey (not ErrCorrupt)", err)
	}
}

func TestFindSnapshot(t *testing.T) {
	mk := func(id string, hour int) *Snapshot {
		return &Snapshot{id: mustID(t, id), Time: time.Date(2026, 1, 1, hour, 0, 0, 0, time.UTC)}
	}
	a := mk("ab01"+strings.Repeat("0", 60), 1)
	b := mk("ab02"+strings.Repeat("0", 60), 2)
	c := mk("cd00"+strings.Repeat("0", 60), 3)
	snaps := []*Snapshot{a, b, c}
	tests := []struct {
		ref     string
		want    *Snapshot
		wantErr []string // substrings of the error
		noSnap  bool     // error must match ErrNoSnapshot
	}{
		{ref: "latest", want: c},
		{ref: "c", want: c},
		{ref: "ab01", want: a},
		{ref: "AB02", want: b},
		{ref: b.ID().String(), want: b},
		{ref: "ab", wantErr: []string{"ambiguous", a.ID().String(), b.ID().String()}},
		{ref: "a", wantErr: []string{"ambiguous", a.ID().String(), b.ID().String()}},
		{ref: "ef", wantErr: []string{`"ef"`}, noSnap: true},
		{ref: a.ID().String() + "0", wantErr: []string{"snapshot"}, noSnap: true},
		{ref: "", wantErr: []string{"empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := FindSnapshot(snaps, tt.ref)
			if tt.want != nil {
				if err != nil || got != tt.want {
					t.Fatalf("FindSnapshot(%q) = %v, %v; want %s", tt.ref, got, err, tt.want.ID().Short())
				}
				return
			}
			if err == nil {
				t.Fatalf("FindSnapshot(%q) = %s, want an error", tt.ref, got.ID().Short())
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if errors.Is(err, ErrNoSnapshot) != tt.noSnap {
				t.Errorf("errors.Is(%v, ErrNoSnapshot) = %v, want %v", err, !tt.noSnap, tt.noSnap)
			}
		})
	}
	if _, err := FindSnapshot(nil, "latest"); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("FindSnapshot(nil, latest) = %v, want ErrNoSnapshot", err)
	}

	// SortSnapshots: by time, then by ID.
	d := mk("0000"+strings.Repeat("1", 60), 3) // same time as c, smaller ID
	s := []*Snapshot{c, a, d, b}
	SortSnapshots(s)
	if want := []*Snapshot{a, b, d, c}; !slices.Equal(s, want) {
		t.Errorf("SortSnapshots order = %v, want a b d c", s)
	}
}

func TestDecodeTree(t *testing.T) {
	sub := `"subtree":"` + strings.Repeat("ab", 32) + `"`
	valid := []struct {
		name string
		json string
	}{
		{"empty", `{"nodes":[]}`},
		{"null nodes", `{"nodes":null}`},
		{"file, dir, symlink", `{"nodes":[{"name":"a","type":"file","mode":420},{"name":"b","type":"dir",` + sub + `},{"name":"c","type":"symlink","target":"a"}]}`},
		{"raw name", `{"nodes":[{"name":"\ufffd","raw_name":"/w==","type":"file"}]}`},
		{"setuid and sticky", `{"nodes":[{"name":"a","type":"file","mode":4095}]}`}, // 0o7777
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeTree([]byte(tt.json)); err != nil {
				t.Errorf("DecodeTree(%s) = %v, want success", tt.json, err)
			}
		})
	}
	invalid := []struct {
		name string
		json string
		want string
	}{
		{"not json", `nodes`, "decode tree"},
		{"trailing data", `{"nodes":[]} {}`, "trailing data"},
		{"empty name", `{"nodes":[{"name":"","type":"file"}]}`, "invalid name"},
		{"dot", `{"nodes":[{"name":".","type":"file"}]}`, "invalid name"},
		{"dot dot", `{"nodes":[{"name":"..","type":"dir",` + sub + `}]}`, "invalid name"},
		{"slash", `{"nodes":[{"name":"a/b","type":"file"}]}`, "invalid name"},
		{"absolute", `{"nodes":[{"name":"/etc","type":"file"}]}`, "invalid name"},
		{"NUL", `{"nodes":[{"name":"a\u0000b","type":"file"}]}`, "invalid name"},
		{"raw name with slash", `{"nodes":[{"name":"x","raw_name":"Li4v/w==","type":"file"}]}`, "invalid name"}, // "../\xff"
		{"raw name disagrees", `{"nodes":[{"name":"a","raw_name":"Yg==","type":"file"}]}`, "raw name disagrees"},
		{"duplicate", `{"nodes":[{"name":"a","type":"file"},{"name":"a","type":"file"}]}`, "duplicate or out of order"},
		{"out of order", `{"nodes":[{"name":"b","type":"file"},{"name":"a","type":"file"}]}`, "duplicate or out of order"},
		{"unknown type", `{"nodes":[{"name":"a","type":"fifo"}]}`, "unknown type"},
		{"dir without subtree", `{"nodes":[{"name":"a","type":"dir"}]}`, "directory without a subtree"},
		{"dir with content", `{"nodes":[{"name":"a","type":"dir",` + sub + `,"content":["` + strings.Repeat("cd", 32) + `"]}]}`, "directory without a subtree"},
		{"file with subtree", `{"nodes":[{"name":"a","type":"file",` + sub + `}]}`, "file with a subtree"},
		{"symlink without target", `{"nodes":[{"name":"a","type":"symlink"}]}`, "invalid symlink target"},
		{"symlink target with NUL", `{"nodes":[{"name":"a","type":"symlink","target":"x\u0000"}]}`, "invalid symlink target"},
		{"file type bits in mode", `{"nodes":[{"name":"a","type":"file","mode":32768}]}`, "invalid mode"},
		{"bad content ID", `{"nodes":[{"name":"a","type":"file","content":["zz"]}]}`, "invalid ID"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			tree, err := DecodeTree([]byte(tt.json))
			if err == nil {
				t.Fatalf("DecodeTree(%s) = %+v, want an error", tt.json, tree.Nodes)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeTree(%s) = %v, want an error containing %q", tt.json, err, tt.want)
			}
		})
	}
}

func TestTreeRawNames(t *testing.T) {
	var tree Tree
	for _, name := range []string{"b\xffc", "plain", "a\xfe"} {
		var n Node
		n.SetName(name)
		n.Type = NodeSymlink
		n.SetTarget("../t\xff")
		if got := n.FileName(); got != name {
			t.Errorf("SetName(%q): FileName() = %q", name, got)
		}
		tree.Nodes = append(tree.Nodes, n)
	}
	data, err := EncodeTree(&tree)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeTree(data)
	if err != nil {
		t.Fatalf("DecodeTree of EncodeTree output: %v", err)
	}
	var names []string
	for _, n := range got.Nodes {
		names = append(names, n.FileName())
		if n.LinkTarget() != "../t\xff" {
			t.Errorf("%q: LinkTarget() = %q, want %q", n.FileName(), n.LinkTarget(), "../t\xff")
		}
	}
	if want := []string{"a\xfe", "b\xffc", "plain"}; !slices.Equal(names, want) {
		t.Errorf("names after the round trip = %q, want %q (sorted by raw bytes)", names, want)
	}
	for _, name := range []string{"a\xfe", "plain", "b\xffc"} {
		if n, ok := got.Find(name); !ok || n.FileName() != name {
			t.Errorf("Find(%q) = %v, %v", name, n, ok)
		}
	}
	if _, ok := got.Find("b\ufffdc"); ok {
		t.Errorf("Find found an entry under its display name instead of its raw name")
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, ".a": true, "...": true, "a b": true, "\xff": true,
		"": false, ".": false, "..": false, "a/b": false, "/": false, "a\x00": false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseID(t *testing.T) {
	hex64 := "0123456789abcdef" + strings.Repeat("0", 47) + "f"
	id, err := ParseID(hex64)
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != hex64 || id.Short() != hex64[:8] {
		t.Errorf("String() = %s, Short() = %s; want %s, %s", id, id.Short(), hex64, hex64[:8])
	}
	if upper, err := ParseID(strings.ToUpper(hex64)); err != nil || upper != id {
		t.Errorf("ParseID(upper case) = %v, %v; want %s", upper, err, id)
	}
	for _, bad := range []string{"", "abc", hex64 + "0", hex64[:63], "g" + hex64[1:], strings.Repeat("x", 200)} {
		_, err := ParseID(bad)
		if err == nil {
			t.Errorf("ParseID(%q) succeeded", bad)
		} else if len(err.Error()) > 120 {
			t.Errorf("ParseID(%d-byte input): error is %d bytes long, want the input abbreviated", len(bad), len(err.Error()))
		}
	}
	text, _ := id.MarshalText()
	var back ID
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Errorf("text round trip = %v, %v; want %s", back, err, id)
	}
	if (ID{}).IsZero() != true || id.IsZero() {
		t.Errorf("IsZero wrong")
	}
	if Hash([]byte("abc")).String() != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Hash is not SHA-256")
	}
	if a, b := RandomID(), RandomID(); a == b {
		t.Errorf("RandomID returned the same ID twice")
	}
	if got := ObjectName(TreeBlob, id); got != "tree/"+hex64 {
		t.Errorf("ObjectName = %s", got)
	}
	if got := IndexName(id); got != "index/"+hex64 {
		t.Errorf("IndexName = %s", got)
	}
	if got := SnapshotName(id); got != "snapshots/"+hex64 {
		t.Errorf("SnapshotName = %s", got)
	}
}

func TestBlobTypeText(t *testing.T) {
	for _, bt := range []BlobType{DataBlob, TreeBlob} {
		text, err := bt.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back BlobType
		if err := back.UnmarshalText(text); err != nil || back != bt {
			t.Errorf("%v: text round trip = %v, %v", bt, back, err)
		}
	}
	var bt BlobType
	if err := bt.UnmarshalText([]byte("blob")); err == nil {
		t.Errorf("UnmarshalText(blob) succeeded")
	}
	if got := BlobType(9).String(); got != "blobtype(9)" {
		t.Errorf("BlobType(9).String() = %q", got)
	}
}
