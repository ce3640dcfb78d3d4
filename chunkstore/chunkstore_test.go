package chunkstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/backendtest"
	"github.com/syncd/syncd/chunkstore/local"
	"github.com/syncd/syncd/crypto"
)

// testRepo is a repository initialized in a local directory.
type testRepo struct {
	dir    string
	key    *crypto.IndexKey
	dataID *age.X25519Identity // the identity of the only data recipient
	cfg    Config
}

func newX25519(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// initLocal initializes a repository in a new temporary directory.
func initLocal(t *testing.T, opts InitOptions) testRepo {
	t.Helper()
	dir := t.TempDir()
	be, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	tr := testRepo{dir: dir, key: crypto.NewIndexKey(newX25519(t)), dataID: newX25519(t)}
	if opts.DataRecipients == nil {
		opts.DataRecipients = []string{tr.dataID.Recipient().String()}
	}
	tr.cfg, err = Init(context.Background(), be, tr.key, opts)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return tr
}

// open opens the repository through a fresh backend, as another process
// would. With data set, it can read file contents.
func (tr testRepo) open(t *testing.T, data bool) *Repository {
	t.Helper()
	be, err := local.Open(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(context.Background(), be, tr.key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(r.Close)
	if data {
		r.SetDataIdentities([]age.Identity{tr.dataID})
	}
	return r
}

// path returns the file that holds object name.
func (tr testRepo) path(name string) string { return filepath.Join(tr.dir, filepath.FromSlash(name)) }

// rewrite replaces the content of a stored object (mode 0400) with edit's
// result.
func rewrite(t *testing.T, path string, edit func([]byte) []byte) {
	t.Helper()
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

// flipByte flips the lowest bit of the byte at off (from the end when
// negative).
func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	rewrite(t, path, func(b []byte) []byte {
		if off < 0 {
			off += len(b)
		}
		b[off] ^= 1
		return b
	})
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustID(t testing.TB, s string) ID {
	t.Helper()
	id, err := ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// memBackend is an in-memory backend.Backend, for tests that run often
// (fuzzing) and need no disk.
type memBackend struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemBackend() *memBackend { return &memBackend{m: make(map[string][]byte)} }

func (b *memBackend) Save(ctx context.Context, name string, r io.ReaderAt, size int64) error {
	data := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(r, 0, size), data); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[name] = data
	return nil
}

func (b *memBackend) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	b.mu.Lock()
	data, ok := b.m[name]
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, backend.ErrNotExist)
	}
	if off < 0 {
		return nil, fmt.Errorf("open %s: negative offset %d", name, off)
	}
	off = min(off, int64(len(data)))
	end := int64(len(data))
	if n > 0 {
		end = min(end, off+n)
	}
	return io.NopCloser(bytes.NewReader(data[off:end])), nil
}

func (b *memBackend) Stat(ctx context.Context, name string) (backend.Info, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.m[name]
	if !ok {
		return backend.Info{}, fmt.Errorf("%s: %w", name, backend.ErrNotExist)
	}
	return backend.Info{Name: name, Size: int64(len(data))}, nil
}

func (b *memBackend) List(ctx context.Context, prefix string, fn func(backend.Info) error) error {
	b.mu.Lock()
	var infos []backend.Info
	for name, data := range b.m {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, backend.Info{Name: name, Size: int64(len(data))})
		}
	}
	b.mu.Unlock()
	for _, fi := range infos {
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

func (b *memBackend) Remove(ctx context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[name]; !ok {
		return fmt.Errorf("%s: %w", name, backend.ErrNotExist)
	}
	delete(b.m, name)
	return nil
}

func (b *memBackend) Close() error { return nil }

// The in-memory fake must behave like a real backend, or the fuzz tests
// built on it prove nothing.
func TestMemBackendConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return newMemBackend() })
}

func TestInitOpen(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("X", 3600))
	tr := initLocal(t, InitOptions{Now: now})

	cfg := tr.cfg
	if cfg.Version != FormatVersion {
		t.Errorf("Version = %d, want %d", cfg.Version, FormatVersion)
	}
	if _, err := ParseID(cfg.ID); err != nil {
		t.Errorf("repository ID %q: %v", cfg.ID, err)
	}
	if want := time.Date(2026, 3, 4, 4, 6, 7, 0, time.UTC); !cfg.Created.Equal(want) || cfg.Created.Location() != time.UTC {
		t.Errorf("Created = %v, want %v (UTC, whole seconds)", cfg.Created, want)
	}
	if cfg.PackSize != DefaultPackSize || cfg.MinChunk != DefaultMinChunk || cfg.MaxChunk != DefaultMaxChunk {
		t.Errorf("sizes = pack %d, chunks %d..%d; want the defaults %d, %d..%d",
			cfg.PackSize, cfg.MinChunk, cfg.MaxChunk, DefaultPackSize, DefaultMinChunk, DefaultMaxChunk)
	}
	if pol, err := cfg.Polynomial(); err != nil || !pol.Irreducible() || pol.Deg() != 53 {
		t.Errorf("Polynomial() = %v (degree %d), %v; want an irreducible polynomial of degree 53", pol, pol.Deg(), err)
	}
	if got, want := cfg.IndexRecipient, tr.key.Recipient().String(); got != want {
		t.Errorf("IndexRecipient = %s, want %s", got, want)
	}
	if got, want := cfg.DataRecipients, []string{tr.dataID.Recipient().String()}; !slices.Equal(got, want) {
		t.Errorf("DataRecipients = %v, want %v", got, want)
	}

	// The keys/ objects hold the public keys and their fingerprints only.
	for role, rcpt := range map[string]string{"index": cfg.IndexRecipient, "data": cfg.DataRecipients[0]} {
		fp := crypto.Fingerprint(rcpt)
		body, err := os.ReadFile(tr.path("keys/" + role + "-" + fp))
		if err != nil {
			t.Errorf("keys object for the %s key: %v", role, err)
			continue
		}
		var ki keyInfo
		if err := json.Unmarshal(body, &ki); err != nil {
			t.Fatal(err)
		}
		if want := (keyInfo{Role: role, Recipient: rcpt, Fingerprint: fp}); ki != want {
			t.Errorf("keys object = %+v, want %+v", ki, want)
		}
		if strings.Contains(string(body), "SECRET") {
			t.Errorf("keys object for the %s key holds a secret key: %s", role, body)
		}
	}

	r := tr.open(t, false)
	if got := r.Config(); !reflect.DeepEqual(got, cfg) {
		t.Errorf("Open: Config() = %+v\nwant what Init returned: %+v", got, cfg)
	}
	if pol, _ := cfg.Polynomial(); r.Polynomial() != pol {
		t.Errorf("Polynomial() = %v, want %v", r.Polynomial(), pol)
	}
	if n := r.Index().Len(); n != 0 {
		t.Errorf("new repository: index has %d blobs", n)
	}
	bad, err := r.LoadIndex(ctx)
	if err != nil || len(bad) != 0 || r.Index().Len() != 0 {
		t.Errorf("LoadIndex of a new repository = %v, %v, %d blobs; want nothing", bad, err, r.Index().Len())
	}
	if r.HasDataIdentity() {
		t.Errorf("HasDataIdentity() = true before SetDataIdentities")
	}
}

func TestInitRefuses(t *testing.T) {
	ctx := context.Background()
	key := crypto.NewIndexKey(newX25519(t))
	valid := newX25519(t).Recipient().String()
	tests := []struct {
		name string
		opts InitOptions
		want string
	}{
		{"no data recipient", InitOptions{}, "data recipient"},
		{"bad data recipient", InitOptions{DataRecipients: []string{valid, "age1nope"}}, "not an age public key"},
		{"pack size too small", InitOptions{DataRecipients: []string{valid}, PackSize: 1000}, "pack size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			be, err := local.Create(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Init(ctx, be, key, tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Init = %v, want an error containing %q", err, tt.want)
			}
			if _, err := be.Stat(ctx, configName); !errors.Is(err, backend.ErrNotExist) {
				t.Errorf("after a refused Init, Stat(config) = %v, want ErrNotExist", err)
			}
		})
	}
}

func TestInitTwice(t *testing.T) {
	tr := initLocal(t, InitOptions{})
	before, err := os.ReadFile(tr.path(configName))
	if err != nil {
		t.Fatal(err)
	}
	be, err := local.Open(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	other := crypto.NewIndexKey(newX25519(t))
	_, err = Init(context.Background(), be, other, InitOptions{DataRecipients: []string{newX25519(t).Recipient().String()}})
	if !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("second Init = %v, want ErrAlreadyInitialized", err)
	}
	after, err := os.ReadFile(tr.path(configName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("second Init changed the config")
	}
	tr.open(t, false) // the first key still opens it
}

func TestOpenWrongIndexKey(t *testing.T) {
	tr := initLocal(t, InitOptions{})
	keyPath := filepath.Join(t.TempDir(), "other.key")
	if _, err := crypto.GenerateIdentityFile(keyPath); err != nil {
		t.Fatal(err)
	}
	other, err := crypto.LoadIndexKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	be, err := local.Open(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), be, other)
	if !errors.Is(err, ErrWrongIndexKey) {
		t.Fatalf("Open with another index key = %v, want ErrWrongIndexKey", err)
	}
	if !strings.Contains(err.Error(), keyPath) {
		t.Errorf("error %q does not name the key file %s", err, keyPath)
	}
}

func TestOpenNoRepository(t *testing.T) {
	be, err := local.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), be, crypto.NewIndexKey(newX25519(t)))
	if err == nil || !strings.Contains(err.Error(), "no repository here") {
		t.Errorf("Open of an empty directory = %v, want \"no repository here\"", err)
	}
}

func TestTamperedConfig(t *testing.T) {
	attacker := newX25519(t).Recipient().String()
	tests := []struct {
		name  string
		field string
		value any
		want  string // "" means Open must succeed
	}{
		{"re-encoded unchanged", "", nil, ""},
		{"pack size", "pack_size", 2 << 20, "authentication failed"},
		{"data recipients swapped", "data_recipients", []string{attacker}, "authentication failed"},
		{"data recipient added", "data_recipients", "APPEND", "authentication failed"},
		{"chunker polynomial", "chunker_polynomial", "0x3da3358b4dc173", "authentication failed"},
		{"min chunk size", "min_chunk_size", 128 << 10, "authentication failed"},
		{"created", "created", "2001-01-01T00:00:00Z", "authentication failed"},
		{"repository ID", "id", RandomID().String(), "authentication failed"},
		{"MAC", "mac", "MAC", "authentication failed"},
		{"MAC removed", "mac", "", "authentication failed"},
		{"index recipient", "index_recipient", attacker, "wrong index key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := initLocal(t, InitOptions{PackSize: 1 << 20})
			rewrite(t, tr.path(configName), func(b []byte) []byte {
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				switch tt.value {
				case nil:
				case "APPEND":
					m[tt.field] = append(m[tt.field].([]any), attacker)
				case "MAC":
					mac := []byte(m["mac"].(string))
					if mac[0] == '0' {
						mac[0] = '1'
					} else {
						mac[0] = '0'
					}
					m["mac"] = string(mac)
				default:
					m[tt.field] = tt.value
				}
				out, err := json.MarshalIndent(m, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				return out
			})
			be, err := local.Open(tr.dir)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Open(context.Background(), be, tr.key)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Open = %v, want success", err)
				}
				r.Close()
				return
			}
			if err == nil {
				r.Close()
				t.Fatalf("Open of a config with %s changed succeeded, want %q", tt.field, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// A config that authenticates but that this code cannot use is refused
// with a reason.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"future version", func(c *Config) { c.Version = 2 }, "version 2"},
		{"polynomial not hex", func(c *Config) { c.ChunkerPolynomial = "banana" }, "invalid chunker polynomial"},
		{"reducible polynomial", func(c *Config) { c.ChunkerPolynomial = "0x3da3358b4dc172" }, "not an irreducible polynomial"},
		{"min chunk tiny", func(c *Config) { c.MinChunk = 1024 }, "chunk sizes"},
		{"max below min", func(c *Config) { c.MaxChunk = c.MinChunk - 1 }, "chunk sizes"},
		{"max chunk huge", func(c *Config) { c.MaxChunk = 65 << 20 }, "chunk sizes"},
		{"pack size huge", func(c *Config) { c.PackSize = 513 << 20 }, "pack size"},
		{"no data recipients", func(c *Config) { c.DataRecipients = nil }, "no data recipients"},
		{"data recipient garbage", func(c *Config) { c.DataRecipients = []string{"garbage"} }, "not an age public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := initLocal(t, InitOptions{})
			cfg := tr.cfg
			tt.edit(&cfg)
			cfg.MAC = cfg.mac(tr.key) // as the key holder would
			body, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rewrite(t, tr.path(configName), func([]byte) []byte { return body })
			be, err := local.Open(tr.dir)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Open(context.Background(), be, tr.key)
			if err == nil {
				r.Close()
				t.Fatalf("Open succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestConfigNotJSON(t *testing.T) {
	tr := initLocal(t, InitOptions{})
	rewrite(t, tr.path(configName), func([]byte) []byte { return []byte("PK\x03\x04 not json") })
	be, err := local.Open(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), be, tr.key); err == nil || !strings.Contains(err.Error(), "not a syncd repository config") {
		t.Errorf("Open = %v, want \"not a syncd repository config\"", err)
	}
}

// savedBlob is a blob written by saveBlobs, with what its location must say.
type savedBlob struct {
	name string
	t    BlobType
	id   ID
	data []byte
	zstd int // 1: must be compressed, -1: must be stored raw, 0: either
	tree *Tree
}

// saveBlobs writes blobs of both types through a Saver and returns them.
func saveBlobs(t *testing.T, r *Repository) []savedBlob {
	t.Helper()
	h := r.NewHasher()
	var blobs []savedBlob
	add := func(name string, typ BlobType, data []byte, zstd int, tree *Tree) {
		blobs = append(blobs, savedBlob{name: name, t: typ, id: r.BlobID(h, data), data: data, zstd: zstd, tree: tree})
	}
	for i := range 4 {
		add(fmt.Sprintf("random 300 KiB #%d", i), DataBlob, randomBytes(t, 300<<10), -1, nil)
	}
	add("random 70 KiB", DataBlob, randomBytes(t, 70<<10+3), -1, nil)
	add("one byte", DataBlob, []byte{42}, -1, nil)
	add("empty", DataBlob, []byte{}, -1, nil)
	add("text", DataBlob, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 5000)), 1, nil)

	small := &Tree{Nodes: []Node{{Name: "a.txt", Type: NodeFile, Mode: 0o644, Size: 1, Content: []ID{blobs[5].id},
		ModTime: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}}}
	big := &Tree{}
	for i := range 3000 {
		big.Nodes = append(big.Nodes, Node{Name: fmt.Sprintf("file-%05d", i), Type: NodeFile, Mode: 0o600,
			Size: 300 << 10, Content: []ID{blobs[i%4].id}, ModTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	}
	sub := blobs[0].id
	big.Nodes = append(big.Nodes, Node{Name: "zz-dir", Type: NodeDir, Mode: 0o755, Subtree: &sub})
	for _, tt := range []struct {
		name string
		tree *Tree
		zstd int
	}{{"small tree", small, 0}, {"big tree", big, 1}} {
		data, err := EncodeTree(tt.tree)
		if err != nil {
			t.Fatal(err)
		}
		add(tt.name, TreeBlob, data, tt.zstd, tt.tree)
	}
	add("random tree-type blob", TreeBlob, randomBytes(t, 100<<10), -1, nil)

	s := r.NewSaver(context.Background(), SaverOptions{Packers: 2, Uploaders: 2})
	for _, b := range blobs {
		added, err := s.Save(b.t, b.id, b.data)
		if err != nil {
			t.Fatalf("Save(%s): %v", b.name, err)
		}
		if !added {
			t.Errorf("Save(%s) = false, want true for a new blob", b.name)
		}
	}
	// Queued blobs are known and not queued again.
	for _, b := range blobs {
		if !s.Known(b.id) {
			t.Errorf("Known(%s) = false after Save", b.name)
		}
		if added, err := s.Save(b.t, b.id, b.data); added || err != nil {
			t.Errorf("Save(%s) again = %v, %v; want false, nil", b.name, added, err)
		}
	}
	if s.Known(RandomID()) {
		t.Errorf("Known(random ID) = true")
	}
	ids, err := s.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if len(ids) != 1 {
		t.Errorf("Finish wrote %d index objects, want 1", len(ids))
	}
	if n, _ := s.Added(); n != int64(len(blobs)) {
		t.Errorf("Added() = %d blobs, want %d", n, len(blobs))
	}
	return blobs
}

func TestSaverRoundTrip(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{PackSize: 1 << 20})
	blobs := saveBlobs(t, tr.open(t, true))

	// Everything below reads through a newly opened repository.
	r := tr.open(t, true)
	bad, err := r.LoadIndex(ctx)
	if err != nil || len(bad) != 0 {
		t.Fatalf("LoadIndex = %v, %v", bad, err)
	}
	if got := r.Index().Len(); got != len(blobs) {
		t.Errorf("index has %d blobs, want %d", got, len(blobs))
	}

	packs := map[BlobType]map[ID]bool{DataBlob: {}, TreeBlob: {}}
	for _, b := range blobs {
		t.Run(b.name, func(t *testing.T) {
			loc, ok := r.Index().Lookup(b.id)
			if !ok {
				t.Fatalf("blob not in the index")
			}
			packs[loc.Type][loc.Pack] = true
			if loc.Type != b.t {
				t.Errorf("Type = %v, want %v", loc.Type, b.t)
			}
			if loc.Raw != uint32(len(b.data)) {
				t.Errorf("Raw = %d, want %d", loc.Raw, len(b.data))
			}
			if (b.zstd == 1 && !loc.Zstd) || (b.zstd == -1 && loc.Zstd) {
				t.Errorf("Zstd = %v, want %v", loc.Zstd, b.zstd == 1)
			}
			if loc.Zstd && loc.Length >= loc.Raw {
				t.Errorf("compressed blob: stored %d bytes for %d raw", loc.Length, loc.Raw)
			}
			if !loc.Zstd && loc.Length != loc.Raw {
				t.Errorf("raw blob: Length %d != Raw %d", loc.Length, loc.Raw)
			}
			for _, whole := range []bool{true, false} {
				p, err := r.OpenPack(ctx, loc.Type, loc.Pack, loc.PackSize, whole)
				if err != nil {
					t.Fatalf("OpenPack(whole=%v): %v", whole, err)
				}
				if got, want := p.Name(), ObjectName(b.t, loc.Pack); got != want {
					t.Errorf("Name() = %s, want %s", got, want)
				}
				got, err := p.ReadBlob([]byte("dst:"), b.id, loc, r.NewHasher())
				if err != nil {
					t.Fatalf("ReadBlob(whole=%v): %v", whole, err)
				}
				if !bytes.HasPrefix(got, []byte("dst:")) || !bytes.Equal(got[4:], b.data) {
					t.Errorf("ReadBlob(whole=%v) returned %d bytes, want \"dst:\" + the %d saved bytes", whole, len(got), len(b.data))
				}
				// The hash check catches a blob read under another ID.
				if _, err := p.ReadBlob(nil, RandomID(), loc, r.NewHasher()); !errors.Is(err, ErrCorrupt) {
					t.Errorf("ReadBlob under a wrong ID = %v, want ErrCorrupt", err)
				}
			}
			if b.tree != nil {
				got, err := r.LoadTree(ctx, b.id)
				if err != nil {
					t.Fatalf("LoadTree: %v", err)
				}
				if !reflect.DeepEqual(got.Nodes, b.tree.Nodes) {
					t.Errorf("LoadTree returned %d nodes, not the %d saved", len(got.Nodes), len(b.tree.Nodes))
				}
			}
		})
	}
	if n := len(packs[DataBlob]); n < 2 {
		t.Errorf("%d data packs for 1.3 MiB of data with 1 MiB packs, want at least 2", n)
	}
	if n := len(packs[TreeBlob]); n < 1 {
		t.Errorf("%d tree packs, want at least 1", n)
	}

	t.Run("pack objects", func(t *testing.T) {
		for typ, ids := range packs {
			for id := range ids {
				body, err := os.ReadFile(tr.path(ObjectName(typ, id)))
				if err != nil {
					t.Fatal(err)
				}
				if Hash(body) != id {
					t.Errorf("%s: named for SHA-256 %s", ObjectName(typ, id), Hash(body))
				}
				if !bytes.HasPrefix(body, []byte("age-encryption.org/v1\n")) {
					t.Errorf("%s is not an age file", ObjectName(typ, id))
				}
			}
		}
	})

	t.Run("header matches index", func(t *testing.T) {
		objs, bad, err := r.IndexObjects(ctx)
		if err != nil || len(bad) != 0 {
			t.Fatalf("IndexObjects = %v, %v", bad, err)
		}
		n := 0
		for _, ips := range objs {
			for _, ip := range ips {
				n++
				fi, err := os.Stat(tr.path(ObjectName(ip.Type, ip.ID)))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() != ip.Size {
					t.Errorf("pack %s: index size %d, object size %d", ip.ID.Short(), ip.Size, fi.Size())
				}
				for _, whole := range []bool{true, false} {
					p, err := r.OpenPack(ctx, ip.Type, ip.ID, ip.Size, whole)
					if err != nil {
						t.Fatal(err)
					}
					hdr, err := p.Header()
					if err != nil {
						t.Fatalf("pack %s: Header(whole=%v): %v", ip.ID.Short(), whole, err)
					}
					if !reflect.DeepEqual(hdr, ip.Blobs) {
						t.Errorf("pack %s: Header(whole=%v) = %+v\nwant the index entry %+v", ip.ID.Short(), whole, hdr, ip.Blobs)
					}
				}
			}
		}
		if want := len(packs[DataBlob]) + len(packs[TreeBlob]); n != want {
			t.Errorf("index objects list %d packs, want %d", n, want)
		}
	})

	t.Run("index size mismatch", func(t *testing.T) {
		loc, _ := r.Index().Lookup(blobs[0].id)
		if _, err := r.OpenPack(ctx, loc.Type, loc.Pack, loc.PackSize+1, true); !errors.Is(err, ErrCorrupt) {
			t.Errorf("OpenPack with the wrong size = %v, want ErrCorrupt", err)
		}
	})

	t.Run("LoadTree of non-trees", func(t *testing.T) {
		var random, data savedBlob
		for _, b := range blobs {
			switch {
			case b.t == TreeBlob && b.tree == nil:
				random = b
			case b.t == DataBlob:
				data = b
			}
		}
		if _, err := r.LoadTree(ctx, random.id); !errors.Is(err, ErrCorrupt) {
			t.Errorf("LoadTree of a tree blob that is not JSON = %v, want ErrCorrupt", err)
		}
		if _, err := r.LoadTree(ctx, data.id); !errors.Is(err, ErrCorrupt) {
			t.Errorf("LoadTree of a data blob = %v, want ErrCorrupt", err)
		}
		if _, err := r.LoadTree(ctx, RandomID()); err == nil || !strings.Contains(err.Error(), "not in the index") {
			t.Errorf("LoadTree of an unknown ID = %v, want \"not in the index\"", err)
		}
	})

	t.Run("second run", func(t *testing.T) {
		// Blobs the index has are not stored again.
		s := r.NewSaver(ctx, SaverOptions{})
		for _, b := range blobs {
			if added, err := s.Save(b.t, b.id, b.data); added || err != nil {
				t.Errorf("Save(%s) of a stored blob = %v, %v; want false, nil", b.name, added, err)
			}
		}
		ids, err := s.Finish()
		if err != nil || len(ids) != 0 {
			t.Errorf("Finish of a run that added nothing = %v, %v; want no index object", ids, err)
		}
	})
}

// File contents are readable with a data identity only: the index key,
// which the writing nodes hold, does not open them.
func TestDataPacksNeedDataIdentity(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{PackSize: 1 << 20})
	w := tr.open(t, false) // a writer node: no data identity
	h := w.NewHasher()
	content := []byte("file contents the writer must not read back")
	tree, err := EncodeTree(&Tree{Nodes: []Node{{Name: "f", Type: NodeFile, Content: []ID{w.BlobID(h, content)}}}})
	if err != nil {
		t.Fatal(err)
	}
	s := w.NewSaver(ctx, SaverOptions{})
	for _, b := range []struct {
		t    BlobType
		data []byte
	}{{DataBlob, content}, {TreeBlob, tree}} {
		if _, err := s.Save(b.t, w.BlobID(h, b.data), b.data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Finish(); err != nil {
		t.Fatalf("Finish without a data identity: %v", err)
	}

	dataLoc, _ := w.Index().Lookup(w.BlobID(h, content))
	treeID := w.BlobID(h, tree)
	tests := []struct {
		name    string
		ids     []age.Identity
		wantErr bool
	}{
		{"no data identity", nil, true},
		{"index key as data identity", []age.Identity{tr.key.Identity()}, true},
		{"another X25519 identity", []age.Identity{newX25519(t)}, true},
		{"the data identity", []age.Identity{newX25519(t), tr.dataID}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tr.open(t, false)
			r.SetDataIdentities(tt.ids)
			if _, err := r.LoadIndex(ctx); err != nil {
				t.Fatal(err)
			}
			for _, whole := range []bool{true, false} {
				p, err := r.OpenPack(ctx, DataBlob, dataLoc.Pack, dataLoc.PackSize, whole)
				if tt.wantErr {
					if !errors.Is(err, crypto.ErrNoKey) {
						t.Errorf("OpenPack(data, whole=%v) = %v, want ErrNoKey", whole, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("OpenPack(data, whole=%v): %v", whole, err)
				}
				got, err := p.ReadBlob(nil, w.BlobID(h, content), dataLoc, r.NewHasher())
				if err != nil || !bytes.Equal(got, content) {
					t.Errorf("ReadBlob = %q, %v; want %q", got, err, content)
				}
			}
			err := r.CheckDataIdentity(ctx)
			if tt.wantErr && !errors.Is(err, crypto.ErrNoKey) {
				t.Errorf("CheckDataIdentity = %v, want ErrNoKey", err)
			}
			if !tt.wantErr && err != nil {
				t.Errorf("CheckDataIdentity = %v, want nil", err)
			}
			// Trees are readable either way.
			if _, err := r.LoadTree(ctx, treeID); err != nil {
				t.Errorf("LoadTree: %v", err)
			}
		})
	}
}

// Many goroutines saving the same blobs store each once.
func TestSaverConcurrentDedup(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{PackSize: 1 << 20})
	r := tr.open(t, true)
	h := r.NewHasher()
	var datas [][]byte
	for i := range 50 {
		datas = append(datas, []byte(fmt.Sprintf("blob %d %s", i, strings.Repeat("x", i*100))))
	}
	ids := make([]ID, len(datas))
	for i, d := range datas {
		ids[i] = r.BlobID(h, d)
	}
	s := r.NewSaver(ctx, SaverOptions{Packers: 3, Uploaders: 2})
	var mu sync.Mutex
	added := make(map[ID]int)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range datas {
				j := (i + g*7) % len(datas)
				ok, err := s.Save(DataBlob, ids[j], datas[j])
				if err != nil {
					t.Errorf("Save: %v", err)
					return
				}
				if ok {
					mu.Lock()
					added[ids[j]]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if _, err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if added[id] != 1 {
			t.Errorf("blob %d: Save returned true %d times, want once", i, added[id])
		}
	}
	if n, _ := s.Added(); n != int64(len(datas)) {
		t.Errorf("Added() = %d, want %d", n, len(datas))
	}

	r2 := tr.open(t, true)
	if _, err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		loc, ok := r2.Index().Lookup(id)
		if !ok {
			t.Fatalf("blob %d not in the index", i)
		}
		p, err := r2.OpenPack(ctx, DataBlob, loc.Pack, loc.PackSize, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.ReadBlob(nil, id, loc, r2.NewHasher())
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Errorf("blob %d: ReadBlob = %d bytes, %v; want %d bytes", i, len(got), err, len(datas[i]))
		}
	}
	n := 0
	r2.Index().Each(func(ID, Location) { n++ })
	if n != len(datas) {
		t.Errorf("index has %d blobs, want %d", n, len(datas))
	}
}

func TestSaverAbort(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{PackSize: 1 << 20})
	r := tr.open(t, true)
	s := r.NewSaver(ctx, SaverOptions{})
	data := []byte("aborted")
	if _, err := s.Save(DataBlob, r.BlobID(r.NewHasher(), data), data); err != nil {
		t.Fatal(err)
	}
	s.Abort()
	var names []string
	if err := r.Backend().List(ctx, "index/", func(fi backend.Info) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("Abort wrote index objects %v, want none", names)
	}
}

func TestLoadIndexSkipsCorrupt(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{PackSize: 1 << 20})
	r := tr.open(t, true)
	h := r.NewHasher()

	// Two writer runs: two index objects.
	var runs [2][]ID
	var index [2]ID
	for run := range 2 {
		s := r.NewSaver(ctx, SaverOptions{})
		for i := range 3 {
			data := []byte(fmt.Sprintf("run %d blob %d", run, i))
			id := r.BlobID(h, data)
			if _, err := s.Save(DataBlob, id, data); err != nil {
				t.Fatal(err)
			}
			runs[run] = append(runs[run], id)
		}
		ids, err := s.Finish()
		if err != nil || len(ids) != 1 {
			t.Fatalf("Finish = %v, %v; want one index object", ids, err)
		}
		index[run] = ids[0]
	}
	// A third index object that decrypts but lists a blob past the end of
	// its pack.
	loc, _ := r.Index().Lookup(runs[0][0])
	invalid, err := r.saveIndex(ctx, []IndexPack{{ID: loc.Pack, Type: DataBlob, Size: loc.PackSize,
		Blobs: []IndexBlob{{ID: RandomID(), Offset: uint32(loc.PackSize), Length: 10, Raw: 10}}}})
	if err != nil {
		t.Fatal(err)
	}
	// And an object whose name is not an ID.
	if err := backend.SaveBytes(ctx, r.Backend(), "index/not-an-id", []byte("x")); err != nil {
		t.Fatal(err)
	}
	flipByte(t, tr.path(IndexName(index[1])), -1)

	r2 := tr.open(t, true)
	bad, err := r2.LoadIndex(ctx)
	if err != nil {
		t.Fatalf("LoadIndex = %v, want the corrupt objects reported apart", err)
	}
	want := map[string]string{
		IndexName(index[1]): "does not match its name",
		IndexName(invalid):  "extends past the end",
		"index/not-an-id":   "unexpected object name",
	}
	got := map[string]string{}
	for _, e := range bad {
		got[e.Name] = e.Error()
		if !errors.Is(e, ErrCorrupt) {
			t.Errorf("IndexError for %s = %v, want one matching ErrCorrupt", e.Name, e.Err)
		}
	}
	if len(got) != len(want) {
		t.Errorf("LoadIndex reported %d bad objects %v, want %d", len(got), got, len(want))
	}
	for name, msg := range want {
		if !strings.Contains(got[name], msg) {
			t.Errorf("IndexError for %s = %q, want one containing %q", name, got[name], msg)
		}
	}
	for _, id := range runs[0] {
		if !r2.Index().Has(id) {
			t.Errorf("blob %s of the good index object is missing", id.Short())
		}
	}
	for _, id := range runs[1] {
		if r2.Index().Has(id) {
			t.Errorf("blob %s of the corrupt index object was loaded", id.Short())
		}
	}

	// IndexObjects reports the same objects.
	objs, bad2, err := r2.IndexObjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := objs[IndexName(index[0])]; !ok || len(objs) != 1 {
		t.Errorf("IndexObjects listed %d good objects, want only %s", len(objs), IndexName(index[0]))
	}
	if len(bad2) != len(want) {
		t.Errorf("IndexObjects reported %d bad objects, want %d", len(bad2), len(want))
	}
}

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
	sealed, err := crypto.Seal(nil, r.zenc.EncodeAll(body, nil), r.metaRecipients...)
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
