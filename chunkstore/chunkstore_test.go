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
	r.writers.Add(1) // writes allowed, as in a session, without its lock
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
